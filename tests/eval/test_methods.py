"""Method names from the command line, the soft/callable hooks and the (method, rate) plan."""

import pytest

from promptpress.compressor.tokens import count_tokens
from promptpress.eval import methods as mt
from promptpress.eval.runner import plan_pairs

TEXT = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi."


def first_half(context: str, rate: float) -> str:
    words = context.split()
    return " ".join(words[: max(1, int(len(words) * rate))])


def test_builtin_and_imported_methods() -> None:
    names = [m.name for m in mt.parse_methods("none, truncate,random")]
    assert names == ["none", "truncate", "random"]
    assert mt.make_method("none").compressor is None
    imported = mt.make_method("head=promptpress.eval.baselines:TruncationCompressor")
    assert imported.name == "head"
    assert imported.compressor is not None
    assert TEXT.startswith(imported.compressor.compress(TEXT, rate=0.5).compressed_text)
    with pytest.raises(mt.MethodError, match="unknown method"):
        mt.make_method("bogus")
    with pytest.raises(mt.MethodError, match="cannot import"):
        mt.make_method("no_such_module_xyz:thing")
    with pytest.raises(mt.MethodError, match="duplicate"):
        mt.parse_methods("random,random")


def test_soft_hook_and_plain_functions() -> None:
    with pytest.raises(mt.MethodError, match="no soft compressor is registered"):
        mt.make_method("soft")
    mt.register_method("soft", lambda: mt.CallableCompressor(first_half, "soft"))
    try:
        soft = mt.make_method("soft")
        assert soft.compressor is not None
        result = soft.compressor.compress(TEXT, rate=0.5)
        assert result.compressed_text == first_half(TEXT, 0.5)
        assert result.original_tokens == count_tokens(TEXT)
        assert result.compressed_tokens == count_tokens(result.compressed_text)
    finally:
        mt._REGISTRY.pop("soft", None)
    wrapped = mt._from_object(first_half, "fn")  # a (context, rate) function is wrapped, not called
    assert wrapped.compress(TEXT, rate=0.25).compressed_text == first_half(TEXT, 0.25)


def test_plan_pairs() -> None:
    methods = mt.parse_methods("none,truncate,random")
    pairs = [(m.name, r) for m, r in plan_pairs(methods, [1.0, 0.5, 0.2])]
    assert pairs == [("none", 1.0), ("truncate", 0.5), ("truncate", 0.2), ("random", 0.5), ("random", 0.2)]
    # the uncompressed reference is added when 1.0 is asked for, even without "none"
    pairs = [(m.name, r) for m, r in plan_pairs(mt.parse_methods("random"), [1.0, 0.5])]
    assert pairs == [("none", 1.0), ("random", 0.5)]

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


def test_run_plan_limits_and_context_order(longbench_dir, squad_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from promptpress.eval.reader import OpenAIReader
    from promptpress.eval.runner import RunConfig, Runner
    from promptpress.eval.squad_longdoc import BuildConfig, build_suite

    build_suite(tmp_path / "squad", BuildConfig(max_articles=1), squad_json_path=squad_path)
    config = RunConfig(
        datasets=["multi_news", "squad_longdoc", "passage_retrieval_zh"],
        rates=[1.0, 0.5],
        data_dirs=[longbench_dir, tmp_path / "squad"],
        limit={"multi_news": 2, "squad_longdoc": 5},
    )
    reader = OpenAIReader("http://127.0.0.1:9/v1", "unused")  # planning sends no request
    tasks = Runner(config, mt.parse_methods("none,truncate"), reader, tmp_path / "run").plan()
    counts: dict[tuple[str, str], int] = {}
    for task in tasks:
        counts[task.sample.dataset, task.method.name] = (
            counts.get((task.sample.dataset, task.method.name), 0) + 1
        )
    assert counts == {
        ("multi_news", "none"): 2, ("multi_news", "truncate"): 2,
        ("squad_longdoc", "none"): 5, ("squad_longdoc", "truncate"): 5,
        ("passage_retrieval_zh", "none"): 200, ("passage_retrieval_zh", "truncate"): 200,
    }  # fmt: skip
    # questions on one context follow each other (the reader's prompt cache can reuse it)
    squad = [
        t.sample.context for t in tasks if t.sample.dataset == "squad_longdoc" and t.method.name == "none"
    ]
    changes = sum(a != b for a, b in zip(squad, squad[1:], strict=False))
    assert changes == len(set(squad)) - 1
    # context-major: every method x rate of one context runs before the next context starts, so a run
    # stopped early has all methods on the contexts it reached
    every = [t.sample.context for t in tasks if t.sample.dataset == "squad_longdoc"]
    assert sum(a != b for a, b in zip(every, every[1:], strict=False)) == len(set(every)) - 1

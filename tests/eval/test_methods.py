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


def test_registered_methods_and_plain_functions() -> None:
    # a registered name wins over a built-in one (here the soft compressor's)
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


def test_rows_record_how_much_of_the_answer_the_compression_kept(squad_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from promptpress.eval.reader import Generation
    from promptpress.eval.runner import RunConfig, Runner, read_results
    from promptpress.eval.squad_longdoc import BuildConfig, build_suite

    class EchoFirstAnswer:  # a scripted reader: answers every question with its gold answer
        model, prompt_cache = "scripted", None

        def __init__(self, answers: dict[str, str]) -> None:
            self.answers = answers

        def generate(self, prompt):  # type: ignore[no-untyped-def]
            question = prompt.text.rsplit("Question: ", 1)[1].split("\n")[0]
            return Generation(text=self.answers[question], generation_ms=1.0)

    build_suite(
        tmp_path / "squad", BuildConfig(max_articles=2, questions_per_context=6), squad_json_path=squad_path
    )
    from promptpress.eval.longbench import load_dataset

    samples = load_dataset(tmp_path / "squad", "squad_longdoc", limit=12)
    reader = EchoFirstAnswer({s.input: s.answers[0] for s in samples})
    config = RunConfig(datasets=["squad_longdoc"], rates=[1.0, 0.2], data_dirs=[tmp_path / "squad"], limit=12)
    Runner(config, mt.parse_methods("none,truncate"), reader, tmp_path / "run", progress=False).run()
    rows = list(read_results(tmp_path / "run" / "results.jsonl"))
    full = [r["answer_kept"] for r in rows if r["method"] == "none"]
    cut = [r["answer_kept"] for r in rows if r["method"] == "truncate"]
    assert len(full) == len(cut) == 12 and all(r["score"] == 1.0 for r in rows)
    assert full == [1.0] * 12  # every answer is in its full context
    early = {s.id for s in samples if s.extra["answer_position"] < 0.1}
    late = {s.id for s in samples if s.extra["answer_position"] > 0.5}
    assert early and late
    # keeping the first fifth keeps the early answers and loses the late ones
    kept = {r["_id"]: r["answer_kept"] for r in rows if r["method"] == "truncate"}
    assert all(kept[i] == 1.0 for i in early) and all(kept[i] < 1.0 for i in late)

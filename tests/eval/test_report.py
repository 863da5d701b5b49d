"""Report aggregation, markdown and plots on a hand-made results file."""

import json
from pathlib import Path

import pytest

from promptpress.eval.report import bootstrap_ci, summarize, write_report


def _row(
    id_: str, method: str, rate: float, score: float, orig: int, comp: int, cms: float, gms: float, **kw
):  # type: ignore[no-untyped-def]
    return {
        "dataset": "multi_news", "_id": id_, "method": method, "rate": rate, "score": score,
        "original_tokens": orig, "compressed_tokens": comp, "compression_ms": cms, "generation_ms": gms,
        "ttft_ms": gms / 2, "prompt_cache": False, "prediction": "x", **kw,
    }  # fmt: skip


ROWS = [
    _row("a", "none", 1.0, 0.40, 1000, 1000, 0, 2000),
    _row("b", "none", 1.0, 0.20, 3000, 3000, 0, 4000),
    _row("a", "truncate", 0.5, 0.30, 1000, 500, 10, 990, answer_kept=1.0),
    _row(
        "b", "truncate", 0.5, 0.0, 3000, 1500, 30, 1970, answer_kept=0.5
    ),  # an error row for "b" follows; it is ignored
    {"dataset": "multi_news", "_id": "b", "method": "random", "rate": 0.5, "error": "HTTP 500"},
    _row("a", "random", 0.5, 0.10, 1000, 400, 5, 995),
]


def test_summary_numbers() -> None:
    cells = {(c.method, c.rate): c for c in summarize(ROWS)}
    none, trunc, rand = cells[("none", 1.0)], cells[("truncate", 0.5)], cells[("random", 0.5)]
    assert none.score == pytest.approx(30.0) and none.retained == pytest.approx(100.0)
    assert trunc.score == pytest.approx(15.0) and trunc.answer_kept == pytest.approx(75.0)
    assert none.answer_kept is None
    assert trunc.retained == pytest.approx(50.0)  # 0.15 / 0.30
    assert trunc.ratio == pytest.approx(2.0)  # 4000 / 2000 tokens
    assert trunc.compression_ms == pytest.approx(20.0) and trunc.generation_ms == pytest.approx(1480.0)
    assert trunc.speedup == pytest.approx(3000 / 1500)  # mean none generation / mean (compress + generate)
    # random only has sample "a": retained and speedup are paired on it
    assert rand.n == 1 and rand.retained == pytest.approx(25.0) and rand.speedup == pytest.approx(2.0)
    assert rand.ratio == pytest.approx(2.5) and none.prompt_cache == "off"


def test_files(tmp_path: Path) -> None:
    with (tmp_path / "results.jsonl").open("w") as fh:
        for row in ROWS:
            fh.write(json.dumps(row) + "\n")
        fh.write('{"dataset": "multi_news", "_id": "c", "meth')  # torn last line of a killed run
    files = write_report(tmp_path)
    text = files.markdown.read_text()
    # two samples (0.30, 0.0): the bootstrap means are 0, 15 or 30
    assert (
        "| truncate | 0.5 | 2 | 15.00 | 0.0–30.0 | 50.0% | 2.00x | 75.0% | 20 | 1480 | 740 | 2.00x |" in text
    )
    assert "| none | 1 | 2 | 30.00 | 20.0–40.0 | 100.0% | 1.00x | – |" in text  # no answer_kept field
    assert "1 sample(s) failed" in text and "Prompt cache: off" in text
    for png in (files.score_plot, files.latency_plot):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing")


def test_bootstrap_interval() -> None:
    assert bootstrap_ci([0.5] * 40) == (0.5, 0.5)  # no spread, no interval
    assert bootstrap_ci([]) == (0.0, 0.0)
    scores = [1.0] * 30 + [0.0] * 70  # mean 0.3, standard error ~0.046
    low, high = bootstrap_ci(scores)
    assert 0.19 < low < 0.23 and 0.37 < high < 0.40
    assert bootstrap_ci(scores) == (low, high)  # seeded
    wide = bootstrap_ci(scores[::10])  # 10 samples with the same mean: a wider interval
    assert wide[0] < low and wide[1] > high
    low99, high99 = bootstrap_ci(scores, level=0.99)
    assert low99 < low and high99 > high
    # 10 contexts of 10 questions each, all right or all wrong on a context: 10 independent draws,
    # as wide as 10 samples, not as narrow as 100
    by_context = [1.0] * 30 + [0.0] * 70
    clusters = [i // 10 for i in range(100)]
    clustered = bootstrap_ci(by_context, clusters=clusters)
    assert clustered[0] < low - 0.05 and clustered[1] > high + 0.05
    assert abs(clustered[0] - wide[0]) < 0.05 and abs(clustered[1] - wide[1]) < 0.05
    assert bootstrap_ci(scores, clusters=list(range(100))) == (low, high)  # one per cluster: as before
    with pytest.raises(ValueError, match="cluster ids"):
        bootstrap_ci(scores, clusters=[0, 1])


def test_header_names_every_command_of_a_run(tmp_path: Path) -> None:
    from promptpress.eval.report import render_markdown

    def invocation(command: str, methods: list[str]) -> dict:  # type: ignore[type-arg]
        config = {"rates": [1.0, 0.5], "limit": 3, "seed": 0}
        return {
            "command": command,
            "methods": methods,
            "config": config,
            "reader": "r",
            "truncation_tokenizer": "t",
        }

    cells = summarize(ROWS)
    one = render_markdown(cells, {"invocations": [invocation("eval run A", ["none", "truncate"])] * 2})
    assert "- command: `eval run A`" in one and "- methods: none, truncate; rates: 1.0, 0.5" in one
    two = render_markdown(
        cells, {"invocations": [invocation("eval run A", ["none"]), invocation("eval run B", ["random"])]}
    )
    assert "- command: `eval run A`" in two and "- command: `eval run B`" in two
    assert "- methods:" not in two  # the last command's methods would misdescribe the first's rows

"""The runner end to end on real multi_news samples against the real local llama.cpp backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptpress.eval.longbench import Prompt, load_dataset
from promptpress.eval.methods import parse_methods
from promptpress.eval.reader import Generation, OpenAIReader
from promptpress.eval.runner import RESULTS, RunConfig, Runner, read_results, row_key
from promptpress.service.cli import main

pytestmark = [pytest.mark.backend, pytest.mark.slow]


@pytest.fixture(scope="module")
def backend() -> Iterator[object]:
    from promptpress.compressor.llamacpp import LocalBackend

    with LocalBackend(ctx_size=1024, threads=2) as running:
        yield running


def test_cli_run_and_report_end_to_end(backend, longbench_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    args = [
        "eval",
        "run",
        "--base-url",
        backend.base_url,
        "--model",
        backend.model_name,
        "--data",
        str(longbench_dir),
    ]
    args += ["--datasets", "multi_news", "--methods", "none,truncate", "--rates", "1,0.03", "--limit", "3"]
    args += ["--offset", "2"]  # samples 3-5 of the file
    args += ["--max-length", "192", "--max-new-tokens", "8", "--prompt-cache", "off", "--out", str(out)]
    assert main([*args, "--no-progress", "--report"]) == 0
    rows = list(read_results(out / RESULTS))
    assert len(rows) == 6 and len({row_key(r) for r in rows}) == 6
    expected = [s.id for s in load_dataset(longbench_dir, "multi_news")[2:5]]
    assert sorted({str(r["_id"]) for r in rows}) == sorted(expected)
    for row in rows:
        assert not row.get("error") and isinstance(row["prediction"], str)
        assert 0.0 <= row["score"] <= 1.0 and row["generation_ms"] > 0 and row["ttft_ms"] is not None
        assert row["completion_tokens"] <= 8 and row["prompt_cache"] is False
        assert row["reader"] == backend.model_name
    none = [r for r in rows if r["method"] == "none"]
    trunc = [r for r in rows if r["method"] == "truncate"]
    # the whole prompt was cut to 192 reader tokens (+ the chat template) by the server's own tokenizer
    assert all(r["truncated"] and 192 <= r["prompt_tokens"] <= 192 + 40 for r in none)
    for r in trunc:
        assert r["compressed_tokens"] == pytest.approx(0.03 * r["original_tokens"], abs=2)
        assert r["prompt_tokens"] < 192 and not r["truncated"]
    info = json.loads((out / "run.json").read_text())["invocations"][-1]
    assert info["truncation_tokenizer"].startswith("llama.cpp:")
    report = (out / "report.md").read_text()
    assert "- sample limit: 3 after the first 2; seed: 0" in report
    mean = 100 * sum(r["score"] for r in trunc) / 3
    assert f"| truncate | 0.03 | 3 | {mean:.2f} |" in report
    assert (out / "score_vs_ratio.png").stat().st_size > 10_000 and (
        out / "latency.png"
    ).stat().st_size > 10_000


class _Aborting:
    """The real reader, interrupted (like Ctrl-C) at its `abort_at`-th request; counts requests."""

    def __init__(self, reader: OpenAIReader, abort_at: int | None = None) -> None:
        self.reader, self.abort_at, self.calls = reader, abort_at, 0
        self.model, self.prompt_cache = reader.model, reader.prompt_cache

    def generate(self, prompt: Prompt) -> Generation:
        self.calls += 1
        if self.calls == self.abort_at:
            raise KeyboardInterrupt
        return self.reader.generate(prompt)


def test_resume_after_abort(backend, longbench_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = RunConfig(
        datasets=["multi_news"], rates=[1.0, 0.02], data_dirs=[longbench_dir], limit=2, max_length=128,
        max_new_tokens=4,
    )  # fmt: skip
    methods = parse_methods("none,random", seed=1)
    from promptpress.eval.longbench import TiktokenTokenizer

    with OpenAIReader(backend.base_url, backend.model_name, prompt_cache=True) as real:
        first = _Aborting(real, abort_at=3)
        with pytest.raises(KeyboardInterrupt):
            Runner(config, methods, first, tmp_path, tokenizer=TiktokenTokenizer(), progress=False).run()
        assert len(list(read_results(tmp_path / RESULTS))) == 2
        with (tmp_path / RESULTS).open("a") as fh:
            fh.write('{"dataset": "multi_news", "_id": "torn')  # killed mid-write
        second = _Aborting(real)
        summary = Runner(
            config, methods, second, tmp_path, tokenizer=TiktokenTokenizer(), progress=False
        ).run()
    assert second.calls == 2 and summary.skipped == 2 and summary.done == 2
    rows = list(read_results(tmp_path / RESULTS))
    assert len(rows) == 4 and len({row_key(r) for r in rows}) == 4
    # a third run has nothing left to do
    third = _Aborting(real)
    summary = Runner(config, methods, third, tmp_path, tokenizer=TiktokenTokenizer(), progress=False).run()
    assert third.calls == 0 and summary.skipped == 4

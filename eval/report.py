"""Tables and plots from a run's `results.jsonl`.

Per dataset and (method, rate): mean score (x100), score retained vs the uncompressed run on the same
samples, compression ratio achieved (original / compressed tiktoken tokens of the context), mean
compression and generation milliseconds, and the end-to-end speedup
`generation(none) / (compression + generation)(method)` over the same samples.
Latency columns are only a latency measurement when the reader's prompt cache was off; the report
says which.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .runner import RESULTS, RUN_INFO, read_results, row_key

REPORT = "report.md"
SCORE_PLOT = "score_vs_ratio.png"
LATENCY_PLOT = "latency.png"


@dataclass(frozen=True)
class Cell:
    """One (dataset, method, rate) line of the report."""

    dataset: str
    method: str
    rate: float
    n: int
    score: float  # mean x 100
    score_ci: tuple[float, float]  # 95 % bootstrap interval of the mean score (x 100)
    retained: float | None  # % of the uncompressed score on the same samples
    ratio: float  # original / compressed context tokens (sums over samples)
    answer_kept: float | None  # mean % of the answer's words left in the compressed context (QA sets)
    compression_ms: float
    generation_ms: float
    ttft_ms: float | None
    speedup: float | None  # generation(none) / (compression + generation), same samples
    prompt_cache: str  # "on", "off", "n/a" (field not sent) or "mixed"


def latest_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last successful row per (dataset, _id, method, rate)."""
    latest: dict[tuple[str, str, str, float], dict[str, Any]] = {}
    for row in rows:
        if not row.get("error"):
            latest[row_key(row)] = row
    return list(latest.values())


def _cache_label(values: set[Any]) -> str:
    labels = {True: "on", False: "off", None: "n/a"}
    return labels[values.pop()] if len(values) == 1 else "mixed"


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def bootstrap_ci(
    values: Sequence[float],
    *,
    clusters: Sequence[Any] | None = None,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over samples (seeded: the same rows give the same interval).

    With ~100 questions a QA score moves by several points from the sample alone; the interval says
    how many, so two methods whose intervals overlap widely are not told apart by the run.
    `clusters` (one id per value, e.g. the context a question is asked on) resamples whole clusters:
    questions on one context succeed or fail together, so treating them as independent would give
    too narrow an interval.
    """
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (0.0, 0.0)
    if clusters is not None and len(clusters) != data.size:
        raise ValueError(f"{len(clusters)} cluster ids for {data.size} values")
    rng = np.random.default_rng(seed)
    if clusters is None or len(set(clusters)) == data.size:
        means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    else:
        index = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
        ids = np.asarray([index[c] for c in clusters])
        sums = np.bincount(ids, weights=data)
        counts = np.bincount(ids).astype(np.float64)
        picks = rng.integers(0, len(index), size=(resamples, len(index)))
        means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)  # mean over the questions drawn
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return (float(low), float(high))


def summarize(rows: Iterable[dict[str, Any]]) -> list[Cell]:
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for row in latest_rows(rows):
        groups[(row["dataset"], row["method"], float(row["rate"]))].append(row)
    cells = []
    for (dataset, method, rate), items in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "none", kv[0][1], -kv[0][2])
    ):
        base = {r["_id"]: r for r in groups.get((dataset, "none", 1.0), [])}
        paired = [r for r in items if r["_id"] in base]
        retained = speedup = None
        if paired:
            base_score = _mean([base[r["_id"]]["score"] for r in paired])
            if base_score > 0:
                retained = 100 * _mean([r["score"] for r in paired]) / base_score
            cost = _mean([r["compression_ms"] + r["generation_ms"] for r in paired])
            if cost > 0:
                speedup = _mean([base[r["_id"]]["generation_ms"] for r in paired]) / cost
        ttfts = [r["ttft_ms"] for r in items if r.get("ttft_ms") is not None]
        compressed = sum(r["compressed_tokens"] for r in items)
        kept = [r["answer_kept"] for r in items if r.get("answer_kept") is not None]
        cells.append(
            Cell(
                dataset=dataset,
                method=method,
                rate=rate,
                n=len(items),
                score=100 * _mean([r["score"] for r in items]),
                score_ci=_scaled(
                    bootstrap_ci([r["score"] for r in items], clusters=[_cluster(r) for r in items])
                ),
                retained=retained,
                ratio=sum(r["original_tokens"] for r in items) / compressed if compressed else float("inf"),
                answer_kept=100 * _mean(kept) if kept else None,
                compression_ms=_mean([r["compression_ms"] for r in items]),
                generation_ms=_mean([r["generation_ms"] for r in items]),
                ttft_ms=_mean(ttfts) if ttfts else None,
                speedup=speedup,
                prompt_cache=_cache_label({r.get("prompt_cache") for r in items}),
            )
        )
    return cells


def _cluster(row: dict[str, Any]) -> str:
    """What a row's bootstrap resamples with: its context (rows of newer runs), else the row itself."""
    return str(row.get("context_id") or row["_id"])


def _scaled(interval: tuple[float, float]) -> tuple[float, float]:
    return (100 * interval[0], 100 * interval[1])


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def _offset(config: dict[str, Any]) -> str:
    """The report's words for a run that left out its first samples (older runs have no offset)."""
    offset = config.get("offset", 0)
    return f" after the first {offset}" if offset else ""


def render_markdown(cells: Sequence[Cell], info: dict[str, Any] | None = None, errors: int = 0) -> str:
    lines = ["# Evaluation report", ""]
    if info:
        last = info["invocations"][-1]
        commands = list(dict.fromkeys(i["command"] for i in info["invocations"] if i.get("command")))
        lines += [f"- command: `{command}`" for command in commands]
        lines.append(
            f"- reader: `{last['reader']}`; prompt truncation tokenizer: `{last['truncation_tokenizer']}`"
        )
        if len(commands) <= 1:  # with several commands, each names its own methods, rates and limits
            lines += [
                f"- methods: {', '.join(last['methods'])}; rates: {', '.join(str(r) for r in last['config']['rates'])}",
                f"- sample limit: {last['config']['limit'] or 'all'}{_offset(last['config'])}; "
                f"seed: {last['config']['seed']}",
            ]
    if errors:
        lines.append(f"- {errors} sample(s) failed and are left out (rerun the same command to retry them)")
    lines.append("")
    for dataset in sorted({c.dataset for c in cells}):
        rows = [c for c in cells if c.dataset == dataset]
        caches = {c.prompt_cache for c in rows}
        lines += [f"## {dataset}", ""]
        if "on" in caches or "mixed" in caches:
            lines += [
                "Prompt cache ON (quality run): the reader reused cached context prefixes, so the ms and "
                "speedup columns are not a latency measurement. Measure latency with `--prompt-cache off`.",
                "",
            ]
        else:
            lines += [f"Prompt cache: {caches.pop()} (every request prefilled from scratch).", ""]
        lines += [
            "| method | rate | n | score | 95% CI | retained | ratio | answer kept | compress ms | generate ms "
            "| TTFT ms | end-to-end speedup |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in rows:
            lines.append(
                f"| {c.method} | {c.rate:g} | {c.n} | {c.score:.2f} | {c.score_ci[0]:.1f}–{c.score_ci[1]:.1f} | "
                f"{_fmt(c.retained, '.1f', '%')} | "
                f"{c.ratio:.2f}x | {_fmt(c.answer_kept, '.1f', '%')} | {c.compression_ms:.0f} | {c.generation_ms:.0f} | {_fmt(c.ttft_ms, '.0f')} | "
                f"{_fmt(c.speedup, '.2f', 'x')} |"
            )
        lines.append("")
    lines += [
        "score: LongBench metric x100 (mean over samples, best over references); 95% CI: percentile bootstrap "
        "interval of that mean (2,000 resamples, seed 0) drawing whole contexts when rows record their context "
        "(questions on one context are not independent), single samples otherwise; retained: score / score of "
        "`none` on the same samples; ratio: original / compressed context tokens (tiktoken cl100k_base); answer kept: share of the reference "
        "answer's words still in the compressed context (QA sets; reader-free); "
        "speedup: generation ms of `none` / (compression + generation ms), same samples.",
        "",
        f"![score vs compression ratio]({SCORE_PLOT})",
        "",
        f"![latency breakdown]({LATENCY_PLOT})",
        "",
    ]
    return "\n".join(lines)


def _figure(n: int) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(6.5 * n, 4.8), squeeze=False)
    return fig, list(axes[0])


def plot_score_vs_ratio(cells: Sequence[Cell], path: Path) -> Path:
    datasets = sorted({c.dataset for c in cells})
    fig, axes = _figure(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        rows = [c for c in cells if c.dataset == dataset]
        base = next((c for c in rows if c.method == "none"), None)
        if base is not None:
            ax.axhline(
                base.score, color="grey", linestyle="--", linewidth=1, label=f"none ({base.score:.1f})"
            )
        for method in sorted({c.method for c in rows} - {"none"}):
            points = sorted(((c.ratio, c.score) for c in rows if c.method == method), key=lambda p: p[0])
            if base is not None:
                points = [(base.ratio, base.score), *points]
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=method)
            for x, y in points[1 if base is not None else 0 :]:
                ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_title(dataset)
        ax.set_xlabel("compression ratio achieved (original / compressed tokens)")
        ax.set_ylabel("score (x100)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_latency(cells: Sequence[Cell], path: Path) -> Path:
    datasets = sorted({c.dataset for c in cells})
    fig, axes = _figure(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        rows = [c for c in cells if c.dataset == dataset]
        labels = [f"{c.method}\n@{c.rate:g}" for c in rows]
        comp = [c.compression_ms / 1000 for c in rows]
        gen = [c.generation_ms / 1000 for c in rows]
        ax.bar(labels, comp, label="compression", color="tab:orange")
        ax.bar(labels, gen, bottom=comp, label="generation (reader)", color="tab:blue")
        for i, total in enumerate(a + b for a, b in zip(comp, gen, strict=True)):
            ax.annotate(f"{total:.1f}s", (i, total), ha="center", va="bottom", fontsize=8)
        cache = {c.prompt_cache for c in rows}
        ax.set_title(f"{dataset} (prompt cache {'/'.join(sorted(cache))})")
        ax.set_ylabel("seconds per sample (mean)")
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    score_plot: Path
    latency_plot: Path
    cells: list[Cell]


def write_report(run_dir: Path, out_dir: Path | None = None) -> ReportFiles:
    """Write report.md and the two PNGs for the run in `run_dir` (into `out_dir`, default the run's)."""
    run_dir = Path(run_dir)
    rows = list(read_results(run_dir / RESULTS))
    if not rows:
        raise FileNotFoundError(f"no results in {run_dir / RESULTS}")
    cells = summarize(rows)
    if not cells:
        raise ValueError(f"every row of {run_dir / RESULTS} is an error")
    done = {row_key(r) for r in rows if not r.get("error")}
    errors = len({row_key(r) for r in rows if r.get("error")} - done)
    info_path = run_dir / RUN_INFO
    info = json.loads(info_path.read_text()) if info_path.is_file() else None
    out_dir = Path(out_dir or run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / REPORT
    markdown.write_text(render_markdown(cells, info, errors), encoding="utf-8")
    return ReportFiles(
        markdown=markdown,
        score_plot=plot_score_vs_ratio(cells, out_dir / SCORE_PLOT),
        latency_plot=plot_latency(cells, out_dir / LATENCY_PLOT),
        cells=cells,
    )

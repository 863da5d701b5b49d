"""Tables of `bench_proxy_qa.py`: its rows per mode, and a `promptpress eval run` on the same questions.

Scores are the eval's QA F1 x 100 with its bootstrap interval (whole contexts resampled,
`promptpress.eval.report.bootstrap_ci`); "% of off" is paired: the mode's F1 over compression off's on
the questions both answered.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from promptpress.eval.longbench import Sample
from promptpress.eval.metrics import answer_kept
from promptpress.eval.report import bootstrap_ci

DATASET = "squad_longdoc"


def latest(rows: Sequence[dict[str, Any]], ids: Sequence[str], mode: str) -> dict[str, dict[str, Any]]:
    """The last error-free row of each question in `ids` for `mode`."""
    wanted = set(ids)
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("mode") == mode and row["_id"] in wanted and "error" not in row:
            out[row["_id"]] = row
    return out


def compressed_texts(log_path: Path) -> dict[str, str]:
    """request id -> the compressed text the proxy sent upstream (its "compressed" log events, written
    when `log_prompts` is on; the trailing question is not part of it)."""
    texts: dict[str, str] = {}
    with log_path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if '"compressed"' not in line:
                continue
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if data.get("event") == "compressed" and "compressed_text" in data and data.get("request_id"):
                texts[data["request_id"]] = "\n".join(data["compressed_text"])
    return texts


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def _counts(values: Sequence[Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in Counter(values).most_common())


def mode_stats(
    rows: dict[str, dict[str, Any]], off: dict[str, dict[str, Any]], texts: Mapping[str, str]
) -> dict[str, Any]:
    """Figures of one mode's rows (by question id) against compression off's."""
    items = list(rows.values())
    scores = [r["score"] for r in items]
    paired = [i for i in rows if i in off]
    f1_paired = _mean([rows[i]["score"] for i in paired])
    f1_off = _mean([off[i]["score"] for i in paired])
    off_tokens = sum(off[i]["prompt_tokens"] or 0 for i in paired)
    mode_tokens = sum(rows[i]["prompt_tokens"] or 0 for i in paired)
    applied = [r for r in items if r.get("compression") == "applied" and r.get("compressed_tokens")]
    kept = [
        answer_kept(DATASET, texts[r["request_id"]], r["answers"])
        for r in items
        if r.get("request_id") in texts
    ]
    low, high = bootstrap_ci(scores, clusters=[r.get("context_id") or r["_id"] for r in items])
    return {
        "n": len(items),
        "f1": 100 * statistics.fmean(scores) if scores else None,
        "ci": (100 * low, 100 * high),
        "pct_off": 100 * f1_paired / f1_off if f1_paired is not None and f1_off else None,
        "prompt_tokens": _mean([r["prompt_tokens"] for r in items if r.get("prompt_tokens")]),
        "ratio": off_tokens / mode_tokens if mode_tokens and off_tokens else None,
        "compressor_ratio": (
            sum(r["original_tokens"] for r in applied) / sum(r["compressed_tokens"] for r in applied)
            if applied
            else None
        ),
        "answer_words": _mean([len(r["prediction"].split()) for r in items]),
        "seconds": _mean([r["seconds"] for r in items]),
        "compression_s": _mean([r["compression_ms"] / 1000 for r in applied]),
        "answer_kept": 100 * statistics.fmean(x for x in kept if x is not None) if kept else None,
        "sources": _counts([r.get("question_source") for r in items]),
        "outcomes": _counts([r.get("compression") for r in items]),
    }


def render_table(
    rows: Sequence[dict[str, Any]], samples: Sequence[Sample], modes: Sequence[str], texts: Mapping[str, str]
) -> str:
    ids = [s.id for s in samples]
    off = latest(rows, ids, "off")
    errors = sum(1 for r in rows if "error" in r and r["_id"] in set(ids) and r.get("mode") in modes)
    lines = [
        f"QA F1 through the proxy, {DATASET}, {len(ids)} questions selected"
        + (f" ({errors} failed requests in the file, retried on resume)" if errors else ""),
        "",
        "| rate | n | QA F1 [95 % CI] | % of off | prompt tokens upstream | ratio | compressor ratio "
        "| s / question | compression s | answer words kept | words in answer | question source | compression |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for mode in modes:
        stats = mode_stats(latest(rows, ids, mode), off, texts)
        if not stats["n"]:
            lines.append(f"| {mode} | 0 |" + " – |" * 11)
            continue
        lines.append(
            f"| {mode} | {stats['n']} | {_fmt(stats['f1'], '.1f')} "
            f"[{stats['ci'][0]:.1f}–{stats['ci'][1]:.1f}] | {_fmt(stats['pct_off'], '.1f', ' %')} "
            f"| {_fmt(stats['prompt_tokens'], ',.0f')} | {_fmt(stats['ratio'], '.2f', 'x')} "
            f"| {_fmt(stats['compressor_ratio'], '.2f', 'x')} | {_fmt(stats['seconds'], '.1f')} "
            f"| {_fmt(stats['compression_s'], '.1f')} | {_fmt(stats['answer_kept'], '.1f', ' %')} "
            f"| {_fmt(stats['answer_words'], '.1f')} "
            f"| {stats['sources']} | {stats['outcomes']} |"
        )
    lines += [
        "",
        "prompt tokens: the reader's own count of the whole prompt (usage.prompt_tokens); ratio: off's "
        "prompt tokens over this rate's, same questions; compressor ratio: tiktoken tokens of the text "
        "compressed over what it became (X-Promptpress-*-Tokens; the question is not part of it); "
        "s / question: request sent to answer received, compression included; answer words kept: share "
        "of the gold answer's words in the compressed text (from the server's prompt log); words in answer: "
        "the reader's answer, mean (the prompt asks for a short phrase).",
    ]
    return "\n".join(lines)


def compare_eval(path: Path, samples: Sequence[Sample]) -> str:
    """QA F1 of each method and rate of a `promptpress eval run` on these questions."""
    ids = {s.id for s in samples}
    cells: dict[tuple[str, float], dict[str, float]] = defaultdict(dict)
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("dataset") == DATASET and row.get("_id") in ids and "error" not in row:
                cells[(row["method"], float(row["rate"]))][row["_id"]] = float(row["score"])
    none = next((v for (m, _), v in cells.items() if m == "none"), {})
    lines = [
        f"`promptpress eval run` on the same questions ({path}):",
        "",
        "| method | rate | n | QA F1 | % of none (paired) |",
        "|---|---:|---:|---:|---:|",
    ]
    for (method, rate), scores in sorted(cells.items(), key=lambda kv: (kv[0][0] != "none", kv[0])):
        paired = [i for i in scores if i in none]
        base = sum(none[i] for i in paired)
        pct = 100 * sum(scores[i] for i in paired) / base if base else None
        f1 = 100 * statistics.fmean(scores.values())
        lines.append(f"| {method} | {rate:g} | {len(scores)} | {f1:.1f} | {_fmt(pct, '.1f', ' %')} |")
    return "\n".join(lines)

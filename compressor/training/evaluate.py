"""Held-out evaluation of a trained token classifier against its teacher and simple baselines.

On the held-out windows of a labels file (meetings never trained on):
- label agreement with the teacher: word F1 of the keep class (threshold 0.5) and ROC AUC;
- answer retention at each rate: of the window words that are content words of the gold answer
  of a QMSum specific query whose relevant turns overlap the window (normalised like the
  alignment: lower-cased, stemmed), the share each method keeps when it keeps round(rate * n)
  words of the window. Methods: the model (word probabilities exactly as `TokenClassifierCompressor`
  computes them), the teacher's stored scores, seeded random drop, and truncation (first words);
- speed in words per second: the model scoring the windows through the compressor's batched
  path; the teacher as measured while it labelled (same thread setting; pass the speed over the
  whole labels file, the held-out windows alone are a small sample); the baselines as run here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import load_compressor
from .answers import answer_targets
from .labels import LabelledWindow, teacher_speed
from .metrics import f1_keep, roc_auc
from .wordsplit import EncodedWords, WordSplitter, top_k_mask, word_scores


def load_model(spec: str | os.PathLike[str]) -> Any:
    """A `TokenClassifierCompressor` for a checkpoint dir, a `fit` run folder, or ``builtin:NAME``."""

    text = os.fspath(spec)
    path = Path(text)
    if (path / "final" / "config.json").is_file():
        path = path / "final"
    return load_compressor(path if path.exists() else text)


def model_word_scores(compressor: Any, encoded: Sequence[EncodedWords]) -> tuple[list[np.ndarray], float]:
    """Word keep-probabilities from the compressor's own batched scoring path, and the seconds it took."""
    start = time.perf_counter()
    token_probs = compressor.score_windows([e.ids for e in encoded])
    scores = [word_scores(p, e) for p, e in zip(token_probs, encoded)]
    return scores, time.perf_counter() - start


def _timed(fn: Callable[[], list[np.ndarray]]) -> tuple[list[np.ndarray], float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def evaluate(
    records: Sequence[LabelledWindow],
    model: str | os.PathLike[str] | Any,
    rates: Sequence[float] = (0.5, 0.33, 0.2),
    *,
    seed: int = 0,
    teacher_words_per_second: float | None = None,
) -> dict[str, Any]:
    compressor = load_model(model) if isinstance(model, (str, os.PathLike)) else model
    splitter = WordSplitter(compressor.loaded.tokenizer)
    encoded = splitter.encode_batch([r.window.text for r in records])
    for r, e in zip(records, encoded):
        if e.n_words != len(r.keep):
            raise ValueError(
                f"window {r.window.id}: labels do not match the model's words (another encoder?)"
            )
    n_words = sum(e.n_words for e in encoded)
    compressor.score_windows([encoded[0].ids])  # warm-up
    rng = np.random.default_rng(seed)
    methods: dict[str, tuple[list[np.ndarray], float]] = {
        "model": model_word_scores(compressor, encoded),
        "teacher": (
            [r.scores for r in records],
            n_words / (teacher_words_per_second or teacher_speed(records)),
        ),
        "random": _timed(lambda: [rng.random(e.n_words) for e in encoded]),
        "truncation": _timed(lambda: [-np.arange(e.n_words, dtype=np.float64) for e in encoded]),
    }
    truth = np.concatenate([r.keep for r in records])
    model_scores = np.concatenate(methods["model"][0])
    targets = [
        answer_targets(e.words(), [q.answer for q in r.window.queries]) for r, e in zip(records, encoded)
    ]
    n_targets = int(sum(t.sum() for t in targets))
    table: dict[str, dict[str, float]] = {}
    for name, (scores, seconds) in methods.items():
        row: dict[str, float] = {"words_per_second": n_words / seconds if seconds else math.inf}
        for rate in rates:
            kept = sum(int((top_k_mask(s, rate) & t).sum()) for s, t in zip(scores, targets))
            row[f"retention@{rate:g}"] = kept / n_targets if n_targets else float("nan")
        table[name] = row
    report: dict[str, Any] = {
        "model": compressor.loaded.display_name,
        "teacher": records[0].teacher,
        "heldout_windows": len(records),
        "heldout_words": n_words,
        "answer_words": n_targets,
        "windows_with_answers": sum(bool(t.any()) for t in targets),
        "label_f1": f1_keep(truth, model_scores > 0.5),
        "label_auc": roc_auc(truth, model_scores),
        "teacher_keep_share": float(truth.mean()),
        "methods": table,
        "speedup_vs_teacher": table["model"]["words_per_second"] / table["teacher"]["words_per_second"],
    }
    return report


def format_table(report: dict[str, Any]) -> str:
    rates = [k.split("@")[1] for k in next(iter(report["methods"].values())) if k.startswith("retention@")]
    lines = [
        f"model: {report['model']}   teacher: {report['teacher']}",
        f"held-out: {report['heldout_windows']} windows, {report['heldout_words']} words, "
        f"{report['answer_words']} answer words in {report['windows_with_answers']} windows",
        f"label agreement with the teacher: F1 {report['label_f1']:.3f}  AUC {report['label_auc']:.3f}  "
        f"(teacher keeps {report['teacher_keep_share']:.1%})",
        "",
        "answer-word retention (share of gold-answer words kept)",
        f"{'method':<12}" + "".join(f"{'rate ' + r:>11}" for r in rates) + f"{'words/s':>12}",
    ]
    for name, row in report["methods"].items():
        cells = "".join(f"{row['retention@' + r]:>11.3f}" for r in rates)
        lines.append(f"{name:<12}{cells}{row['words_per_second']:>12.0f}")
    lines.append(f"\nmodel speed / teacher speed: {report['speedup_vs_teacher']:.1f}x")
    if "qa_f1" in report:
        lines.append("\nQA F1 (local reader, held-out queries over their relevant turns)")
        for name, row in report["qa_f1"].items():
            lines.append(f"{name:<12}" + "".join(f"{row.get(r, float('nan')):>11.3f}" for r in rates))
    return "\n".join(lines)

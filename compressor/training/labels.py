"""Run a teacher over corpus windows and append labelled windows to a JSON-lines file.

Labelling is the slow step (an LM call per window), so it appends one line per window as it goes
and, when rerun on the same file, skips windows already labelled: interrupted runs resume.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .align import quality_filter
from .answers import answer_targets
from .corpus import Window, read_jsonl
from .teachers import Teacher
from .wordsplit import WordSplitter, top_k_mask


@dataclass
class LabelledWindow:
    window: Window
    keep: np.ndarray
    scores: np.ndarray
    quality: dict[str, float]
    teacher: str
    seconds: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabelledWindow:
        return cls(
            Window.from_json(data["window"]),
            np.asarray(data["keep"], dtype=bool),
            np.asarray(data["scores"], dtype=np.float32),
            data.get("quality", {}),
            data.get("teacher", "?"),
            float(data.get("seconds", 0.0)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window.to_json(),
            "teacher": self.teacher,
            "keep": self.keep.astype(int).tolist(),
            "scores": [round(float(s), 4) for s in self.scores],
            "quality": self.quality,
            "seconds": round(self.seconds, 4),
        }


def label_windows(
    windows: Sequence[Window],
    teacher: Teacher,
    splitter: WordSplitter,
    out: str | Path,
    *,
    question: bool = False,
    progress: bool = True,
) -> dict[str, float]:
    """Label `windows` into `out` (appending; already-labelled ids are skipped). Returns timing."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r["window"]["id"] for r in read_jsonl(out)} if out.exists() else set()
    todo = [w for w in windows if w.id not in done]
    words_done, seconds = 0, 0.0
    with out.open("a") as fh:
        for window in tqdm(todo, desc="label", unit="window", disable=not progress):
            encoded = splitter.encode(window.text)
            q = window.queries[0].query if (question and window.queries) else None
            start = time.perf_counter()
            labels = teacher.label(encoded, q)
            elapsed = time.perf_counter() - start
            if len(labels.keep) != encoded.n_words:
                raise RuntimeError(f"teacher gave {len(labels.keep)} labels for {encoded.n_words} words")
            record = LabelledWindow(window, labels.keep, labels.scores, labels.quality, teacher.name, elapsed)
            fh.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            fh.flush()
            words_done += encoded.n_words
            seconds += elapsed
    return {
        "labelled": len(todo),
        "skipped": len(windows) - len(todo),
        "words": words_done,
        "seconds": round(seconds, 2),
        "words_per_second": round(words_done / seconds, 2) if seconds else 0.0,
    }


def read_labelled(
    path: str | Path, *, variation_quantile: float = 0.95, max_gap: float = 0.1, max_keep: float = 0.9
) -> list[LabelledWindow]:
    """Labelled windows; windows with alignment quality figures (LLM teacher) are filtered."""
    records = [LabelledWindow.from_json(r) for r in read_jsonl(path)]
    with_quality = [i for i, r in enumerate(records) if "variation_rate" in r.quality]
    if with_quality:
        keep = quality_filter(
            [records[i].quality for i in with_quality], variation_quantile, max_gap, max_keep
        )
        dropped = {i for i, k in zip(with_quality, keep) if not k}
        records = [r for i, r in enumerate(records) if i not in dropped]
    return records


def teacher_speed(records: Sequence[LabelledWindow]) -> float:
    """Words per second the teacher labelled at (as measured while labelling)."""
    words = sum(len(r.keep) for r in records)
    seconds = sum(r.seconds for r in records)
    return words / seconds if seconds else float("nan")


def mix_answer_words(
    records: Sequence[LabelledWindow], splitter: WordSplitter, weight: float, rate: float = 0.5
) -> list[LabelledWindow]:
    """Teacher labels mixed with QMSum supervision: a word's score is its rank among the teacher's
    scores (0..1) plus `weight` if it is a content word of the window's gold answers or queries;
    the `rate` share of top-scoring words is labelled keep. Windows without queries keep the
    teacher's ranking. Only for training windows: held-out labels stay the teacher's own."""

    out = []
    for record in records:
        if record.window.split != "train" or not record.window.queries or weight <= 0:
            out.append(record)
            continue
        words = splitter.encode(record.window.text).words()
        texts = [q.answer for q in record.window.queries] + [q.query for q in record.window.queries]
        bonus = answer_targets(words, texts).astype(np.float64) * weight
        n = len(record.scores)
        rank = np.argsort(np.argsort(record.scores, kind="stable"), kind="stable") / max(n - 1, 1)
        score = rank + bonus
        out.append(
            LabelledWindow(
                record.window,
                top_k_mask(score, rate),
                score.astype(np.float32),
                record.quality,
                f"{record.teacher}+answers:{weight:g}",
                record.seconds,
            )
        )
    return out

"""Mix several teachers' word labels, and what people wrote about each meeting, into one label set.

Each source's scores become ranks in 0..1 within the window (so a surprisal in nats and a lexical
z-score weigh alike), summed with the source's weight; a training window's words that are content
words of its meeting's QMSum queries, answers and topics (`qmsum.meeting_texts`: every query of the
meeting, not only those overlapping the window) add `topic_weight`. The `rate` share of
top-scoring words is labelled keep. Held-out windows get no topic bonus: their answers are what
the evaluation measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .answers import answer_targets
from .labels import LabelledWindow
from .wordsplit import WordSplitter, top_k_mask


def rank01(scores: np.ndarray) -> np.ndarray:
    """Scores -> ranks scaled to 0..1 (ties broken by position, stable)."""
    n = len(scores)
    order = np.argsort(np.argsort(np.asarray(scores, dtype=np.float64), kind="stable"), kind="stable")
    return order / max(n - 1, 1)


def mix_labels(
    sources: Sequence[tuple[Sequence[LabelledWindow], float]],
    *,
    topics: Mapping[str, Sequence[str]] | None = None,
    topic_weight: float = 0.0,
    rate: float = 0.5,
    splitter: WordSplitter | None = None,
) -> list[LabelledWindow]:
    """Windows every source labelled (in the first source's order), relabelled by the weighted mix."""
    if not sources:
        raise ValueError("mix_labels needs at least one labelled source")
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    if any(weight < 0 for _, weight in sources) or topic_weight < 0:
        raise ValueError("weights must be >= 0")
    by_id = [{r.window.id: r for r in records} for records, _ in sources]
    common = [r for r in sources[0][0] if all(r.window.id in ids for ids in by_id[1:])]
    names = "+".join(f"{records[0].teacher if records else '?'}:{w:g}" for records, w in sources)
    if topic_weight > 0:
        names += f"+topics:{topic_weight:g}"
    out = []
    for first in common:
        parts = [ids[first.window.id] for ids in by_id]
        n = len(first.scores)
        if any(len(p.scores) != n for p in parts):
            raise ValueError(f"window {first.window.id}: sources disagree on its number of words")
        score = sum((w * rank01(p.scores) for p, (_, w) in zip(parts, sources)), np.zeros(n))
        if topic_weight > 0 and topics is not None and first.window.split == "train":
            texts = topics.get(first.window.meeting, [])
            if splitter is None:
                raise ValueError("mixing in topic words needs the encoder's word splitter")
            words = splitter.encode(first.window.text).words()
            score = score + topic_weight * answer_targets(words, texts).astype(np.float64)
        out.append(
            LabelledWindow(
                first.window,
                top_k_mask(score, rate),
                score.astype(np.float32),
                {},
                f"mix({names})",
                sum(p.seconds for p in parts),
            )
        )
    return out

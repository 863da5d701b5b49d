"""Align an LLM's compressed text back onto the original words (LLMLingua-2, section 3.3).

The teacher was asked to delete words only, but LLMs also inflect, re-case, reorder and invent
words. Each compressed word is normalised (lower-cased, stemmed with NLTK's Snowball stemmer,
which needs no downloaded data) and matched to one original word: first searching forward from
where the previous match ended, then backward, both within `window` words; each original word is
used at most once. Matched original words are labelled keep.

Quality, as the paper defines it (|O| original words, |C| compressed words):
- variation rate  VR = share of compressed words whose normal form is nowhere in the original;
- hitting rate    HR = compressed words whose normal form occurs in the original / |O|;
- matching rate   MR = original words labelled keep / |O|;
- alignment gap   AG = HR - MR (words the alignment could not place).
Windows with a high VR (the teacher rewrote) or a high AG (labels unreliable) are filtered out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english")


@lru_cache(maxsize=65536)
def normalize(word: str) -> str:
    """Lower-case and stem a word; punctuation-only words stay as they are."""
    lowered = word.lower()
    core = _EDGE_PUNCT.sub("", lowered)
    if not core:
        return lowered
    if not core.isalpha():
        return core
    return _stemmer().stem(core)


@dataclass(frozen=True)
class Alignment:
    keep: np.ndarray  # bool per original word
    matched_to: np.ndarray  # per compressed word: the original index it matched, or -1
    variation_rate: float
    hitting_rate: float
    matching_rate: float

    @property
    def alignment_gap(self) -> float:
        return self.hitting_rate - self.matching_rate

    def quality(self) -> dict[str, float]:
        return {
            "variation_rate": round(self.variation_rate, 6),
            "hitting_rate": round(self.hitting_rate, 6),
            "matching_rate": round(self.matching_rate, 6),
            "alignment_gap": round(self.alignment_gap, 6),
        }


def align(original: Sequence[str], compressed: Sequence[str], window: int = 150) -> Alignment:
    """Label each original word keep (True) if the compressed text uses it."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    orig = [normalize(w) for w in original]
    comp = [normalize(w) for w in compressed]
    n = len(orig)
    positions: dict[str, list[int]] = {}
    for i, w in enumerate(orig):
        positions.setdefault(w, []).append(i)
    used = np.zeros(n, dtype=bool)
    matched_to = np.full(len(comp), -1, dtype=np.int64)
    cursor = 0  # where the search for the next compressed word starts
    for c, w in enumerate(comp):
        candidates = positions.get(w)
        if not candidates:
            continue
        hit = _forward(candidates, used, cursor, cursor + window)
        if hit is None:
            hit = _backward(candidates, used, cursor - window, cursor)
        if hit is None:
            continue
        used[hit] = True
        matched_to[c] = hit
        if hit >= cursor:
            cursor = hit + 1
    present = sum(1 for w in comp if w in positions)
    absent = len(comp) - present
    return Alignment(
        keep=used,
        matched_to=matched_to,
        variation_rate=absent / len(comp) if comp else 0.0,
        hitting_rate=present / n if n else 0.0,
        matching_rate=float(used.sum()) / n if n else 0.0,
    )


def _forward(candidates: list[int], used: np.ndarray, lo: int, hi: int) -> int | None:
    for i in candidates:  # ascending
        if i >= hi:
            return None
        if i >= lo and not used[i]:
            return i
    return None


def _backward(candidates: list[int], used: np.ndarray, lo: int, hi: int) -> int | None:
    for i in reversed(candidates):
        if i < lo:
            return None
        if i < hi and not used[i]:
            return i
    return None


def quality_filter(
    qualities: Sequence[dict[str, float]],
    variation_quantile: float = 0.95,
    max_gap: float = 0.1,
    max_keep: float = 0.9,
) -> np.ndarray:
    """Which windows to keep: drop those above the `variation_quantile` of variation rate (the
    paper drops the top 5%), those whose alignment gap exceeds `max_gap`, and those where the
    teacher kept more than `max_keep` of the words (it copied the text instead of compressing it,
    which small local LLMs often do)."""
    if not qualities:
        return np.zeros(0, dtype=bool)
    vr = np.array([q["variation_rate"] for q in qualities])
    ag = np.array([q["alignment_gap"] for q in qualities])
    mr = np.array([q.get("matching_rate", 0.0) for q in qualities])
    limit = np.quantile(vr, variation_quantile) if variation_quantile < 1 else np.inf
    return (vr <= limit) & (ag <= max_gap) & (mr <= max_keep)

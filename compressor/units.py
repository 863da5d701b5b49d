"""Units: the words of a context, with their spans, keep probabilities, token counts and forcing.

A unit is what gets kept or dropped. Most units are words made of the encoder's sub-word tokens
(`words.py`); a force-token occurrence that no token covers (e.g. "\\n" for a BERT tokenizer, which
discards whitespace) becomes a unit of its own. Keep-marker spans (``<keep>...</keep>``) and
force-token occurrences are never cut through: tokens inside one occurrence form one unit.
Structure spans (`protect`) are protected the same way: a span kept verbatim is one forced unit
stretched to the span's own edges (an indented code block keeps its first indentation), and the
units of a dropped span are banned: never kept, whatever the budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .words import word_ids, word_probabilities, word_spans

_DIGIT = re.compile(r"\d")


@dataclass
class Units:
    """The units of one context, in text order (all arrays have one row per unit)."""

    text: str  # the context with keep markers removed: what spans index into
    spans: np.ndarray  # [n, 2] int64 character offsets
    probs: np.ndarray  # [n] float32 model keep probability (1.0 for units no token covers)
    forced: np.ndarray  # [n] bool: always kept
    force_id: np.ndarray  # [n] int64: index into the force-token list if the unit is one occurrence, else -1
    window: np.ndarray  # [n] int64: encoder window the unit was scored in
    counts: np.ndarray  # [n] int64: tiktoken tokens of the unit's text
    banned: np.ndarray  # [n] bool: never kept (a structure span whose policy is drop)

    def __len__(self) -> int:
        return len(self.probs)

    def texts(self) -> list[str]:
        return [self.text[s:e] for s, e in self.spans.tolist()]


def strip_keep_markers(
    text: str, markers: tuple[str, str] | None, literal: Sequence[tuple[int, int]] = ()
) -> tuple[str, list[tuple[int, int]]]:
    """Remove keep markers; return the clean text and the kept spans in its coordinates.

    An opening marker without a closing one, a stray closing one, or an opening marker inside a
    `literal` range (code kept verbatim that shows the markers) stays as literal text.
    """
    if not markers:
        return text, []
    opening, closing = markers
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = search = 0
    length = 0
    while True:
        start = text.find(opening, search)
        if start < 0:
            break
        if any(s <= start < e for s, e in literal):
            search = start + len(opening)
            continue
        stop = text.find(closing, start + len(opening))
        if stop < 0:
            break
        out.append(text[pos:start])
        length += start - pos
        inner = text[start + len(opening) : stop]
        if inner:
            spans.append((length, length + len(inner)))
        out.append(inner)
        length += len(inner)
        pos = search = stop + len(closing)
    out.append(text[pos:])
    return "".join(out), spans


def find_occurrences(text: str, force_tokens: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping occurrences of the force tokens (longest first): spans [m, 2] and token index [m]."""
    if not force_tokens or not text:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64)
    index = {tok: i for i, tok in enumerate(force_tokens)}
    pattern = re.compile("|".join(re.escape(t) for t in sorted(index, key=len, reverse=True)))
    found = [(m.start(), m.end(), index[m.group()]) for m in pattern.finditer(text)]
    if not found:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64)
    arr = np.asarray(found, dtype=np.int64)
    return arr[:, :2], arr[:, 2]


def merge_spans(spans: np.ndarray) -> np.ndarray:
    """Sort and merge overlapping spans."""
    if len(spans) == 0:
        return spans.reshape(0, 2)
    spans = spans[np.argsort(spans[:, 0], kind="stable")]
    merged = [list(spans[0])]
    for s, e in spans[1:].tolist():
        if s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return np.asarray(merged, dtype=np.int64)


def occurrence_starts(token_starts: np.ndarray, occ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each token: is it inside an occurrence, and is it the first token of that occurrence."""
    n = len(token_starts)
    if len(occ) == 0 or n == 0:
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    j = np.searchsorted(occ[:, 0], token_starts, side="right") - 1
    inside = (j >= 0) & (token_starts < occ[np.maximum(j, 0), 1])
    occ_id = np.where(inside, j, -1)
    first = inside.copy()
    first[1:] &= occ_id[1:] != occ_id[:-1]
    return inside, first


def overlapping(spans: np.ndarray, occ: np.ndarray) -> np.ndarray:
    """Index of an occurrence overlapping each span, or -1."""
    if len(occ) == 0 or len(spans) == 0:
        return np.full(len(spans), -1, dtype=np.int64)
    j = np.searchsorted(occ[:, 0], spans[:, 1], side="left") - 1
    hit = (j >= 0) & (occ[np.maximum(j, 0), 1] > spans[:, 0])
    return np.where(hit, j, -1)


def uncovered(occ: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Boolean per occurrence: no span overlaps it."""
    if len(occ) == 0:
        return np.zeros(0, dtype=bool)
    return overlapping(occ, spans) < 0


def digit_mask(texts: list[str]) -> np.ndarray:
    return np.fromiter((bool(_DIGIT.search(t)) for t in texts), dtype=bool, count=len(texts))


def build_units(
    text: str,
    tokens: list[str],
    offsets: np.ndarray,
    token_probs: np.ndarray,
    token_window: np.ndarray,
    starts: np.ndarray,
    *,
    force: tuple[np.ndarray, np.ndarray],
    keep_spans: list[tuple[int, int]],
    token_to_word: Literal["mean", "first"],
    force_reserve_digit: bool,
    count: Callable[[str, np.ndarray], np.ndarray],
    verbatim: np.ndarray | None = None,
    banned: np.ndarray | None = None,
    whole: np.ndarray | None = None,
) -> Units:
    """Group tokens into units and attach probabilities, forcing and token counts.

    `starts` is the tokenizer's own "token starts a word" flags (`words.WordRule.starts`); force-token
    occurrences, keep spans and the structure ranges (`verbatim`: kept, `banned`: dropped, `whole`:
    one unit kept or dropped by its score; [m, 2] sorted, non-overlapping) add boundaries around
    themselves and never get split.
    """
    verbatim, whole = _ranges(verbatim), _ranges(whole)
    force_occ, force_ids, banned_ranges = _drop_wins(force, _ranges(keep_spans), _ranges(banned))
    kept = merge_spans(np.concatenate([force_occ, _ranges(keep_spans), verbatim]))
    protected = merge_spans(np.concatenate([kept, banned_ranges, whole]))
    starts = _protected_starts(starts, offsets, protected)
    spans, probs, window = _words(starts, offsets, token_probs, token_window, token_to_word)
    n = len(spans)
    if len(verbatim):
        spans = stretch(spans, kept[overlapping(kept, verbatim) >= 0])
    if len(whole):
        spans = stretch(spans, whole)
    forced = overlapping(spans, kept) >= 0
    force_id = _force_ids(spans, force_occ, force_ids)

    columns = (spans, probs, forced, force_id, window)
    spans, probs, forced, force_id, window = _add_lonely(
        columns, (force_occ, force_ids), offsets, token_window
    )

    banned_units = overlapping(spans, banned_ranges) >= 0
    if force_reserve_digit and n:
        forced = forced | (digit_mask([text[s:e] for s, e in spans.tolist()]) & ~banned_units)
    return Units(
        text=text,
        spans=spans,
        probs=probs.astype(np.float32),
        forced=forced,
        force_id=force_id,
        window=window,
        counts=count(text, spans),
        banned=banned_units & ~forced,
    )


def _words(
    starts: np.ndarray,
    offsets: np.ndarray,
    token_probs: np.ndarray,
    token_window: np.ndarray,
    token_to_word: Literal["mean", "first"],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each word's character span, keep probability and window (its first token's)."""
    ids = word_ids(starts)
    n = int(ids[-1]) + 1 if len(ids) else 0
    spans = word_spans(offsets, ids, n)
    probs = word_probabilities(token_probs.astype(np.float64), ids, n, token_to_word)
    window = np.zeros(n, dtype=np.int64)
    if n:
        window[ids[::-1]] = token_window[::-1]  # first token's window wins
    return spans, probs, window


def _add_lonely(
    columns: tuple[np.ndarray, ...],
    force: tuple[np.ndarray, np.ndarray],
    offsets: np.ndarray,
    token_window: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """The unit columns (spans, probs, forced, force_id, window) with a forced unit for each force
    occurrence no unit covers (e.g. "\\n" for tokenizers that drop whitespace), in the window of the
    token before it."""
    spans = columns[0]
    force_occ, force_ids = force
    lonely = uncovered(force_occ, spans)
    if not lonely.any():
        return columns
    extra = force_occ[lonely]
    extra_window = np.zeros(len(extra), dtype=np.int64)
    if len(offsets):
        before = np.searchsorted(offsets[:, 0], extra[:, 0], side="right") - 1
        extra_window = token_window[np.maximum(before, 0)]
    ones = np.ones(len(extra), dtype=bool)
    more = (extra, ones.astype(np.float32), ones, force_ids[lonely], extra_window)
    merged = [np.concatenate([column, added]) for column, added in zip(columns, more)]
    order = np.argsort(merged[0][:, 0], kind="stable")
    return tuple(column[order] for column in merged)


def _drop_wins(
    force: tuple[np.ndarray, np.ndarray], marked: np.ndarray, banned: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Force-token occurrences outside dropped spans, and the dropped spans no keep marker touches:
    a dropped span drops the force tokens in it; a keep marker wins over both."""
    force_occ, force_ids = force
    if len(banned):
        banned = banned[overlapping(banned, merge_spans(marked)) < 0]
        outside = overlapping(force_occ, banned) < 0
        force_occ, force_ids = force_occ[outside], force_ids[outside]
    return force_occ, force_ids, banned


def _ranges(spans: np.ndarray | list[tuple[int, int]] | None) -> np.ndarray:
    return np.asarray(spans if spans is not None else [], dtype=np.int64).reshape(-1, 2)


def stretch(spans: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Unit spans widened to the edges of the range (sorted, non-overlapping) each one overlaps, never
    into a neighbouring unit: a verbatim span is copied whole, leading indentation included."""
    j = overlapping(spans, ranges)
    hit = np.flatnonzero(j >= 0)
    if len(hit) == 0:
        return spans
    out = spans.copy()
    prev_end = np.concatenate([[0], spans[:-1, 1]])
    next_start = np.concatenate([spans[1:, 0], [np.iinfo(np.int64).max]])
    out[hit, 0] = np.minimum(spans[hit, 0], np.maximum(ranges[j[hit], 0], prev_end[hit]))
    out[hit, 1] = np.maximum(spans[hit, 1], np.minimum(ranges[j[hit], 1], next_start[hit]))
    return out


def _force_ids(spans: np.ndarray, occ: np.ndarray, occ_ids: np.ndarray) -> np.ndarray:
    """Per unit, the force token it is exactly one occurrence of, or -1."""
    force_id = np.full(len(spans), -1, dtype=np.int64)
    if len(occ):
        j = overlapping(spans, occ)
        exact = j >= 0
        exact[exact] = np.all(spans[exact] == occ[j[exact]], axis=1)
        force_id[exact] = occ_ids[j[exact]]
    return force_id


def _protected_starts(starts: np.ndarray, offsets: np.ndarray, protected: np.ndarray) -> np.ndarray:
    """Word-start flags with a boundary before and after each protected span and none inside it."""
    starts = starts.copy()
    if len(starts):
        inside, first = occurrence_starts(offsets[:, 0], protected)
        starts[inside] = first[inside]
        after = np.zeros(len(starts), dtype=bool)
        after[1:] = inside[:-1] & ~inside[1:]
        starts |= after
        starts[0] = True
    return starts

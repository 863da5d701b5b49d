"""Rebuild text from the kept units, in the original's own characters.

Kept units are copied from the original (casing, accents and punctuation as written, unlike
llmlingua's detokenised word pieces). Between two kept units goes the strongest whitespace found
anywhere between them in the original: a blank line, a newline, a space, or nothing. When the units
were adjacent in the original only through dropped units (``state-of-the-art`` without its hyphens)
and both sides are alphanumeric, a space keeps the words apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .units import Units

SEPARATOR = "\n\n"  # between the contexts of a call in its compressed text
_SEPARATORS = ("", " ", "\n", "\n\n")


def gap_levels(text: str, spans: np.ndarray) -> np.ndarray:
    """Whitespace strength of the gap before each unit: 0 none, 1 space, 2 newline, 3 blank line."""
    n = len(spans)
    levels = np.zeros(n, dtype=np.int8)
    if n == 0:
        return levels
    prev_end = np.empty(n, dtype=np.int64)
    prev_end[0] = spans[0, 0]
    prev_end[1:] = spans[:-1, 1]
    for i, (a, b) in enumerate(zip(prev_end.tolist(), spans[:, 0].tolist())):
        if b > a:
            gap = text[a:b]
            newlines = gap.count("\n")
            if newlines:
                levels[i] = 3 if newlines >= 2 else 2
            elif any(c.isspace() for c in gap):
                levels[i] = 1
    return levels


def render(text: str, spans: np.ndarray, keep: np.ndarray, levels: np.ndarray | None = None) -> str:
    """The kept units joined with the whitespace the original had between them."""
    kept = np.flatnonzero(keep)
    if len(kept) == 0:
        return ""
    if levels is None:
        levels = gap_levels(text, spans)
    between = np.zeros(len(kept), dtype=np.int8)
    if len(kept) > 1:
        # max of levels over (previous kept, this kept] for every kept unit after the first
        between[1:] = np.maximum.reduceat(levels[: kept[-1] + 1], kept[:-1] + 1)
    through_dropped = np.zeros(len(kept), dtype=bool)
    through_dropped[1:] = np.diff(kept) > 1
    pieces: list[str] = []
    for i, (s, e) in enumerate(spans[kept].tolist()):
        piece = text[s:e]
        if i:
            sep = _SEPARATORS[int(between[i])]
            if not sep and through_dropped[i] and pieces[-1][-1:].isalnum() and piece[:1].isalnum():
                sep = " "
            elif _separated(pieces[-1], piece, sep):
                sep = ""  # a kept whitespace unit (a forced "\n") already separates them
            pieces.append(sep)
        pieces.append(piece)
    return "".join(pieces)


def _separated(before: str, piece: str, sep: str) -> bool:
    """Whitespace at the edges of two units already separates them, unless `sep` breaks the line and
    the edges do not (a verbatim code block's own indentation is not the line break before it)."""
    edge = before[len(before.rstrip()) :] + piece[: len(piece) - len(piece.lstrip())]
    return bool(edge) and ("\n" in edge or "\n" not in sep)


class Rendering:
    """Keep masks of some contexts' units -> their texts, and the tokens those texts cost joined as a
    call's compressed text is (whitespace levels computed once per context)."""

    def __init__(
        self, units: Sequence[Units], count: Callable[[str], int], levels: Sequence[np.ndarray] | None = None
    ) -> None:
        self.units = list(units)
        self.count = count
        self.levels = (
            list(levels) if levels is not None else [gap_levels(u.text, u.spans) for u in self.units]
        )

    def texts(self, masks: Sequence[np.ndarray]) -> list[str]:
        return [render(u.text, u.spans, m, lv) for u, m, lv in zip(self.units, masks, self.levels)]

    def tokens(self, masks: Sequence[np.ndarray]) -> int:
        return self.count(SEPARATOR.join(self.texts(masks)))

    def context(self, index: int) -> Rendering:
        """The rendering of one of the contexts alone."""
        return Rendering([self.units[index]], self.count, [self.levels[index]])

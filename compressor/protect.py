"""Structure-safe compression: a context's structure spans (`structure.find_spans`) turned into what
units and results need.

`protect` runs before tokenisation. Overlong tokens (kind ``long``) whose policy is not
``compress`` are replaced by `structure.cut_long` (their two ends around a visible marker), so a
1 MB "word" is neither tokenised whole nor allowed to eat the budget; their cut text is then kept
(policy ``keep`` or ``whole``) or never kept (``drop``). The other spans follow their kind's policy: ``keep``
makes the span a verbatim range (one forced unit, copied whole: indentation and line breaks as
written; a JSON document minus its long string values, which compress as prose so the document
stays valid JSON), ``whole`` a range that is one unit but not forced (kept or dropped whole by its
score), ``drop`` a banned range, ``compress`` nothing. A ``<keep>`` marker span wins over
a cut: it stays as written.

`ensure_text` is the other promise: a context with text never compresses to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .structure import Policy, Span, cut_long, find_spans
from .units import Units, overlapping

_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)")  # a JSON string escape is never cut through
_EMPTY = np.zeros((0, 2), dtype=np.int64)


@dataclass(frozen=True)
class Protected:
    """One context after structure detection."""

    text: str  # the context as the model sees it: markers removed, overlong tokens cut
    keep_spans: list[tuple[int, int]]  # keep-marker spans, in `text`'s coordinates
    verbatim: np.ndarray = field(default_factory=lambda: _EMPTY)  # [m, 2] ranges kept as written
    kinds: tuple[str, ...] = ()  # the kind of each verbatim range
    banned: np.ndarray = field(default_factory=lambda: _EMPTY)  # [d, 2] ranges never kept
    cut: bool = False  # an overlong token was cut: `text` is not the original
    whole: np.ndarray = field(default_factory=lambda: _EMPTY)  # [w, 2] ranges kept or dropped whole


def protect(text: str, keep_spans: list[tuple[int, int]], policy: Mapping[str, Policy] | None) -> Protected:
    """The structure of `text` (markers already removed) under `policy` (None: detection off)."""
    if policy is None or not text.strip():
        return Protected(text, keep_spans)
    spans = find_spans(text)
    longs = [
        s
        for s in spans
        if s.kind == "long" and policy["long"] != "compress" and not _touches(s.start, s.end, keep_spans)
    ]
    cut = bool(longs)
    if cut:
        text, keep_spans, cuts = _cut(text, keep_spans, longs)
        spans = [s for s in find_spans(text) if not any(_touches(s.start, s.end, [c]) for c in cuts)]
        spans = sorted(spans + [Span(s, e, "long") for s, e in cuts], key=lambda s: s.start)
    verbatim: list[tuple[int, int]] = []
    kinds: list[str] = []
    banned: list[tuple[int, int]] = []
    whole: list[tuple[int, int]] = []
    for span in spans:
        action = policy[span.kind]
        if action == "drop":
            banned.append((span.start, span.end))
        elif action in ("keep", "whole"):
            ranges = _json_ranges(text, span) if span.kind == "json" else [(span.start, span.end)]
            if action == "whole":
                whole.extend(ranges)
                continue
            verbatim.extend(ranges)
            kinds.extend([span.kind] * len(ranges))
    return Protected(text, keep_spans, _array(verbatim), tuple(kinds), _array(banned), cut, _array(whole))


def literal_ranges(
    text: str, markers: tuple[str, str] | None, policy: Mapping[str, Policy] | None
) -> list[tuple[int, int]]:
    """Code kept verbatim in the raw text (before keep markers are removed): markers inside it are
    literal text, e.g. a code sample showing ``<keep>``. Detection runs only if a marker occurs."""
    if policy is None or not markers or policy["code"] != "keep" or markers[0] not in text:
        return []
    return [(s.start, s.end) for s in find_spans(text) if s.kind == "code"]


def _touches(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _array(ranges: list[tuple[int, int]]) -> np.ndarray:
    return np.asarray(ranges, dtype=np.int64).reshape(-1, 2)


def _cut(
    text: str, keep_spans: list[tuple[int, int]], longs: list[Span]
) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
    """`text` with each overlong token cut; the keep spans moved to the new text; the cut ranges."""
    pieces: list[str] = []
    cuts: list[tuple[int, int]] = []
    shifts: list[tuple[int, int]] = []  # (old end of a cut, total shift after it)
    pos = shift = 0
    for span in longs:
        short = cut_long(text[span.start : span.end])
        pieces += [text[pos : span.start], short]
        start = span.start + shift
        cuts.append((start, start + len(short)))
        shift += len(short) - (span.end - span.start)
        shifts.append((span.end, shift))
        pos = span.end
    pieces.append(text[pos:])

    def moved(p: int) -> int:
        return p + next((d for end, d in reversed(shifts) if end <= p), 0)

    return "".join(pieces), [(moved(s), moved(e)) for s, e in keep_spans], cuts


def _json_ranges(text: str, span: Span) -> list[tuple[int, int]]:
    """A JSON span minus its compressible string values, plus the escapes inside those values (an
    escape cut in half would end the string early or break the document)."""
    out: list[tuple[int, int]] = []
    pos = span.start
    for start, end in span.inner:
        if start > pos:
            out.append((pos, start))
        out.extend((m.start(), m.end()) for m in _ESCAPE.finditer(text, start, end))
        pos = end
    if span.end > pos:
        out.append((pos, span.end))
    return out


def ensure_text(units: Sequence[Units], masks: list[np.ndarray]) -> list[np.ndarray]:
    """Masks where every context with text keeps at least its most probable allowed unit."""
    out = []
    for u, m in zip(units, masks):
        allowed = ~u.banned
        if len(u) and not m.any() and allowed.any() and u.text.strip():
            m = m.copy()
            m[int(np.argmax(np.where(allowed, u.probs, -1.0)))] = True
        out.append(m)
    return out


def verbatim_tokens(
    units: Sequence[Units], masks: Sequence[np.ndarray], protected: Sequence[Protected]
) -> dict[str, int]:
    """Tokens of the kept units that are structure spans kept verbatim, per kind."""
    totals: dict[str, int] = {}
    for u, m, p in zip(units, masks, protected):
        if not len(p.verbatim) or not len(u):
            continue
        j = overlapping(u.spans, p.verbatim)
        for index, tokens in zip(j[m & u.forced].tolist(), u.counts[m & u.forced].tolist()):
            if index >= 0:
                kind = p.kinds[index]
                totals[kind] = totals.get(kind, 0) + int(tokens)
    return totals


def forced_tokens(units: Sequence[Units]) -> int:
    """Tokens the forced units of `units` spend before any other unit."""
    return int(sum(int(u.counts[u.forced].sum()) for u in units))

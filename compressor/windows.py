"""Cut a tokenised context into encoder windows.

Both strategies cut only after a "chunk end" token (a sentence end such as ".", or a token followed by
a newline) unless a window would otherwise exceed the model's length.

- `greedy_windows` is llmlingua's rule: fill each window up to the model's length, then back off to
  the last chunk end. Windows depend on everything before them.
- `stable_windows` places cuts where the text itself says so: always at paragraph breaks, and at the
  sentence ends whose sentence hashes to 0 modulo `divisor` (content-defined chunking). The same
  passage therefore gets the same windows whatever precedes it (after the first cut inside it), so
  its scores can be cached and reused when it shows up in another prompt.
"""

from __future__ import annotations

import zlib

import numpy as np

Window = tuple[int, int]  # [start, end) token indices


def end_flags(
    text: str, offsets: np.ndarray, chunk_end_tokens: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(chunk end after token i, paragraph break after token i) for every token."""
    n = len(offsets)
    ends = np.zeros(n, dtype=bool)
    paragraphs = np.zeros(n, dtype=bool)
    if n == 0:
        return ends, paragraphs
    wanted = {t for t in chunk_end_tokens if t.strip()}
    newline = any("\n" in t for t in chunk_end_tokens)
    next_start = np.empty(n, dtype=np.int64)
    next_start[:-1] = offsets[1:, 0]
    next_start[-1] = len(text)
    for i in range(n):
        start, end = int(offsets[i, 0]), int(offsets[i, 1])
        if wanted and text[start:end] in wanted:
            ends[i] = True
        gap = text[end : int(next_start[i])]
        if "\n" in gap:
            if newline:
                ends[i] = True
            if gap.count("\n") >= 2:
                paragraphs[i] = True
    return ends, paragraphs


def greedy_windows(ends: np.ndarray, max_len: int) -> list[Window]:
    n = len(ends)
    windows: list[Window] = []
    start = 0
    while start < n:
        if n - start <= max_len:
            windows.append((start, n))
            break
        cut = _last_end(ends, start, start + max_len)
        windows.append((start, cut))
        start = cut
    return windows


def stable_windows(
    ids: np.ndarray, ends: np.ndarray, paragraphs: np.ndarray, max_len: int, divisor: int = 6
) -> list[Window]:
    n = len(ids)
    if n == 0:
        return []
    cut_after = np.zeros(n, dtype=bool)
    sentence_start = 0
    for i in np.flatnonzero(ends | paragraphs):
        sentence = ids[sentence_start : i + 1]
        if paragraphs[i] or zlib.crc32(sentence.astype(np.int64).tobytes()) % divisor == 0:
            cut_after[i] = True
        sentence_start = i + 1
    windows: list[Window] = []
    start = 0
    for cut in np.flatnonzero(cut_after).tolist() + [n - 1]:
        stop = cut + 1
        while stop - start > max_len:  # too long between content cuts: split like greedy
            split = _last_end(ends, start, start + max_len)
            windows.append((start, split))
            start = split
        if stop > start:
            windows.append((start, stop))
            start = stop
    return windows


def _last_end(ends: np.ndarray, start: int, limit: int) -> int:
    """End (exclusive) of a window starting at `start`: after the last chunk end before `limit`."""
    candidates = np.flatnonzero(ends[start + 1 : limit])  # a cut needs at least one token before it
    if len(candidates):
        return start + 1 + int(candidates[-1]) + 1
    return limit


def cut_windows(
    windowing: str, ids: np.ndarray, ends: np.ndarray, paragraphs: np.ndarray, max_len: int
) -> list[Window]:
    """A context's windows by the ``windowing`` option: "stable" (default) or "greedy"."""
    if windowing == "greedy":
        return greedy_windows(ends, max_len)
    return stable_windows(ids, ends, paragraphs, max_len)

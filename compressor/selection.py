"""Which units to keep: the selection algorithms behind the budget strategies (`budget`).

- `select_window`: LLMLingua-2's rule, per encoder window: the threshold is the
  ``int(100 * (1 - rate) + 1)``-th percentile of the window's word probabilities, each repeated once
  per tiktoken token of the word; keep words strictly above it (or equal to it when it is 1.0).
  Every window keeps about `rate` of itself, so short windows, forced words and uneven windows make
  the total miss the target (llmlingua issues #195, #196).
- `select_global`: rank every unit of the given contexts together and take the most probable until
  the budget is spent, then correct against the real token count of the rendered text (joining
  words changes how tiktoken merges them). Meets the target within a few percent whatever the length.
- `drop_consecutive_forced`: llmlingua's ``drop_consecutive`` (runs of one force token collapse).

Forced units are always kept and spend budget first; banned units (a dropped structure span) are
never kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .units import Units


def select_window(units: Units, rate: float) -> np.ndarray:
    keep = np.ones(len(units), dtype=bool)
    reduce_rate = 1.0 - rate
    if reduce_rate <= 0 or len(units) == 0:
        return keep & ~units.banned
    probs = np.where(units.forced, 1.0, units.probs).astype(np.float64)
    counts = np.maximum(units.counts, 0)
    order = np.argsort(units.window, kind="stable")
    bounds = np.flatnonzero(np.diff(units.window[order])) + 1
    for group in np.split(order, bounds):
        p = probs[group]
        repeated = np.repeat(p, counts[group])
        if len(repeated) == 0:
            continue
        threshold = np.percentile(repeated, int(100 * reduce_rate + 1))
        keep[group] = (p > threshold) | ((threshold == 1.0) & (p == threshold))
    return keep & ~units.banned


def window_floor(units: Units, rate: float) -> np.ndarray:
    """Per unit, its window's ``int(100 * (1 - rate))``-th percentile of word probabilities: what
    llmlingua's drop_consecutive counts as "a word kept between two force tokens"."""
    floor = np.zeros(len(units), dtype=np.float64)
    for w in np.unique(units.window):
        sel = units.window == w
        floor[sel] = np.percentile(units.probs[sel], int(100 * (1 - rate)))
    return floor


def drop_consecutive_forced(units: Units, keep: np.ndarray, between: np.ndarray) -> np.ndarray:
    """Drop a force-token unit equal to the previous force-token unit when no `between` unit lies
    between them (llmlingua's ``drop_consecutive``): runs of "\\n\\n\\n" or "..." collapse."""
    idx = np.flatnonzero(units.force_id >= 0)
    if len(idx) < 2:
        return keep
    keep = keep.copy()
    signal = np.concatenate([[0], np.cumsum(between & (units.force_id < 0))])
    same = units.force_id[idx[1:]] == units.force_id[idx[:-1]]
    nothing_between = signal[idx[1:]] - signal[idx[:-1] + 1] == 0
    keep[idx[1:][same & nothing_between]] = False
    return keep


def select_global(
    contexts: Sequence[Units],
    budget: int,
    measure: Callable[[list[np.ndarray]], int],
    *,
    postprocess: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
    tolerance: float = 0.02,
    max_rounds: int = 16,
) -> list[np.ndarray]:
    """Keep the most probable units of all contexts within `budget` tokens.

    `measure(keeps)` returns the real token count of the text the keep masks render to; the
    selection is corrected against it a few times (it moves by whole words, so it converges fast).
    """
    sizes = [len(u) for u in contexts]
    if sum(sizes) == 0:
        return [np.zeros(0, dtype=bool) for _ in contexts]
    probs = np.concatenate([u.probs for u in contexts]).astype(np.float64)
    forced = np.concatenate([u.forced for u in contexts])
    counts = np.concatenate([u.counts for u in contexts]).astype(np.int64)
    banned = np.concatenate([u.banned for u in contexts])
    free = np.flatnonzero(~forced & ~banned)
    order = free[np.argsort(-probs[free], kind="stable")]
    cumulative = np.cumsum(counts[order])
    forced_tokens = int(counts[forced].sum())
    free_tokens = int(counts[free].sum())
    if forced_tokens >= budget and free_tokens:
        # what must be kept verbatim fills the budget alone: the rest still keeps the requested
        # share of itself instead of vanishing (the result reports the call as over budget)
        share = budget / (forced_tokens + free_tokens)
        budget = forced_tokens + max(1, round(share * free_tokens))
    splits = np.cumsum(sizes)[:-1]

    def masks_for(n_free: int) -> tuple[list[np.ndarray], int]:
        keep = forced.copy()
        keep[order[:n_free]] = True
        masks = np.split(keep, splits)
        masks = postprocess(masks) if postprocess else masks
        return masks, measure(masks)

    def n_for(tokens: float) -> int:
        k = int(np.searchsorted(cumulative, tokens, side="right"))
        if k < len(cumulative) and k > 0 and abs(cumulative[k] - tokens) < abs(cumulative[k - 1] - tokens):
            k += 1
        return min(k, len(order))

    return _search(len(order), n_for, masks_for, budget, forced_tokens, tolerance, max_rounds)


def _search(
    n: int,
    n_for: Callable[[float], int],
    measure_k: Callable[[int], tuple[list[np.ndarray], int]],
    budget: int,
    forced_tokens: int,
    tolerance: float,
    max_rounds: int,
) -> list[np.ndarray]:
    """Find how many free units to keep so the rendered text meets `budget`: a first guess from the
    units' own token counts, rescaled while only one side of the budget is known, then regula falsi
    inside the bracket (joining words changes the count by more than the words' own tokens, so a
    plain correction by the error can oscillate around the target)."""
    desired = float(budget - forced_tokens)
    k = n_for(desired) if desired > 0 else 0
    below: tuple[int, int] | None = None  # (k, tokens) with tokens <= budget
    above: tuple[int, int] | None = None
    best: tuple[float, list[np.ndarray]] | None = None
    tried: set[int] = set()
    for _ in range(max_rounds):
        tried.add(k)
        masks, actual = measure_k(k)
        error = actual - budget
        if best is None or abs(error) < best[0]:
            best = (abs(error), masks)
        if abs(error) <= tolerance * budget or (k == 0 and error > 0) or (k == n and error < 0):
            break
        if error < 0 and (below is None or k > below[0]):
            below = (k, actual)
        elif error > 0 and (above is None or k < above[0]):
            above = (k, actual)
        if below is not None and above is not None:
            if above[0] - below[0] <= 1:
                break
            slope = (above[0] - below[0]) / max(above[1] - below[1], 1)
            k = below[0] + round((budget - below[1]) * slope)
            k = min(max(k, below[0] + 1), above[0] - 1)
        else:
            desired = max(desired * budget / max(actual, 1), 0.0)
            k = n_for(desired)
        if k in tried:
            break
    assert best is not None
    return best[1]

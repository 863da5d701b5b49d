"""How many tokens a call keeps, per context, and the strategy that spends them.

A call's budget is planned once, from its options, before any unit is chosen (`plan_budget`):

1. the context filter (``context_filter``) keeps the contexts whose mean keep probability is among
   the top ``context_rate`` of them (LLMLingua-2's coarse step: `context_scores`, `select_contexts`);
2. `allocate_budget` turns the contexts' token counts into the call's budget: ``target_tokens``,
   else ``round(rate * tokens)``; per context when ``context_budgets`` are given, or when relevance
   scores split the call's budget (question-weighted: `split_budget`, as `QuestionAwareCompressor`
   and the LangChain document compressor do);
3. one selection strategy spends it:
   - `GlobalSelection`: the units of all kept contexts ranked together against one budget;
   - `PerContextSelection`: each kept context against its own budget;
   - `WindowSelection`: LLMLingua-2's per-window percentile at one rate;
   or none when everything fits (the input is returned as it is).

The selection algorithms are in `selection`; `render.Rendering` turns keep masks into text and counts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from .options import CompressOptions, OptionsError
from .render import Rendering
from .selection import drop_consecutive_forced, select_global, select_window, window_floor
from .units import Units

T = TypeVar("T")
Masks = list[np.ndarray]


# ---------------------------------------------------------------------------------- token budgets
@dataclass(frozen=True)
class Budget:
    """What one call may keep: `total` tokens, or `per_context` budgets (each context meets its own)."""

    total: int
    per_context: tuple[int, ...] | None = None
    shared: bool = False  # per_context are shares of `total`: one context's overrun comes out of the others

    def fits(self, tokens: Sequence[int], joined: int) -> bool:
        """Nothing to remove: each context within its budget, or the whole call within `total`."""
        if self.per_context is None:
            return self.total >= joined
        return all(b >= n for b, n in zip(self.per_context, tokens))


def allocate_budget(
    tokens: Sequence[int],
    options: CompressOptions,
    relevance: Sequence[float] | None = None,
    *,
    joined: int | None = None,
    temperature: float = 0.1,
    min_rate: float = 0.1,
) -> Budget:
    """The budget of a call over contexts of ``tokens[i]`` tokens.

    The call's total is ``options.target_tokens``, else ``round(options.rate * joined)`` (`joined`:
    the tokens of the contexts as one text; default their sum). With `relevance` (one score per
    context) the total is split by relevance (`split_budget`; every context gets at least one token);
    otherwise ``options.context_budgets``, when set, are the per-context budgets. Relevance shares,
    and ``context_budgets`` given with ``target_tokens``, are *shared*: a context whose verbatim
    spans (numbers, structure) overrun its share takes the excess from the others, so that the call
    keeps about its total (`PerContextSelection`); ``context_budgets`` alone are each context's own.
    """
    whole = sum(tokens) if joined is None else joined
    total = options.target_tokens if options.target_tokens is not None else round(options.rate * whole)
    if relevance is not None:
        shares = split_budget(tokens, relevance, total, temperature=temperature, min_rate=min_rate)
        return Budget(total, tuple(max(1, int(s)) for s in shares), shared=True)
    if options.context_budgets is not None:
        if len(options.context_budgets) != len(tokens):
            raise OptionsError(
                f"context_budgets has {len(options.context_budgets)} entries for {len(tokens)} contexts"
            )
        if options.target_tokens is not None:  # shares of one budget
            return Budget(options.target_tokens, options.context_budgets, shared=True)
        return Budget(sum(options.context_budgets), options.context_budgets)
    return Budget(total)


def check_split(temperature: float, min_rate: float) -> None:
    """The shape of a relevance split (`split_budget`) is valid, or ValueError."""
    if temperature <= 0 or not 0 < min_rate <= 1:
        raise ValueError("temperature must be > 0 and min_rate in (0, 1]")


def split_budget(
    tokens: Sequence[int],
    scores: Sequence[float],
    budget: int,
    *,
    temperature: float = 0.1,
    min_rate: float = 0.1,
) -> list[int]:
    """Per-unit token targets summing to about `budget`, larger for more relevant units.

    Unit i keeps ``clip(c * exp((s_i - max s) / temperature), min_rate, 1)`` of its ``tokens[i]``,
    with the scale ``c`` found by bisection so the targets add up to `budget`. A small `temperature`
    favours the top units strongly; a large one tends to the same rate for all.
    """
    if len(tokens) != len(scores):
        raise ValueError(f"{len(tokens)} token counts for {len(scores)} scores")
    check_split(temperature, min_rate)
    total = sum(tokens)
    if not tokens or budget >= total:
        return list(tokens)
    if budget <= min_rate * total:  # even the floor does not fit: the same rate for everyone
        return [max(1, round(n * budget / total)) if n else 0 for n in tokens]
    top = max(scores)
    log_weights = [(s - top) / temperature for s in scores]

    def rates(log_scale: float) -> list[float]:
        return [min(1.0, max(min_rate, math.exp(min(0.0, log_scale + lw)))) for lw in log_weights]

    def kept(log_scale: float) -> float:
        return sum(n * r for n, r in zip(tokens, rates(log_scale)))

    # at log(min_rate) every unit sits at the floor (< budget); at -min(log_weights) all keep everything
    low, high = math.log(min_rate), -min(log_weights)
    for _ in range(60):
        mid = (low + high) / 2
        if kept(mid) < budget:
            low = mid
        else:
            high = mid
    return [max(1, round(n * r)) if n else 0 for n, r in zip(tokens, rates(high))]


# ---------------------------------------------------------------------------------- context filter
def context_scores(contexts: Sequence[Units]) -> np.ndarray:
    """Mean model keep probability of each context's words (LLMLingua-2's context-level score)."""
    return np.asarray([float(u.probs.mean()) if len(u) else 0.0 for u in contexts], dtype=np.float64)


def select_contexts(scores: np.ndarray, context_rate: float, force: Sequence[int] = ()) -> np.ndarray:
    """Keep contexts scoring at or above the ``int(100 * (1 - context_rate))``-th percentile."""
    if len(scores) == 0:
        return np.zeros(0, dtype=bool)
    threshold = np.percentile(scores, int(100 * (1 - context_rate)))
    keep = scores >= threshold
    for i in force:
        if 0 <= i < len(scores):
            keep[i] = True
    return keep


def context_rate(options: CompressOptions, joined: int) -> float:
    """Share of contexts the filter keeps: ``context_rate``; else twice the token target's share of
    the call (at most 1) or ``(1 + rate) / 2``."""
    if options.context_rate is not None:
        return options.context_rate
    if options.target_tokens is not None:
        return min(1.0, 2 * options.target_tokens / max(joined, 1))
    return (options.rate + 1.0) / 2


def window_rate(options: CompressOptions, kept_tokens: int) -> float:
    """The rate of every window (``budget="window"``): ``rate``, or the token target's share of the
    kept contexts' tokens (at most 1)."""
    if options.target_tokens is None:
        return options.rate
    return min(1.0, options.target_tokens / max(kept_tokens, 1))


# ---------------------------------------------------------------------------------- strategies
class Selection(Protocol):
    """Chooses the units to keep in the kept contexts (one keep mask per context)."""

    def select(self, units: Sequence[Units], rendering: Rendering) -> Masks: ...


@dataclass(frozen=True)
class GlobalSelection:
    """The units of all contexts ranked together; the rendered text of the call meets `total`."""

    total: int
    drop_consecutive: bool = False

    def select(self, units: Sequence[Units], rendering: Rendering) -> Masks:
        return select_global(
            units, self.total, rendering.tokens, postprocess=_repeats(units, self.drop_consecutive)
        )


@dataclass(frozen=True)
class PerContextSelection:
    """Each context's rendered text meets its own budget.

    With `total` (the budgets are shares of one budget) a context whose forced words alone overrun
    its share keeps them, and the excess comes out of the contexts that stayed within theirs (their
    budgets scaled down alike, a few rounds) so the call keeps about `total` tokens.
    """

    budgets: tuple[int, ...]
    drop_consecutive: bool = False
    total: int | None = None
    rounds: int = 4
    tolerance: float = 0.02

    def select(self, units: Sequence[Units], rendering: Rendering) -> Masks:
        budgets = list(self.budgets)
        masks = [self._one(units, rendering, i, b) for i, b in enumerate(budgets)]
        if self.total is None:
            return masks
        used = [rendering.context(i).tokens([m]) for i, m in enumerate(masks)]
        for _ in range(self.rounds):
            over = sum(used) - self.total
            within = [i for i, (u, b) in enumerate(zip(used, budgets)) if u <= b and b > 1]
            spare = sum(budgets[i] for i in within)
            if over <= max(1, self.tolerance * self.total) or spare <= 0:
                break
            scale = max(0.0, 1.0 - over / spare)
            for i in within:  # only these change: the others' counts stand
                budgets[i] = max(1, int(budgets[i] * scale))
                masks[i] = self._one(units, rendering, i, budgets[i])
                used[i] = rendering.context(i).tokens([masks[i]])
        return masks

    def _one(self, units: Sequence[Units], rendering: Rendering, i: int, budget: int) -> np.ndarray:
        u = units[i]
        return select_global(
            [u], budget, rendering.context(i).tokens, postprocess=_repeats([u], self.drop_consecutive)
        )[0]


@dataclass(frozen=True)
class WindowSelection:
    """LLMLingua-2's rule: every encoder window keeps about `rate` of its tokens."""

    rate: float
    drop_consecutive: bool = False

    def select(self, units: Sequence[Units], rendering: Rendering) -> Masks:
        masks = [select_window(u, self.rate) for u in units]
        if self.drop_consecutive:  # llmlingua: "kept between" means above the window's floor
            masks = [
                drop_consecutive_forced(u, m, u.probs > window_floor(u, self.rate))
                for u, m in zip(units, masks)
            ]
        return masks


def _repeats(units: Sequence[Units], drop: bool) -> Callable[[Masks], Masks] | None:
    """The postprocess dropping repeated force tokens (``drop_consecutive``), or None."""
    if not drop:
        return None

    def drop_repeats(masks: Masks) -> Masks:
        return [drop_consecutive_forced(u, m, m) for u, m in zip(units, masks)]

    return drop_repeats


# ---------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """What one call keeps: which contexts, and the strategy choosing their units."""

    keep: np.ndarray  # [contexts] bool: kept by the context filter
    scores: np.ndarray  # [contexts] mean keep probability (the filter's score)
    selection: Selection | None  # None: everything fits, the input stays as it is
    total: int = 0  # the call's token budget

    def kept(self, items: Sequence[T]) -> list[T]:
        """The items of the kept contexts."""
        return [x for x, k in zip(items, self.keep) if k]

    def restore(self, kept: Sequence[T], dropped: Sequence[T]) -> list[T]:
        """One item per context: `kept`'s in order for kept contexts, `dropped`'s for the others."""
        it = iter(kept)
        return [next(it) if k else d for k, d in zip(self.keep, dropped)]


def plan_budget(units: Sequence[Units], tokens: Sequence[int], joined: int, options: CompressOptions) -> Plan:
    """The plan of a call over contexts of `units` (``tokens[i]`` tokens each, `joined` as one text)."""
    scores = context_scores(units)
    keep = np.ones(len(units), dtype=bool)
    if options.context_filter and len(units) > 1:
        keep = select_contexts(scores, context_rate(options, joined), options.force_contexts)
    budget = allocate_budget(tokens, options, joined=joined)
    banned = any(u.banned.any() for u in units)  # a dropped structure span: something to remove
    if keep.all() and budget.fits(tokens, joined) and not banned:
        return Plan(keep, scores, None, budget.total)
    return Plan(keep, scores, _selection(options, budget, tokens, keep), budget.total)


def _selection(
    options: CompressOptions, budget: Budget, tokens: Sequence[int], keep: np.ndarray
) -> Selection:
    """The strategy the options ask for, over the kept contexts."""
    if options.budget == "window":
        kept_tokens = sum(n for n, k in zip(tokens, keep) if k)
        return WindowSelection(window_rate(options, kept_tokens), options.drop_consecutive)
    if budget.per_context is not None:
        budgets = tuple(b for b, k in zip(budget.per_context, keep) if k)
        total = min(budget.total, sum(budgets)) if budget.shared else None
        return PerContextSelection(budgets, options.drop_consecutive, total)
    return GlobalSelection(budget.total, options.drop_consecutive)

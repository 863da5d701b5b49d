"""Options of a compression call and the interface every compressor implements."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, Protocol, runtime_checkable

from .result import CompressionResult
from .structure import KINDS, Policy, resolve_policy

BudgetMode = Literal["global", "window"]
Windowing = Literal["stable", "greedy"]
StructureSetting = tuple[tuple[str, str], ...] | Literal["off"]


class OptionsError(ValueError):
    """An option is out of range or of the wrong type."""


@dataclass(frozen=True)
class CompressOptions:
    """What to keep. Every field has a safe default; `validate()` rejects nonsense with a clear message.

    rate: fraction of tiktoken tokens to keep, in (0, 1]. Ignored when `target_tokens` is set.
    target_tokens: absolute token budget for the whole call (all contexts together).
    budget: "global" ranks every word of every kept context together and meets the budget within a
        few percent whatever the input length; "window" is LLMLingua-2's per-window percentile
        (compatible with llmlingua 0.2.2 decisions, misses the budget on short or uneven inputs).
    windowing: "stable" cuts windows where the text itself says so (sentence ends picked by a hash of
        the sentence, paragraph breaks), so a document scores the same whatever surrounds it and its
        windows can be cached; "greedy" fills each window to the model's length like llmlingua.
    force_tokens: strings always kept verbatim wherever they occur (e.g. "\\n", "?", "Answer:").
    force_reserve_digit: keep every word containing a digit.
    drop_consecutive: drop a force token that would follow the same force token with nothing kept
        between them (e.g. runs of "\\n").
    token_to_word: how sub-token probabilities become a word probability: "mean" or "first".
    chunk_end_tokens: where windows may be cut.
    keep_markers: (open, close) tags marking spans kept verbatim; tags are removed from the output.
        None disables marker parsing.
    context_filter: drop whole low-scoring contexts first (LLMLingua-2's coarse step), then words.
    context_rate: fraction of contexts kept by the context filter (default (1 + rate) / 2).
    force_contexts: indices of contexts the context filter never drops.
    context_budgets: a token budget per context (global mode) instead of one shared budget, e.g. a
        retriever's relevance-weighted split; one call still batches every context's windows.
    return_words: include per-word probabilities and labels in the result.
    structure: structure-safe compression (`structure`): code, JSON, tables, URLs, e-mail addresses,
        paths, numbers and overlong tokens are found before classification and each kind follows
        its policy ("keep" verbatim, "compress" as prose, "drop", "whole": one unit kept or dropped
        whole by its score). () is `structure.DEFAULT_POLICY`;
        per-kind overrides as a mapping or (kind, policy) pairs, e.g. {"code": "compress"}
        (stored as sorted pairs); "off" turns detection off (plain word-by-word compression).
    """

    rate: float = 0.5
    target_tokens: int | None = None
    budget: BudgetMode = "global"
    windowing: Windowing = "stable"
    force_tokens: tuple[str, ...] = ()
    force_reserve_digit: bool = False
    drop_consecutive: bool = False
    token_to_word: Literal["mean", "first"] = "mean"
    chunk_end_tokens: tuple[str, ...] = (".", "\n")
    keep_markers: tuple[str, str] | None = ("<keep>", "</keep>")
    context_filter: bool = False
    context_rate: float | None = None
    force_contexts: tuple[int, ...] = ()
    context_budgets: tuple[int, ...] | None = None
    return_words: bool = False
    structure: StructureSetting = ()

    def __post_init__(self) -> None:  # a mapping or list becomes sorted pairs, so options stay hashable
        object.__setattr__(self, "structure", _structure_setting(self.structure))

    def structure_policy(self) -> dict[str, Policy] | None:
        """The policy of every kind, or None when structure detection is off."""
        if self.structure == "off":
            return None
        return resolve_policy(dict(self.structure))

    def validate(self) -> CompressOptions:
        rate = self.rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
            raise OptionsError(f"rate must be a number in (0, 1], got {rate!r}")
        if not 0.0 < float(rate) <= 1.0:
            raise OptionsError(f"rate must be in (0, 1], got {rate}")
        if self.target_tokens is not None and (
            isinstance(self.target_tokens, bool)
            or not isinstance(self.target_tokens, int)
            or self.target_tokens < 1
        ):
            raise OptionsError(f"target_tokens must be a positive integer, got {self.target_tokens!r}")
        if self.budget not in ("global", "window"):
            raise OptionsError(f"budget must be 'global' or 'window', got {self.budget!r}")
        if self.windowing not in ("stable", "greedy"):
            raise OptionsError(f"windowing must be 'stable' or 'greedy', got {self.windowing!r}")
        if self.token_to_word not in ("mean", "first"):
            raise OptionsError(f"token_to_word must be 'mean' or 'first', got {self.token_to_word!r}")
        for name in ("force_tokens", "chunk_end_tokens"):
            values = getattr(self, name)
            if isinstance(values, str) or not all(isinstance(v, str) and v for v in values):
                raise OptionsError(f"{name} must be a list of non-empty strings, got {values!r}")
        if self.keep_markers is not None:
            if len(self.keep_markers) != 2 or not all(isinstance(m, str) and m for m in self.keep_markers):
                raise OptionsError("keep_markers must be two non-empty strings (open, close) or None")
        if self.context_budgets is not None:
            if isinstance(self.context_budgets, (str, bytes)) or not all(
                isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in self.context_budgets
            ):
                raise OptionsError(
                    f"context_budgets must be non-negative integers, got {self.context_budgets!r}"
                )
            if self.budget != "global":
                raise OptionsError("context_budgets needs budget='global'")
        if self.context_rate is not None and not 0.0 < self.context_rate <= 1.0:
            raise OptionsError(f"context_rate must be in (0, 1], got {self.context_rate}")
        self._validate_structure()
        return self

    def _validate_structure(self) -> None:
        value = self.structure
        if value == "off":
            return
        if not isinstance(value, tuple) or not all(
            isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
        ):
            raise OptionsError(
                f'structure must be "off" or a mapping of kind to policy ({", ".join(KINDS)}: '
                f"keep, compress, drop or whole), got {value!r}"
            )
        try:
            resolve_policy(dict(value))
        except ValueError as exc:
            raise OptionsError(f"structure: {exc}") from None

    def with_overrides(self, **overrides: Any) -> CompressOptions:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise OptionsError(f"unknown option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for key in ("force_tokens", "chunk_end_tokens", "force_contexts", "keep_markers", "context_budgets"):
            value = overrides.get(key)
            if value is not None and not isinstance(value, (tuple, str)):
                overrides[key] = tuple(value)
        return replace(self, **overrides).validate()


def _structure_setting(value: object) -> object:
    """`CompressOptions.structure` as stored: "off", or (kind, policy) pairs sorted by kind. Anything
    else is left as it is for `validate` to reject."""
    if value is None or value == "on" or value == "default":
        return ()
    if isinstance(value, Mapping):
        value = list(value.items())
    if isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return tuple(sorted((tuple(p) for p in value), key=lambda p: str(p[0])))
    return value


@runtime_checkable
class Compressor(Protocol):
    """Anything that turns contexts into shorter contexts (the service, LangChain adapters and eval
    runners take any object of this shape)."""

    name: str

    def compress(
        self, context: str | Sequence[str], options: CompressOptions | None = None, /, **overrides: Any
    ) -> CompressionResult: ...

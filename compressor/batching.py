"""Windows grouped into model calls: length-sorted batches with little padding.

Stable windows range from a few tokens to the model's length, so a batch pads every row to its
longest window. Padding costs in the encoder's matrix products (rows of padding) and more in its
attention (whose cost grows with the square of the padded width), while a batch of one window costs
little more per token than a full one (docs/benchmarks.md: measured lever). So a batch is cut as soon
as its padding would exceed ``1 - min_fill`` of its tokens. A runtime whose rounding depends on the
padded width (bf16) gets ``min_fill=1``: only windows of equal length share a call, and a window
scores exactly as it does alone (what the segment cache needs: cached scores equal fresh ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_MIN_FILL = 0.95
DEFAULT_MAX_ROWS = 32
DEFAULT_MAX_TOKENS = 4096


@dataclass(frozen=True)
class BatchPolicy:
    """max_rows: windows per call; max_tokens: padded tokens per call (at least one window of the
    model's length fits whatever is asked); min_fill: the share of a batch's tokens that must be real
    tokens, in (0, 1] (1: only windows of equal length share a call)."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_tokens: int = DEFAULT_MAX_TOKENS
    min_fill: float = DEFAULT_MIN_FILL

    def __post_init__(self) -> None:
        for name in ("max_rows", "max_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        fill = self.min_fill
        if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not 0.0 < fill <= 1.0:
            raise ValueError(f"min_fill must be a number in (0, 1], got {fill!r}")

    def batches(self, todo: Sequence[int], widths: Sequence[int]) -> list[list[int]]:
        """Indices of `todo` in batches, longest first; `widths[i]` is window i's row width (its tokens
        and special tokens)."""
        order = sorted(todo, key=lambda i: -widths[i])
        batches: list[list[int]] = []
        current: list[int] = []
        used = 0
        for i in order:
            if current:
                width = widths[current[0]]
                n = len(current) + 1
                if (
                    n > self.max_rows
                    or n * width > self.max_tokens
                    or used + widths[i] < self.min_fill * n * width
                ):
                    batches.append(current)
                    current, used = [], 0
            current.append(i)
            used += widths[i]
        if current:
            batches.append(current)
        return batches

"""Typed results of a compression call."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class WordDecision:
    """One word of the original text and what the compressor decided for it."""

    text: str
    context: int
    start: int  # character offsets into the original context string
    end: int
    probability: float  # model's keep probability (before forcing)
    keep: bool
    forced: bool = False


@dataclass(frozen=True)
class ContextResult:
    """The compressed form of one input context."""

    index: int
    text: str
    original_tokens: int
    compressed_tokens: int
    kept: bool = True  # False when the context-level filter dropped the whole context
    probability: float | None = None  # mean keep probability (context-level filter score)
    relevance: float | None = None  # question-aware: cosine + weighted BM25 (QuestionAwareCompressor.scores)


@dataclass(frozen=True)
class CompressionResult:
    """What `Compressor.compress` returns.

    Token counts are tiktoken counts (``cl100k_base`` by default), the unit LLM APIs bill in.
    ``ratio`` is original/compressed (higher is more compression); ``rate`` is its inverse.
    ``verbatim_tokens``: tokens of the output that are structure spans kept verbatim, per kind
    (code, json, table, url, ...). ``over_budget``: the spans that must be kept (structure kept
    verbatim, ``<keep>`` markers, force tokens) alone exceeded the budget, so the output is longer
    than asked; ``verbatim_tokens`` says which kinds forced it.
    """

    compressed_text: str
    contexts: list[ContextResult]
    original_tokens: int
    compressed_tokens: int
    model: str = ""
    method: str = "token_classifier"
    words: list[WordDecision] | None = field(default=None, repr=False)
    verbatim_tokens: dict[str, int] = field(default_factory=dict)
    over_budget: bool = False

    @property
    def ratio(self) -> float:
        return self.original_tokens / self.compressed_tokens if self.compressed_tokens else float("inf")

    @property
    def rate(self) -> float:
        return self.compressed_tokens / self.original_tokens if self.original_tokens else 1.0

    @property
    def compressed_contexts(self) -> list[str]:
        return [c.text for c in self.contexts if c.kept]

    def to_dict(self, *, include_words: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not include_words or self.words is None:
            data.pop("words")
        ratio = self.ratio
        data["ratio"] = None if ratio == float("inf") else round(ratio, 4)
        data["rate"] = round(self.rate, 4)
        return data

"""Question-aware compression for the evaluation: `--methods classifier_qa[:MODEL]`.

The token classifier reads no question. Long-document QA asks about a few paragraphs, so this method
adds LongLLMLingua's coarse step in front of it, as the LangChain document compressor does for
retrieved documents (`promptpress.adapters.relevance`): the context is cut into paragraphs (blank
lines), each paragraph is scored by the cosine similarity of its sentence embedding to the
question's (the packaged all-MiniLM-L6-v2 by default), the context's token budget is split in
proportion to relevance (`split_budget`: relevant paragraphs keep most of their words, off-topic ones
as little as ``min_rate``), and the classifier compresses every paragraph to its share in one call.
A context of one paragraph, or no question, is compressed as the plain classifier would.
"""

from __future__ import annotations

import re
from typing import Any

from promptpress.compressor.options import CompressOptions, Compressor
from promptpress.compressor.result import CompressionResult
from promptpress.compressor.tokens import count_tokens

_PARAGRAPHS = re.compile(r"\n\s*\n")


class QueryAwareCompressor:
    """`compressor` with a relevance-weighted budget per paragraph (see the module docstring)."""

    method = "query_aware"

    def __init__(
        self,
        compressor: Compressor,
        embeddings: Any = None,
        *,
        temperature: float = 0.1,
        min_rate: float = 0.1,
    ) -> None:
        self.compressor = compressor
        self._embeddings = embeddings
        self.temperature = temperature
        self.min_rate = min_rate

    @property
    def embeddings(self) -> Any:
        if self._embeddings is None:
            from promptpress.adapters.embeddings import LocalEmbeddings

            self._embeddings = LocalEmbeddings()
        return self._embeddings

    def compress_for_question(self, context: str, question: str, rate: float) -> CompressionResult:
        from promptpress.adapters.relevance import relevance_scores, split_budget

        paragraphs = [p.strip() for p in _PARAGRAPHS.split(context) if p.strip()]
        if len(paragraphs) < 2 or not question.strip():
            return self.compressor.compress(context, CompressOptions(rate=rate))
        tokens = [count_tokens(p) for p in paragraphs]
        scores = relevance_scores(self.embeddings, question, paragraphs)
        targets = split_budget(
            tokens, scores, round(rate * sum(tokens)), temperature=self.temperature, min_rate=self.min_rate
        )
        budgets = tuple(max(1, int(t)) for t in targets)
        return self.compressor.compress(paragraphs, CompressOptions(rate=rate, context_budgets=budgets))

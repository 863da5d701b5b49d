"""`PromptpressDocumentCompressor`: compress retrieved LangChain documents with the promptpress compressor.

A `BaseDocumentCompressor` (for `ContextualCompressionRetriever`) and a `BaseDocumentTransformer`
(for `transform_documents` / `DocumentCompressorPipeline`). Order and metadata are kept; each output
document gets its compression figures under ``metadata["promptpress"]``.

Without a query (or with ``query_aware=False``) the documents are compressed in one call and share
one token budget: the classifier decides which words of which document go. With a query, the
documents are scored against it with an embedding model (`relevance`); documents under
``min_relevance`` are dropped and the others share the budget by their relevance, as
`QuestionAwareCompressor.compress_by_relevance` splits it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, BaseDocumentTransformer, Document
from langchain_core.embeddings import Embeddings
from pydantic import Field, model_validator

from promptpress.compressor import CompressionResult, CompressOptions, Compressor
from promptpress.compressor.query_aware import QuestionAwareCompressor

from .embeddings import LocalEmbeddings
from .relevance import arelevance_scores, relevance_scores
from .shared import CompressorFields

__all__ = ["PromptpressDocumentCompressor"]

Scores = list[float] | None


class PromptpressDocumentCompressor(CompressorFields, BaseDocumentCompressor, BaseDocumentTransformer):
    """Compress each document's ``page_content``; keep order, metadata and ids; add the figures.

    compressor / cache / rate / target_tokens / options: see `CompressorFields`; the budget is the
        whole document list's.
    query_aware: use the query when one is given (relevance-weighted budget, `min_relevance`).
    relevance: LangChain `Embeddings` scoring query/document relevance; default
        `LocalEmbeddings(embedding_model)` (the packaged all-MiniLM-L6-v2 unless `embedding_model`
        names another, e.g. ``"package:all-mpnet-base-v2"``), loaded only when a query is used. Give
        `relevance` or `embedding_model`, not both.
    min_relevance: drop documents whose cosine similarity to the query is below this.
    temperature / min_rate: shape of the relevance-weighted budget split (see `split_budget`).
    stats_key: metadata key of the figures (None: add none).
    """

    query_aware: bool = True
    relevance: Embeddings | None = None
    min_relevance: float | None = Field(default=None, ge=-1.0, le=1.0)
    temperature: float = Field(default=0.1, gt=0.0)
    min_rate: float = Field(default=0.1, gt=0.0, le=1.0)
    stats_key: str | None = "promptpress"

    @model_validator(mode="after")
    def _one_relevance_model(self) -> PromptpressDocumentCompressor:
        if self.relevance is not None and self.embedding_model is not None:
            raise ValueError("give relevance= (an Embeddings object) or embedding_model= (a spec), not both")
        return self

    # ------------------------------------------------------------------ LangChain entry points
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        docs = _check_documents(documents)
        scores = None
        if self._use_query(query, docs):
            scores = relevance_scores(self._embeddings(), query, [d.page_content for d in docs])
        return self._compress(docs, scores)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        docs = _check_documents(documents)
        scores = None
        if self._use_query(query, docs):
            scores = await arelevance_scores(self._embeddings(), query, [d.page_content for d in docs])
        # the compressor is CPU-bound: run it in a worker thread, the event loop keeps serving
        return await asyncio.to_thread(self._compress, docs, scores)

    def transform_documents(
        self, documents: Sequence[Document], query: str | None = None, **kwargs: Any
    ) -> Sequence[Document]:
        _no_kwargs(kwargs)
        return self.compress_documents(documents, query or "")

    async def atransform_documents(
        self, documents: Sequence[Document], query: str | None = None, **kwargs: Any
    ) -> Sequence[Document]:
        _no_kwargs(kwargs)
        return await self.acompress_documents(documents, query or "")

    # ------------------------------------------------------------------ steps
    def _use_query(self, query: str, docs: list[Document]) -> bool:
        if query is not None and not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        return self.query_aware and bool(query and query.strip()) and any(_has_text(d) for d in docs)

    def _embeddings(self) -> Embeddings:
        if self.relevance is None:
            return LocalEmbeddings(self._embedding_model())
        return self.relevance

    def _compress(self, docs: list[Document], scores: Scores) -> list[Document]:
        active = [
            i
            for i, d in enumerate(docs)
            if _has_text(d)
            and (scores is None or self.min_relevance is None or scores[i] >= self.min_relevance)
        ]
        results: dict[int, tuple[str, int, int] | None] = {}  # index -> (text, original, compressed)
        if active:
            compressor = self._engine()
            options = self._options()
            texts = [docs[i].page_content for i in active]
            if scores is not None and len(active) > 1:
                per_doc = self._split(compressor, options, texts, [scores[i] for i in active])
            else:
                per_doc = _per_context(compressor.compress(texts, options))
            results = dict(zip(active, per_doc))
        out = []
        for i, doc in enumerate(docs):
            if not _has_text(doc):  # nothing to compress: passed through as is
                out.append(self._with_stats(doc, doc.page_content, 0, 0, scores, i))
            elif i in results:
                entry = results[i]
                if entry is not None:  # None: the compressor's context filter dropped the document
                    out.append(self._with_stats(doc, *entry, scores, i))
        return out

    def _split(
        self, compressor: Compressor, options: CompressOptions, texts: list[str], scores: list[float]
    ) -> list[tuple[str, int, int] | None]:
        """Each document gets its share of the budget by relevance (`QuestionAwareCompressor`)."""
        shares = QuestionAwareCompressor(compressor, temperature=self.temperature, min_rate=self.min_rate)
        if options.budget == "global":
            return _per_context(shares.compress_by_relevance(texts, scores, options))
        out = []  # llmlingua's per-window mode has no per-context budgets: one call per document
        for text, target in zip(texts, shares.budgets(texts, scores, options)):
            out.extend(_per_context(compressor.compress(text, options, target_tokens=target)))
        return out

    def _with_stats(
        self, doc: Document, text: str, original: int, compressed: int, scores: Scores, index: int
    ) -> Document:
        metadata = dict(doc.metadata)
        if self.stats_key is not None:
            stats: dict[str, Any] = {
                "original_tokens": original,
                "compressed_tokens": compressed,
                "rate": round(compressed / original, 4) if original else 1.0,
            }
            if scores is not None and _has_text(doc):
                stats["relevance"] = round(float(scores[index]), 4)
            metadata[self.stats_key] = stats
        return doc.model_copy(update={"page_content": text, "metadata": metadata})


def _per_context(result: CompressionResult) -> list[tuple[str, int, int] | None]:
    return [
        (c.text, c.original_tokens, c.compressed_tokens) if c.kept else None
        for c in sorted(result.contexts, key=lambda c: c.index)
    ]


def _has_text(doc: Document) -> bool:
    return bool(doc.page_content and doc.page_content.strip())


def _check_documents(documents: Sequence[Document]) -> list[Document]:
    if isinstance(documents, (str, Document)):
        raise TypeError("documents must be a list of Documents, not a single one")
    docs = list(documents)
    bad = sorted({type(d).__name__ for d in docs if not isinstance(d, Document)})
    if bad:
        raise TypeError(f"documents must be langchain_core Document objects, got {', '.join(bad)}")
    return docs


def _no_kwargs(kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"unexpected argument(s): {', '.join(sorted(kwargs))}; accepted: query")

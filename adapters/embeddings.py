"""LangChain `Embeddings` on a local sentence-transformers model (default: the packaged all-MiniLM-L6-v2).

Offline and on CPU: the model comes from an installed package (`promptpress.compressor.resolve`), never
from a hub at run time. Used for query/document relevance by the document compressor, and usable as the
embedding model of a vector store::

    from langchain_core.vectorstores import InMemoryVectorStore
    store = InMemoryVectorStore(LocalEmbeddings())
"""

from __future__ import annotations

import asyncio

from langchain_core.embeddings import Embeddings

from promptpress.compressor.query_aware import DEFAULT_EMBEDDING_MODEL, sentence_embedder

__all__ = ["DEFAULT_EMBEDDING_MODEL", "LocalEmbeddings"]


class LocalEmbeddings(Embeddings):
    """Sentence embeddings from a local sentence-transformers model, L2-normalised (cosine = dot).

    `model` is a promptpress asset spec (``"package:all-minilm-l6-v2"``) or a local directory. The
    model is loaded on first use and shared by every instance with the same spec.
    """

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, *, batch_size: int = 32) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be an asset spec or a directory, got {model!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"LocalEmbeddings(model={self.model!r})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = list(texts)
        bad = sorted({type(t).__name__ for t in texts if not isinstance(t, str)})
        if bad:
            raise TypeError(f"texts must be strings, got {', '.join(bad)}")
        return sentence_embedder(self.model, batch_size=self.batch_size)(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)

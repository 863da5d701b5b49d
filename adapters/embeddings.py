"""LangChain `Embeddings` on a local sentence-transformers model (default: the packaged all-MiniLM-L6-v2).

Offline and on CPU: the model comes from an installed package (`promptpress.compressor.resolve`), never
from a hub at run time. Used for query/document relevance by the document compressor, and usable as the
embedding model of a vector store::

    from langchain_core.vectorstores import InMemoryVectorStore
    store = InMemoryVectorStore(LocalEmbeddings())
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from langchain_core.embeddings import Embeddings

__all__ = ["DEFAULT_EMBEDDING_MODEL", "LocalEmbeddings"]

DEFAULT_EMBEDDING_MODEL = "package:all-minilm-l6-v2"

_lock = threading.Lock()
_models: dict[str, tuple[Any, threading.Lock]] = {}  # spec -> (SentenceTransformer, its call lock)


def _load(spec: str) -> tuple[Any, threading.Lock]:
    with _lock:
        if spec not in _models:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError(
                    "LocalEmbeddings needs sentence-transformers: pip install 'promptpress[langchain]'"
                ) from exc
            from promptpress.compressor import resolve

            model = SentenceTransformer(str(resolve(spec)), device="cpu")
            _models[spec] = (model, threading.Lock())
        return _models[spec]


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
        if not texts:
            return []
        model, call_lock = _load(self.model)
        with call_lock:  # a fast tokenizer must not be used by two threads at once
            vectors = model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return vectors.astype(float).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)

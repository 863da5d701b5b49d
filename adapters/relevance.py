"""Query/document relevance and the relevance-weighted split of a token budget.

The token classifier scores words without looking at the question, so query awareness comes from here
(LongLLMLingua's coarse step, with an embedding model instead of an LLM): documents are scored by the
cosine similarity of their embedding to the query's; documents below a threshold can be dropped, and
the kept documents share the token budget in proportion to their relevance (a relevant document keeps
more of its words, an off-topic one fewer).
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.embeddings import Embeddings

from promptpress.compressor.budget import split_budget
from promptpress.compressor.query_aware import cosine_scores as _cosines

__all__ = ["arelevance_scores", "relevance_scores", "split_budget"]


def relevance_scores(embeddings: Embeddings, query: str, texts: Sequence[str]) -> list[float]:
    """Cosine similarity of each text to the query, in [-1, 1]."""
    if not texts:
        return []
    return _cosines(embeddings.embed_query(query), embeddings.embed_documents(list(texts)))


async def arelevance_scores(embeddings: Embeddings, query: str, texts: Sequence[str]) -> list[float]:
    """`relevance_scores` through the embeddings' async API."""
    if not texts:
        return []
    query_vector = await embeddings.aembed_query(query)
    return _cosines(query_vector, await embeddings.aembed_documents(list(texts)))

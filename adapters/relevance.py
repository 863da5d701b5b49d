"""Query/document relevance and the relevance-weighted split of a token budget.

The token classifier scores words without looking at the question, so query awareness comes from here
(LongLLMLingua's coarse step, with an embedding model instead of an LLM): documents are scored by the
cosine similarity of their embedding to the query's; documents below a threshold can be dropped, and
the kept documents share the token budget in proportion to their relevance (a relevant document keeps
more of its words, an off-topic one fewer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from langchain_core.embeddings import Embeddings

__all__ = ["arelevance_scores", "relevance_scores", "split_budget"]


def _cosines(query: Sequence[float], documents: Sequence[Sequence[float]]) -> list[float]:
    qn = math.sqrt(sum(x * x for x in query)) or 1.0
    out = []
    for vector in documents:
        dn = math.sqrt(sum(x * x for x in vector)) or 1.0
        out.append(sum(a * b for a, b in zip(query, vector)) / (qn * dn))
    return out


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


def split_budget(
    tokens: Sequence[int],
    scores: Sequence[float],
    budget: int,
    *,
    temperature: float = 0.1,
    min_rate: float = 0.1,
) -> list[int]:
    """Per-document token targets summing to about `budget`, larger for more relevant documents.

    Document i keeps ``clip(c * exp((s_i - max s) / temperature), min_rate, 1)`` of its ``tokens[i]``,
    with the scale ``c`` found by bisection so the targets add up to `budget`. A small `temperature`
    favours the top documents strongly; a large one tends to the same rate for all.
    """
    if len(tokens) != len(scores):
        raise ValueError(f"{len(tokens)} token counts for {len(scores)} scores")
    if temperature <= 0 or not 0 < min_rate <= 1:
        raise ValueError("temperature must be > 0 and min_rate in (0, 1]")
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

    # at log(min_rate) every document sits at the floor (< budget); at -min(log_weights) all keep everything
    low, high = math.log(min_rate), -min(log_weights)
    for _ in range(60):
        mid = (low + high) / 2
        if kept(mid) < budget:
            low = mid
        else:
            high = mid
    return [max(1, round(n * r)) if n else 0 for n, r in zip(tokens, rates(high))]

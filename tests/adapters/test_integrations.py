"""The adapters with the rest of promptpress: the Redis segment cache and the local llama.cpp backend
behind langchain-openai's ChatOpenAI."""

from __future__ import annotations

import pytest
from langchain_core.prompts import ChatPromptTemplate

from promptpress.adapters.langchain import PromptCompressorRunnable, PromptpressDocumentCompressor

QUESTION = "Where were the Occupy protesters camped?"


@pytest.mark.redis
@pytest.mark.slow
def test_redis_segment_cache_serves_the_second_retrieval(redis_url, redis_server, paragraphs, compressor):
    from promptpress.adapters.shared import shared_compressor

    docs = paragraphs[:4]
    cached = PromptpressDocumentCompressor(cache=redis_url, rate=0.5, query_aware=False)
    engine = shared_compressor(redis_url)
    assert engine is not compressor and engine is shared_compressor(redis_url)  # one per cache, shared
    first = cached.compress_documents(docs, "")
    assert redis_server.client().dbsize() > 0  # window probabilities went to Redis
    hits = engine.cache.stats().hits
    second = cached.compress_documents(docs, "")
    assert engine.cache.stats().hits > hits
    assert first == second
    uncached = PromptpressDocumentCompressor(compressor=compressor, rate=0.5, query_aware=False)
    assert [d.page_content for d in uncached.compress_documents(docs, "")] == [d.page_content for d in first]


@pytest.mark.backend
@pytest.mark.slow
def test_chain_against_the_local_backend(paragraphs, compressor):
    """prompt | compressor | ChatOpenAI on the packaged Qwen2.5-0.5B served by llama.cpp."""
    from langchain_openai import ChatOpenAI

    from promptpress.compressor.llamacpp import LocalBackend

    context = "\n\n".join(d.page_content for d in paragraphs[:3])
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer in a few words from the context."),
            ("human", "Context:\n{context}\n\nQuestion: {question}"),
        ]
    )
    inputs = {"context": context, "question": QUESTION}
    with LocalBackend(ctx_size=4096, threads=2) as backend:
        llm = ChatOpenAI(
            base_url=backend.base_url, api_key="none", model=backend.model_name, max_tokens=8, temperature=0
        )
        plain = (prompt | llm).invoke(inputs)
        step = PromptCompressorRunnable(compressor=compressor, rate=0.4, min_tokens=50)
        compressed = (prompt | step | llm).invoke(inputs)
    assert isinstance(compressed.content, str) and compressed.content.strip()
    sent, full = compressed.usage_metadata["input_tokens"], plain.usage_metadata["input_tokens"]
    assert sent < 0.7 * full  # the backend really received the shorter prompt

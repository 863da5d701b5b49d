"""PromptpressDocumentCompressor on real news paragraphs, with real langchain-core objects."""

from __future__ import annotations

import asyncio

import pytest
from adapter_helpers import is_subsequence, words
from langchain_core.documents import BaseDocumentTransformer, Document
from pydantic import ValidationError

from promptpress.adapters.langchain import PromptpressDocumentCompressor
from promptpress.adapters.relevance import relevance_scores
from promptpress.compressor import count_tokens

QUERY = "What did the police do to the Occupy protesters at City Hall?"


def _stats(doc: Document) -> dict:
    return doc.metadata["promptpress"]


def test_keeps_order_ids_metadata_and_adds_figures(paragraphs, compressor):
    docs = paragraphs[:6]
    before = [d.model_copy(deep=True) for d in docs]
    out = PromptpressDocumentCompressor(compressor=compressor, rate=0.4).compress_documents(docs, "")
    assert [d.id for d in out] == [d.id for d in docs]
    for original, compressed in zip(docs, out):
        assert {k: v for k, v in compressed.metadata.items() if k != "promptpress"} == original.metadata
        stats = _stats(compressed)
        assert stats["original_tokens"] == count_tokens(original.page_content)
        assert stats["compressed_tokens"] == count_tokens(compressed.page_content)
        assert stats["compressed_tokens"] < stats["original_tokens"]
        assert is_subsequence(words(compressed.page_content), words(original.page_content))
    assert docs == before  # the input documents are not modified
    kept = sum(_stats(d)["compressed_tokens"] for d in out)
    total = sum(_stats(d)["original_tokens"] for d in out)
    assert 0.3 < kept / total < 0.5  # one shared budget of 40%


def test_rate_changes_the_output_length(paragraphs, compressor):
    docs = paragraphs[:4]

    def kept(rate: float) -> int:
        out = PromptpressDocumentCompressor(compressor=compressor, rate=rate).compress_documents(docs, "")
        return sum(count_tokens(d.page_content) for d in out)

    assert kept(0.25) < kept(0.6) < sum(count_tokens(d.page_content) for d in docs)


def test_empty_documents_stay_in_place(paragraphs, compressor):
    docs = [
        Document(page_content="", metadata={"n": 0}),
        paragraphs[0],
        Document(page_content="   \n", metadata={"n": 2}),
        paragraphs[1],
    ]
    out = PromptpressDocumentCompressor(compressor=compressor, rate=0.5).compress_documents(docs, "")
    assert [d.metadata.get("n") for d in out] == [0, None, 2, None]
    assert [d.page_content for d in (out[0], out[2])] == ["", "   \n"]
    assert _stats(out[0]) == {"original_tokens": 0, "compressed_tokens": 0, "rate": 1.0}
    assert out[1].id == paragraphs[0].id and out[3].id == paragraphs[1].id
    only_empty = [Document(page_content=""), Document(page_content=" ")]
    compress = PromptpressDocumentCompressor(compressor=compressor)
    assert [d.page_content for d in compress.compress_documents(only_empty, QUERY)] == ["", " "]
    assert compress.compress_documents([], QUERY) == []


def test_very_long_document_meets_its_budget(articles, compressor):
    text = max(articles[:4], key=len)  # several news articles: many encoder windows
    original = count_tokens(text)
    assert original > 2000
    doc = Document(page_content=text, metadata={"kind": "long"})
    [out] = PromptpressDocumentCompressor(compressor=compressor, rate=0.3).compress_documents([doc], "")
    assert out.metadata["kind"] == "long"
    assert abs(_stats(out)["compressed_tokens"] / original - 0.3) < 0.03
    assert is_subsequence(words(out.page_content), words(text))


def test_query_weights_the_budget_by_relevance(paragraphs, compressor, embeddings):
    docs = paragraphs[:4]
    scores = relevance_scores(embeddings, QUERY, [d.page_content for d in docs])
    compress = PromptpressDocumentCompressor(compressor=compressor, relevance=embeddings, rate=0.4)
    out = compress.compress_documents(docs, QUERY)
    assert [d.id for d in out] == [d.id for d in docs]
    assert [_stats(d)["relevance"] for d in out] == pytest.approx(scores, abs=1e-4)
    rates = [_stats(d)["rate"] for d in out]
    best, worst = scores.index(max(scores)), scores.index(min(scores))
    assert rates[best] > rates[worst]
    kept = sum(_stats(d)["compressed_tokens"] for d in out)
    total = sum(_stats(d)["original_tokens"] for d in out)
    assert 0.3 < kept / total < 0.5  # the split still spends the whole budget
    unaware = PromptpressDocumentCompressor(compressor=compressor, rate=0.4, query_aware=False)
    assert "relevance" not in _stats(unaware.compress_documents(docs, QUERY)[0])


def test_embedding_model_names_the_relevance_model(paragraphs, compressor, embeddings):
    from promptpress.adapters.embeddings import LocalEmbeddings

    docs = paragraphs[:4]
    compress = PromptpressDocumentCompressor(
        compressor=compressor, embedding_model="package:all-mpnet-base-v2", rate=0.4
    )
    out = compress.compress_documents(docs, QUERY)
    texts = [d.page_content for d in docs]
    mpnet = relevance_scores(LocalEmbeddings("package:all-mpnet-base-v2"), QUERY, texts)
    assert [_stats(d)["relevance"] for d in out] == pytest.approx(mpnet, abs=1e-4)
    assert mpnet != pytest.approx(relevance_scores(embeddings, QUERY, texts), abs=1e-3)  # not MiniLM's
    with pytest.raises(ValidationError, match="not both"):
        PromptpressDocumentCompressor(
            compressor=compressor, relevance=embeddings, embedding_model="package:all-mpnet-base-v2"
        )


def test_min_relevance_drops_off_topic_documents(paragraphs, compressor, embeddings):
    docs = paragraphs[:8]
    scores = relevance_scores(embeddings, QUERY, [d.page_content for d in docs])
    threshold = sorted(scores)[len(scores) // 2]
    compress = PromptpressDocumentCompressor(
        compressor=compressor, relevance=embeddings, min_relevance=threshold, rate=0.5
    )
    out = compress.compress_documents(docs, QUERY)
    assert [d.id for d in out] == [d.id for d, s in zip(docs, scores) if s >= threshold]
    assert 0 < len(out) < len(docs)


async def test_async_gives_the_sync_result_without_blocking_the_loop(paragraphs, compressor, embeddings):
    docs = paragraphs[:5]
    compress = PromptpressDocumentCompressor(compressor=compressor, relevance=embeddings, rate=0.4)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        aware = await compress.acompress_documents(docs, QUERY)
        plain = await compress.atransform_documents(docs)
    finally:
        task.cancel()
    assert ticks > 5  # the event loop kept running while the compressor worked
    assert aware == compress.compress_documents(docs, QUERY)
    assert plain == compress.transform_documents(docs)


def test_contextual_compression_retriever_end_to_end(vector_store, compressor, embeddings):
    from langchain_classic.retrievers import ContextualCompressionRetriever

    base = vector_store.as_retriever(search_kwargs={"k": 4})
    retriever = ContextualCompressionRetriever(
        base_compressor=PromptpressDocumentCompressor(compressor=compressor, relevance=embeddings, rate=0.5),
        base_retriever=base,
    )
    retrieved = base.invoke(QUERY)
    out = retriever.invoke(QUERY)
    assert [d.id for d in out] == [d.id for d in retrieved]
    for original, compressed in zip(retrieved, out):
        assert compressed.metadata["sample"] == original.metadata["sample"]
        assert _stats(compressed)["original_tokens"] == count_tokens(original.page_content)
    assert sum(count_tokens(d.page_content) for d in out) < sum(
        count_tokens(d.page_content) for d in retrieved
    )
    assert asyncio.run(retriever.ainvoke(QUERY)) == out


def test_works_as_a_plain_document_transformer(paragraphs, compressor):
    from langchain_classic.retrievers.document_compressors import DocumentCompressorPipeline

    compress = PromptpressDocumentCompressor(compressor=compressor, rate=0.5, query_aware=False)
    assert isinstance(compress, BaseDocumentTransformer)
    docs = paragraphs[:3]
    direct = compress.transform_documents(docs)
    assert [d.id for d in direct] == [d.id for d in docs]
    assert all(
        d.metadata["promptpress"]["compressed_tokens"] < count_tokens(o.page_content)
        for d, o in zip(direct, docs)
    )
    pipeline = DocumentCompressorPipeline(transformers=[compress])
    assert pipeline.compress_documents(docs, QUERY) == direct
    with pytest.raises(TypeError, match="unexpected argument"):
        compress.transform_documents(docs, top_k=3)


def test_stats_key_and_context_filter(paragraphs, compressor):
    from promptpress.compressor import CompressOptions

    docs = paragraphs[:6]
    out = PromptpressDocumentCompressor(compressor=compressor, stats_key=None).compress_documents(docs, "")
    assert all("promptpress" not in d.metadata for d in out)
    options = CompressOptions(rate=0.4, context_filter=True, context_rate=0.5)
    filtered = PromptpressDocumentCompressor(compressor=compressor, options=options).compress_documents(
        docs, ""
    )
    assert len(filtered) == 3  # the compressor's own context filter dropped half of the documents
    positions = [next(i for i, d in enumerate(docs) if d.id == f.id) for f in filtered]
    assert positions == sorted(positions)


def test_bad_input_is_a_clear_error(compressor):
    with pytest.raises(ValidationError, match="rate"):
        PromptpressDocumentCompressor(compressor=compressor, rate=1.5)
    with pytest.raises(TypeError, match="compress"):
        PromptpressDocumentCompressor(compressor=object())
    with pytest.raises(ValueError, match="not a compressor and a different cache"):
        PromptpressDocumentCompressor(compressor=compressor, cache="memory://")
    with pytest.raises(TypeError, match="cache"):
        PromptpressDocumentCompressor(cache=42)
    compress = PromptpressDocumentCompressor(compressor=compressor)
    with pytest.raises(TypeError, match="Document"):
        compress.compress_documents(["just a string"], "")
    with pytest.raises(TypeError, match="list of Documents"):
        compress.compress_documents(Document(page_content="x"), "")


def test_default_compressor_is_shared(compressor):
    from promptpress.adapters.shared import resolve_compressor

    first = PromptpressDocumentCompressor()
    assert resolve_compressor(first.compressor, first.cache) is compressor
    assert resolve_compressor(None, None) is compressor

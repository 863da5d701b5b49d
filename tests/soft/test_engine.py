import numpy as np
import pytest
import torch
from soft_helpers import ALICE

from promptpress.cache import MemoryCache, decode_arrays
from promptpress.compressor.soft.engine import SoftCompressor
from promptpress.compressor.soft.generation import greedy_generate, kv_cache_bytes, prefill
from promptpress.compressor.soft.model import ConceptEncoder

CONTEXTS = [ALICE[:400], ALICE[400:]]
QUESTION = "What did the White Rabbit take out of its waistcoat-pocket?"


def test_generation_from_embeddings_equals_generation_from_tokens_in_bypass(tokenizer, tiny_decoder):
    soft = SoftCompressor(ConceptEncoder(tiny_decoder, bypass=True), tokenizer)
    out = soft.generate(CONTEXTS, QUESTION, max_new_tokens=12)
    context_ids = [t for s in soft.segments(CONTEXTS) for t in s.token_ids]
    ids = soft.layout.token_prompt(context_ids, soft.layout.question_ids(tokenizer, QUESTION))
    reference = tiny_decoder.generate(
        torch.tensor([ids]),
        max_new_tokens=12,
        do_sample=False,
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
    )[0, len(ids) :].tolist()
    assert out.token_ids == reference
    assert out.prompt_positions == out.original_positions == len(ids)


def test_compressed_prompt_is_about_half_the_positions(tokenizer, tiny_decoder):
    soft = SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer)
    prompt = soft.prompt(CONTEXTS, QUESTION)
    segments = soft.segments(CONTEXTS)
    n_context = sum(len(s.token_ids) for s in segments)
    n_concepts = sum(-(-len(s.token_ids) // 2) for s in segments)
    assert prompt.embeds.shape == (prompt.original_positions - n_context + n_concepts, 64)
    assert n_concepts <= n_context / 2 + len(segments)
    with soft.encoder.reader() as lm:
        _, full_kv = prefill(lm, soft.encoder.embed_tokens(torch.arange(prompt.original_positions) % 50))
        _, soft_kv = prefill(lm, prompt.embeds)
    assert kv_cache_bytes(soft_kv) / kv_cache_bytes(full_kv) == pytest.approx(
        prompt.embeds.shape[0] / prompt.original_positions
    )


def test_concept_embeddings_round_trip_through_the_cache(tokenizer, tiny_decoder):
    cache = MemoryCache()
    soft = SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer, cache=cache)
    segments = soft.segments(CONTEXTS)
    cold, hits_cold = soft.concept_embeddings(segments)
    warm, hits_warm = soft.concept_embeddings(segments)
    assert (hits_cold, hits_warm) == (0, len(segments))
    assert len(cache) == len({s.token_ids for s in segments})
    for seg, a, b in zip(segments, cold, warm, strict=True):
        assert torch.equal(a, b)  # cold results are fp16-rounded like the cached copies
        stored = decode_arrays(cache.get_many(soft.segment_keys([seg]))[0])["concepts"]
        assert stored.dtype == np.float16 and stored.shape == (-(-len(seg.token_ids) // 2), 64)
    first = soft.generate(CONTEXTS, QUESTION, max_new_tokens=6)
    second = soft.generate(CONTEXTS, QUESTION, max_new_tokens=6)
    assert first.token_ids == second.token_ids and second.cache_hits == second.segments


def test_keys_separate_encoders_and_settings(tokenizer, tiny_decoder):
    from soft_helpers import make_tiny_decoder

    seg = SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer).segments(CONTEXTS)[:1]
    a = SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer).segment_keys(seg)
    other_decoder = SoftCompressor(
        ConceptEncoder(make_tiny_decoder(tokenizer, seed=1)), tokenizer
    ).segment_keys(seg)
    int8 = SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer, precision="int8").segment_keys(seg)
    tenant = SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer, namespace="acme").segment_keys(seg)
    assert len({a[0], other_decoder[0], int8[0], tenant[0]}) == 4


def test_corrupt_or_failing_cache_degrades_to_recomputing(tokenizer, tiny_decoder):
    cache = MemoryCache()
    soft = SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer, cache=cache)
    segments = soft.segments(CONTEXTS)
    good, _ = soft.concept_embeddings(segments)
    key = soft.segment_keys(segments[:1])[0]
    cache.put_many({key: b"not an array"})
    again, hits = soft.concept_embeddings(segments)
    assert hits == len(segments) - 1 and torch.equal(again[0], good[0])
    assert decode_arrays(cache.get_many([key])[0])["concepts"].shape == good[0].shape  # rewritten

    class Down:
        def get_many(self, keys):
            raise ConnectionError("redis is down")

        def put_many(self, items, ttl=None):
            raise ConnectionError("redis is down")

    soft.cache = Down()
    still, hits = soft.concept_embeddings(segments)
    assert hits == 0 and all(torch.equal(a, b) for a, b in zip(still, good, strict=True))


def test_greedy_generate_validates_input(tiny_decoder):
    with pytest.raises(ValueError):
        greedy_generate(tiny_decoder, torch.zeros(1, 3, 64), 4)
    with pytest.raises(ValueError):
        greedy_generate(tiny_decoder, torch.zeros(3, 64), 0)
    with pytest.raises(TypeError):
        SoftCompressor(ConceptEncoder(tiny_decoder, bypass=True), None).segments("one string")  # type: ignore[arg-type]


def test_package_exports_resolve_lazily():
    from promptpress.compressor import soft

    assert soft.SoftCompressor is SoftCompressor and callable(soft.segment_text)
    with pytest.raises(AttributeError):
        _ = soft.NoSuchThing


def test_missing_weights_fail_with_guidance(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-soft"):
        SoftCompressor.from_pretrained(weights=tmp_path / "none")


def test_concurrent_requests_match_sequential_ones(tokenizer, tiny_decoder):
    from concurrent.futures import ThreadPoolExecutor

    soft = SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer)
    jobs = [([ALICE[i * 150 : i * 150 + 300]], QUESTION) for i in range(4)]
    sequential = [soft.generate(c, q, max_new_tokens=5).token_ids for c, q in jobs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda job: soft.generate(*job, max_new_tokens=5).token_ids, jobs))
    assert parallel == sequential

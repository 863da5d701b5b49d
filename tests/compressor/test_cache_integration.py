"""The token classifier with a segment cache: window probabilities computed once, reused at any rate."""

from __future__ import annotations

import numpy as np
import pytest

from promptpress.cache import MemoryCache, open_cache
from promptpress.compressor import TokenClassifierCompressor


class CountingRuntime:
    """Wraps the real runtime and counts the windows the model actually scores."""

    def __init__(self, inner):
        self.inner, self.name, self.windows = inner, inner.name, 0

    def keep_probs(self, ids, mask):
        self.windows += len(ids)
        return self.inner.keep_probs(ids, mask)


def _counting(checkpoint_or_loaded, cache):
    compressor = TokenClassifierCompressor(checkpoint_or_loaded, cache=cache)
    compressor.runtime = CountingRuntime(compressor.runtime)
    return compressor


@pytest.fixture(scope="module")
def tiny_loaded(tiny_checkpoint):
    from promptpress.compressor.model import load_token_classifier

    return load_token_classifier(tiny_checkpoint)


def test_second_call_and_other_rates_hit_the_cache(tiny_loaded, multi_news):
    cache = MemoryCache()
    compressor = _counting(tiny_loaded, cache)
    uncached = TokenClassifierCompressor(tiny_loaded)
    text = multi_news[0]
    first = compressor.compress(text, rate=0.5)
    cold = compressor.runtime.windows
    assert cold > 0 and cache.stats().misses == cold
    again = compressor.compress(text, rate=0.5)
    other_rate = compressor.compress(text, rate=0.2)
    assert compressor.runtime.windows == cold  # no model call after the first
    assert cache.stats().hits == 2 * cold
    assert again.compressed_text == first.compressed_text
    # the same decisions as without a cache (probabilities are stored exactly)
    assert other_rate.compressed_text == uncached.compress(text, rate=0.2).compressed_text


def test_a_document_inside_another_prompt_reuses_its_windows(tiny_loaded, multi_news):
    cache = MemoryCache()
    compressor = _counting(tiny_loaded, cache)
    doc = multi_news[1]
    compressor.compress(doc, rate=0.5)
    alone = compressor.runtime.windows
    compressor.compress("You are a helpful assistant. Read the news below.\n\n" + doc, rate=0.5)
    assert compressor.runtime.windows - alone <= 2  # the new prefix window, maybe the one after it
    assert alone >= 4


class RecordingCache(MemoryCache):
    def __init__(self):
        super().__init__()
        self.keys: list[str] = []

    def put_many(self, items, ttl=None):
        self.keys.extend(items)
        super().put_many(items, ttl)


def test_corrupt_and_stale_entries_are_recomputed(tiny_loaded, multi_news):
    cache = RecordingCache()
    compressor = _counting(tiny_loaded, cache)
    text = multi_news[2][:3000]
    reference = compressor.compress(text, rate=0.4).compressed_text
    keys = list(cache.keys)
    assert keys
    MemoryCache.put_many(cache, {k: b"garbage" for k in keys})
    before = compressor.runtime.windows
    assert compressor.compress(text, rate=0.4).compressed_text == reference
    assert compressor.runtime.windows - before == len(keys)
    assert compressor.compress(text, rate=0.4).compressed_text == reference  # rewritten: hits again
    assert compressor.runtime.windows - before == len(keys)


class ExplodingCache:
    def get_many(self, keys):
        raise ConnectionError("cache down")

    def put_many(self, items, ttl=None):
        raise ConnectionError("cache down")


def test_a_failing_cache_never_fails_compression(tiny_loaded, multi_news):
    compressor = TokenClassifierCompressor(tiny_loaded, cache=ExplodingCache())
    plain = TokenClassifierCompressor(tiny_loaded)
    text = multi_news[3][:4000]
    assert (
        compressor.compress(text, rate=0.3).compressed_text == plain.compress(text, rate=0.3).compressed_text
    )


@pytest.mark.redis
def test_redis_cache_shared_between_compressors_and_survives_an_outage(tiny_loaded, redis_server, multi_news):
    url = redis_server.url + "?retry_interval=0.2"
    first = _counting(tiny_loaded, open_cache(url))
    text = multi_news[4]
    reference = first.compress(text, rate=0.33).compressed_text
    cold = first.runtime.windows
    # a second process-like compressor with its own connection: served from Redis
    second = _counting(tiny_loaded, open_cache(url))
    assert second.compress(text, rate=0.33).compressed_text == reference
    assert second.runtime.windows == 0
    redis_server.stop()
    try:
        outage = second.compress(text, rate=0.33)  # Redis is down: compute, do not fail
        assert outage.compressed_text == reference
        assert second.runtime.windows == cold
        assert second.cache.stats().errors >= 1
    finally:
        redis_server.start()
    import time

    time.sleep(0.3)  # past the retry interval: the breaker lets the next call through
    before = second.runtime.windows
    second.compress(text, rate=0.33)
    third = second.compress(text, rate=0.5)
    assert third.compressed_tokens < third.original_tokens
    assert second.runtime.windows - before <= cold  # back on Redis: at most one recompute pass
    assert np.isfinite(third.ratio)

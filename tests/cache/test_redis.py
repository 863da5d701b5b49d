"""Redis backend against a real redis-server: round trips, TTL, size limit, corrupt values, isolation."""

import numpy as np
import pytest
import redis

from promptpress.cache import (
    ArrayCodec,
    AsyncRedisCache,
    KeySpace,
    RedisCache,
    aget_or_compute,
    decode_arrays,
    get_or_compute,
    open_async_cache,
    open_cache,
)
from promptpress.cache import keys as keys_module

pytestmark = pytest.mark.redis


def test_round_trip_pipelined_in_chunks_and_stats(redis_url):
    with RedisCache.from_url(redis_url, chunk_size=7) as cache:
        items = {f"k{i}": bytes([i]) * (i + 1) for i in range(50)}
        cache.put_many(items)
        wanted = [*items, "absent", "k3"]
        assert cache.get_many(wanted) == [*items.values(), None, items["k3"]]
        s = cache.stats()
        assert (s.puts, s.hits, s.misses) == (50, 51, 1)
        assert s.bytes_written == sum(map(len, items.values()))


def test_ttl_is_set_with_px_and_expires(redis_url, redis_server):
    import time

    with RedisCache.from_url(redis_url, default_ttl=3600) as cache:
        cache.put_many({"short": b"1"}, ttl=0.2)
        cache.put_many({"default": b"2"})
        raw = redis_server.client()
        assert 0 < raw.pttl("short") <= 200
        assert 3_590_000 < raw.pttl("default") <= 3_600_000
        assert cache.get_many(["short"]) == [b"1"]
        time.sleep(0.3)
        assert cache.get_many(["short", "default"]) == [None, b"2"]
    with RedisCache.from_url(redis_url, default_ttl=None) as cache:
        cache.put_many({"forever": b"3"})
        assert redis_server.client().pttl("forever") == -1


def test_values_over_max_value_bytes_are_not_sent(redis_url, redis_server):
    with RedisCache.from_url(redis_url, max_value_bytes=1000) as cache:
        cache.put_many({"ok": b"x" * 1000, "big": b"x" * 1001})
        assert redis_server.client().exists("ok", "big") == 1
        assert cache.stats().oversized == 1 and cache.stats().puts == 1


def test_decode_responses_is_refused():
    with pytest.raises(ValueError, match="decode_responses"):
        open_cache("redis://127.0.0.1:1/0?decode_responses=true")


def _probs(idx, texts):
    return [{"keep": np.linspace(0, 1, len(texts[i]), dtype=np.float16)} for i in idx]


def test_garbage_and_truncated_values_written_to_redis_are_misses_and_recomputed(redis_url, redis_server):
    space = KeySpace("t", "m", "c")
    texts = ["first segment", "second segment", "third one"]
    keys = space.keys(texts)
    codec = ArrayCodec(required=("keep",))
    cache = open_cache(redis_url)
    get_or_compute(cache, keys, lambda idx: _probs(idx, texts), codec=codec)
    raw = redis_server.client()
    good = raw.get(keys[1])
    raw.set(keys[0], b"\x00garbage\xff" * 3)
    raw.set(keys[1], good[: len(good) // 2])
    computed: list[list[int]] = []

    def compute(idx):
        computed.append(idx)
        return _probs(idx, texts)

    out = get_or_compute(cache, keys, compute, codec=codec)
    assert computed == [[0, 1]]
    for i, value in enumerate(out):
        np.testing.assert_array_equal(value["keep"], _probs([i], texts)[0]["keep"])
    assert cache.stats().invalid == 2
    # the bad values were overwritten with good ones
    assert decode_arrays(raw.get(keys[0]))["keep"].shape == (len(texts[0]),)
    assert get_or_compute(cache, keys, lambda idx: pytest.fail("all should hit"), codec=codec)
    cache.close()


def test_namespaces_compressor_versions_and_key_version_are_isolated(redis_url, monkeypatch):
    cache = open_cache(redis_url)
    texts = ["shared chunk", "another chunk"]
    spaces = [
        KeySpace("a", "m", "c1"),
        KeySpace("b", "m", "c1"),
        KeySpace("a", "m", "c2"),
        KeySpace("a", "m2", "c1"),
    ]
    for n, space in enumerate(spaces):
        out = get_or_compute(cache, space.keys(texts), lambda idx, n=n: [b"%d" % n for _ in idx])
        assert out == [b"%d" % n] * 2  # nothing leaked from the other spaces
    monkeypatch.setattr(keys_module, "KEY_VERSION", "v999")
    assert cache.get_many(spaces[0].keys(texts)) == [None, None]
    assert cache.stats().hits == 0
    cache.close()


async def test_async_round_trip_and_get_or_compute(redis_url, redis_server):
    cache = AsyncRedisCache.from_url(redis_url, chunk_size=5, default_ttl=60)
    await cache.aput_many({f"k{i}": b"v%d" % i for i in range(12)})
    assert await cache.aget_many(["k0", "k11", "nope"]) == [b"v0", b"v11", None]
    assert 0 < redis_server.client().pttl("k5") <= 60_000
    keys = ["k0", "new1", "new2"]

    async def compute(idx):
        return [b"computed" for _ in idx]

    assert await aget_or_compute(cache, keys, compute) == [b"v0", b"computed", b"computed"]
    assert redis_server.client().get("new2") == b"computed"
    await cache.aclose()


async def test_open_async_cache_is_fail_open_on_a_dead_port():
    cache = open_async_cache("redis://127.0.0.1:1/0?socket_timeout=0.2")
    assert await cache.aget_many(["a"]) == [None]
    await cache.aput_many({"a": b"1"})
    assert cache.stats().errors == 1 and cache.stats().bypassed == 1
    await cache.aclose()


def test_raw_backend_raises_so_the_wrapper_has_something_to_catch():
    cache = RedisCache.from_url("redis://127.0.0.1:1/0", socket_timeout=0.2)
    with pytest.raises(redis.ConnectionError):
        cache.get_many(["a"])
    cache.close()


async def test_more_concurrent_calls_than_pool_connections_wait_instead_of_failing(redis_url):
    import asyncio

    cache = open_async_cache(redis_url + "?max_connections=2&socket_timeout=2")
    await cache.aput_many({f"k{i}": b"v" for i in range(10)})
    outs = await asyncio.gather(*(cache.aget_many([f"k{i % 10}"]) for i in range(200)))
    assert outs == [[b"v"]] * 200
    assert cache.stats().errors == 0
    await cache.aclose()


def test_threads_share_a_small_pool_without_errors(redis_url):
    from concurrent.futures import ThreadPoolExecutor

    cache = open_cache(redis_url + "?max_connections=2&socket_timeout=2")
    cache.put_many({"k": b"v"})
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: cache.get_many(["k"]), range(200)))
    assert outs == [[b"v"]] * 200 and cache.stats().errors == 0
    cache.close()

"""A 3-master Redis Cluster on loopback ports: multi-key get/put across slots and nodes."""

import numpy as np
import pytest
import redis
from redis.crc import key_slot

from promptpress.cache import (
    ArrayCodec,
    KeySpace,
    RedisCache,
    aget_or_compute,
    get_or_compute,
    open_async_cache,
    open_cache,
)

pytestmark = pytest.mark.redis

TEXTS = [f"chunk {i}: some retrieved passage text" for i in range(200)]


@pytest.fixture
def cluster(redis_cluster):
    redis_cluster.flush()
    return redis_cluster


def test_segment_keys_spread_over_slots_and_masters(cluster):
    keys = KeySpace("tenant", "m", "c").keys(TEXTS)
    slots = {key_slot(k.encode()) for k in keys}
    assert len(slots) > 150  # no hash tag: every segment hashes on its own
    cache = open_cache(cluster.url)
    assert isinstance(cache.inner, RedisCache) and cache.inner.is_cluster
    cache.put_many({k: t.encode() for k, t in zip(keys, TEXTS, strict=True)}, ttl=300)
    per_node = [redis.Redis(port=p).dbsize() for p in cluster.ports]
    assert sum(per_node) == len(keys) and all(n > 0 for n in per_node)
    got = cache.get_many([*keys, "pp:v1:absent"])
    assert got == [*(t.encode() for t in TEXTS), None]
    s = cache.stats()
    assert (s.hits, s.misses, s.errors) == (200, 1, 0)
    client = cluster.client()
    assert all(0 < client.pttl(k) <= 300_000 for k in keys[:5])
    client.close()
    cache.close()


def test_a_plain_cross_slot_mget_is_what_the_backend_avoids(cluster):
    keys = KeySpace("tenant", "m", "c").keys(TEXTS[:10])
    client = cluster.client()
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
        client.mget(keys)
    client.close()


def test_get_or_compute_on_the_cluster(cluster):
    space = KeySpace("tenant", "m", "c")
    keys = space.keys(TEXTS[:50])
    codec = ArrayCodec()
    cache = open_cache(cluster.url)
    calls: list[list[int]] = []

    def compute(idx):
        calls.append(idx)
        return [{"keep": np.full(3, i, np.float32)} for i in idx]

    first = get_or_compute(cache, keys, compute, codec=codec)
    second = get_or_compute(cache, keys, compute, codec=codec)
    assert calls == [list(range(50))]
    assert [v["keep"][0] for v in second] == [v["keep"][0] for v in first] == list(range(50))
    cache.close()


async def test_async_cluster_client(cluster):
    cache = open_async_cache(cluster.url)
    keys = KeySpace("tenant", "m", "async").keys(TEXTS[:40])

    async def compute(idx):
        return [b"%d" % i for i in idx]

    assert await aget_or_compute(cache, keys, compute) == [b"%d" % i for i in range(40)]
    assert await cache.aget_many(keys[:3]) == [b"0", b"1", b"2"]
    assert cache.stats().errors == 0
    await cache.aclose()


def test_a_master_killed_mid_run_degrades_to_misses_and_recovers(cluster):
    import time

    keys = KeySpace("tenant", "m", "kill").keys(TEXTS[:60])
    cache = open_cache(cluster.url + "?socket_timeout=0.2&retry_interval=0.3")

    def compute(idx):
        return [TEXTS[i].encode() for i in idx]

    expected = compute(range(60))
    assert get_or_compute(cache, keys, compute) == expected
    victim = cluster.nodes[1]
    victim.stop()  # shorter than the node timeout: the cluster keeps its slot map
    try:
        for _ in range(6):
            assert get_or_compute(cache, keys, compute) == expected  # never raises
            time.sleep(0.1)
        assert cache.stats().errors >= 1
    finally:
        victim.start()
        cluster.wait_ok()
    time.sleep(0.35)  # let the breaker's retry interval pass
    hits = cache.stats().hits
    assert get_or_compute(cache, keys, compute) == expected
    assert get_or_compute(cache, keys, compute) == expected
    assert cache.stats().hits >= hits + 60  # the second pass hits everything again
    cache.close()

"""One contract, every backend: the same calls give the same answers on memory, sqlite, Redis, Cluster."""

import time

import pytest

from promptpress.cache import AsyncSegmentCache, SegmentCache, open_async_cache, open_cache

BACKENDS = [
    "memory",
    "disk",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.redis),
]


def _spec(kind: str, request: pytest.FixtureRequest, tmp_path) -> str:
    if kind == "memory":
        return "memory://?max_value_bytes=4096"
    if kind == "disk":
        return f"disk://{tmp_path}/contract.sqlite?max_value_bytes=4096"
    if kind == "redis":
        return request.getfixturevalue("redis_url") + "?max_value_bytes=4096&fail_open=false"
    cluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    return cluster.url + "?max_value_bytes=4096&fail_open=false"


@pytest.fixture(params=BACKENDS)
def cache(request, tmp_path):
    c = open_cache(_spec(request.param, request, tmp_path))
    assert isinstance(c, SegmentCache)
    yield c
    c.close()


@pytest.fixture(params=BACKENDS)
async def acache(request, tmp_path):
    c = open_async_cache(_spec(request.param, request, tmp_path))
    assert isinstance(c, AsyncSegmentCache)
    yield c
    await c.aclose()


def test_contract_round_trip_overwrite_limits_and_stats(cache):
    assert cache.get_many([]) == []
    items = {f"pp:v1:t:m:c:p:{i:032x}": bytes(range(i % 256)) * 3 for i in range(40)}
    cache.put_many(items)
    keys = list(items)
    assert cache.get_many([*keys, "pp:v1:t:m:c:p:absent"]) == [*items.values(), None]
    cache.put_many({keys[0]: b"new"})
    assert cache.get_many(keys[:1]) == [b"new"]
    cache.put_many({"too-big": b"x" * 4097, "fits": b"x" * 4096})
    assert cache.get_many(["too-big", "fits"]) == [None, b"x" * 4096]
    s = cache.stats()
    assert (s.hits, s.misses, s.puts, s.oversized, s.errors) == (42, 2, 42, 1, 0)
    assert s.bytes_read == sum(map(len, items.values())) + 3 + 4096
    with pytest.raises(TypeError):
        cache.put_many({"k": "str"})


def test_contract_ttl(cache):
    cache.put_many({"short": b"1"}, ttl=0.15)
    cache.put_many({"long": b"2"}, ttl=60)
    assert cache.get_many(["short", "long"]) == [b"1", b"2"]
    time.sleep(0.3)
    assert cache.get_many(["short", "long"]) == [None, b"2"]


async def test_async_contract(acache):
    items = {f"k{i}": b"%d" % i for i in range(30)}
    await acache.aput_many(items, ttl=60)
    assert await acache.aget_many([*items, "absent"]) == [*items.values(), None]
    await acache.aput_many({"big": b"x" * 5000})
    assert await acache.aget_many(["big"]) == [None]
    s = await acache.astats()
    assert (s.hits, s.misses, s.puts, s.oversized) == (30, 2, 30, 1)

"""open_cache / open_async_cache: spec strings map to the right backend and options; bad ones fail clearly."""

import pytest

from promptpress.cache import (
    AsyncCacheAdapter,
    AsyncResilientCache,
    DiskCache,
    MemoryCache,
    NullCache,
    RedisCache,
    ResilientCache,
    open_async_cache,
    open_cache,
    parse_size,
)
from promptpress.cache.redis_backend import parse_redis_url


def test_default_and_memory_specs():
    assert isinstance(open_cache(None), MemoryCache)
    assert isinstance(open_cache(""), MemoryCache)
    c = open_cache("memory://?max_bytes=64MiB&ttl=30&max_value_bytes=1M")
    assert isinstance(c, MemoryCache)
    assert (c.max_bytes, c.default_ttl, c.max_value_bytes) == (64 << 20, 30.0, 1 << 20)
    assert isinstance(open_cache("none"), NullCache)


def test_disk_spec(tmp_path):
    c = open_cache(f"disk://{tmp_path}/x.sqlite?max_bytes=2G")
    assert isinstance(c, ResilientCache) and isinstance(c.inner, DiskCache)
    assert c.inner.max_bytes == 2 << 30 and c.inner.path == tmp_path / "x.sqlite"
    c.close()


def test_redis_specs_build_clients_without_connecting():
    c = open_cache("redis://127.0.0.1:1/0?ttl=60&socket_timeout=0.1&retry_interval=2")
    assert isinstance(c, ResilientCache) and isinstance(c.inner, RedisCache)
    assert c.default_ttl == 60.0 and c.breaker.retry_interval == 2.0
    assert not c.inner.is_cluster
    raw = open_cache("redis://127.0.0.1:1/0?fail_open=false")
    assert isinstance(raw, RedisCache)
    c.close()
    raw.close()


def test_a_cluster_that_is_down_at_startup_opens_and_fails_open():
    # the sync cluster client connects in its constructor: the cache must build it lazily
    cache = open_cache("redis+cluster://127.0.0.1:1?socket_timeout=0.2&retry_interval=60")
    assert cache.inner.is_cluster
    assert cache.get_many(["a"]) == [None]
    cache.put_many({"a": b"1"})
    assert cache.stats().errors == 1 and cache.stats().bypassed == 1
    cache.close()


async def test_async_specs(tmp_path):
    a = open_async_cache(None)
    assert isinstance(a, AsyncCacheAdapter) and not a.offload
    d = open_async_cache(f"disk://{tmp_path}/a.sqlite")
    assert isinstance(d, AsyncCacheAdapter) and d.offload
    await d.aput_many({"k": b"v"})
    assert await d.aget_many(["k"]) == [b"v"]
    r = open_async_cache("redis://127.0.0.1:1?timeout=0.2")
    assert isinstance(r, AsyncResilientCache) and r.timeout == 0.2
    for c in (a, d, r):
        await c.aclose()


def test_cluster_url_forms():
    assert parse_redis_url("redis+cluster://h:7000") == ("redis://h:7000", True)
    assert parse_redis_url("rediss://h:7000/?cluster=yes&ssl_cert_reqs=none") == (
        "rediss://h:7000/?ssl_cert_reqs=none",
        True,
    )
    assert parse_redis_url("redis://h/1") == ("redis://h/1", False)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("mongodb://x", "unknown cache scheme"),
        ("memory://?max_bytes=lots", "bad max_bytes"),
        ("memory://?colour=blue", "unknown option"),
        ("disk://", "needs a path"),
        ("redis://h?fail_open=maybe", "not a boolean"),
        ("redis://h?max_bytes=1G", "unknown option"),
        ("redis://h?timeout=1", "unknown option"),  # per-call timeout is async-only
        ("/some/path", "unknown cache spec"),
    ],
)
def test_bad_specs_fail_clearly(spec, match):
    with pytest.raises(ValueError, match=match):
        open_cache(spec)


def test_parse_size():
    assert parse_size("1024") == 1024
    assert parse_size("512K") == 512 * 1024
    assert parse_size("1.5GiB") == int(1.5 * 1024**3)
    assert parse_size("64mb") == 64 << 20
    with pytest.raises(ValueError):
        parse_size("-1")


def test_bench_command_runs_on_the_embedded_cache(capsys):
    from promptpress.cache.bench import main

    main(["--segments", "20", "--rounds", "1", "--kind", "concepts"])
    out = capsys.readouterr().out
    assert "cached_lookup_ms" in out and "errors                   0" in out

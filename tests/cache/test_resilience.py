"""Fail-open wrapper: outages become misses, logged once, counted, and recovered from."""

import logging

import pytest

from promptpress.cache import (
    AsyncCacheAdapter,
    AsyncResilientCache,
    MemoryCache,
    ResilientCache,
    get_or_compute,
)
from promptpress.cache.interface import SegmentCache


class FlakyCache(SegmentCache):
    """A memory cache whose backend can be switched off."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryCache(1 << 20)
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("backend is down")

    def _get_many(self, keys):
        self._check()
        return self.store.get_many(keys)

    def _put_many(self, items, ttl):
        self._check()
        self.store.put_many(items, ttl)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_outage_degrades_to_misses_logs_once_and_recovers(caplog):
    clock = Clock()
    flaky = FlakyCache()
    cache = ResilientCache(flaky, name="flaky", retry_interval=5, clock=clock)
    cache.put_many({"a": b"1"})
    flaky.down = True
    with caplog.at_level(logging.INFO, logger="promptpress.cache"):
        assert cache.get_many(["a", "b"]) == [None, None]  # the failing call
        for _ in range(20):  # circuit open: no backend call at all
            assert cache.get_many(["a"]) == [None]
            cache.put_many({"c": b"3"})
        assert flaky.calls == 2
        clock.now += 5.1  # one probe, still down
        assert cache.get_many(["a"]) == [None]
        assert flaky.calls == 3
        flaky.down = False
        clock.now += 5.1
        assert cache.get_many(["a"]) == [b"1"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(warnings) == 1 and "flaky unavailable" in warnings[0].getMessage()
    assert len(infos) == 1
    s = cache.stats()
    assert s.errors == 2 and s.bypassed == 40
    assert s.hits == 1 and s.misses == 2 + 20 + 1
    assert not cache.breaker.is_open and cache.breaker.outages == 1


def test_bad_input_still_raises_through_the_wrapper():
    cache = ResilientCache(FlakyCache())
    with pytest.raises(TypeError):
        cache.put_many({"a": "not bytes"})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        cache.get_many([""])


def test_get_or_compute_never_fails_during_an_outage():
    flaky = FlakyCache()
    cache = ResilientCache(flaky, retry_interval=60)
    keys = ["a", "b"]
    assert get_or_compute(cache, keys, lambda idx: [b"v%d" % i for i in idx]) == [b"v0", b"v1"]
    flaky.down = True
    assert get_or_compute(cache, keys, lambda idx: [b"w%d" % i for i in idx]) == [b"w0", b"w1"]
    assert cache.stats().errors == 1


async def test_async_wrapper_times_out_slow_backends_and_counts_them():
    class Slow(AsyncCacheAdapter):
        async def aget_many(self, keys):
            import asyncio

            await asyncio.sleep(1)
            return [None] * len(keys)

    cache = AsyncResilientCache(Slow(MemoryCache(1 << 20)), timeout=0.05, retry_interval=60)
    assert await cache.aget_many(["a"]) == [None]
    assert await cache.aget_many(["a"]) == [None]
    s = cache.stats()
    assert s.errors == 1 and s.bypassed == 1 and s.misses == 2
    await cache.aclose()

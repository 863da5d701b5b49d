"""Kill / freeze redis-server in the middle of a run of cached computations: no call fails."""

import asyncio
import logging
import time

import pytest

from promptpress.cache import KeySpace, aget_or_compute, get_or_compute, open_async_cache, open_cache

pytestmark = pytest.mark.redis

TEXTS = [f"retrieved chunk number {i} about topic {i % 3}" for i in range(12)]
SPACE = KeySpace("outage", "m", "c")
KEYS = SPACE.keys(TEXTS)


def _expected(i: int) -> bytes:
    return TEXTS[i].upper().encode()


def _compute(idx: list[int]) -> list[bytes]:
    return [_expected(i) for i in idx]


def _lookup(cache, window: list[int]) -> list[bytes]:
    """get_or_compute for the texts at ``window`` (compute maps call positions back to texts)."""
    return get_or_compute(cache, [KEYS[i] for i in window], lambda idx: _compute([window[i] for i in idx]))


async def _alookup(cache, window: list[int]) -> list[bytes]:
    return await aget_or_compute(
        cache, [KEYS[i] for i in window], lambda idx: _compute([window[i] for i in idx])
    )


def test_kill_and_restart_redis_mid_run_with_zero_failed_calls(redis_url, redis_server, caplog):
    cache = open_cache(redis_url + "?socket_timeout=0.2&retry_interval=0.2")
    hits_before_kill = hits_after_restart_start = 0
    with caplog.at_level(logging.INFO, logger="promptpress.cache"):
        for step in range(120):
            if step == 30:
                hits_before_kill = cache.stats().hits
                redis_server.stop()
            if step == 70:
                redis_server.start()
                hits_after_restart_start = cache.stats().hits
            window = [(step + j) % len(TEXTS) for j in range(5)]
            out = _lookup(cache, window)
            assert out == [_expected(i) for i in window]  # every call answered, correctly
            time.sleep(0.01)
    s = cache.stats()
    assert hits_before_kill > 0
    assert s.errors >= 1 and s.bypassed >= 1
    assert s.hits > hits_after_restart_start  # hits resumed once Redis was back (and refilled)
    assert not cache.breaker.is_open
    outage_logs = [r for r in caplog.records if "unavailable" in r.getMessage()]
    recovered_logs = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(outage_logs) == 1 and len(recovered_logs) == 1
    assert redis_server.client().exists(*KEYS) == len(KEYS)
    cache.close()


def test_a_frozen_redis_costs_one_timeout_then_calls_bypass(redis_url, redis_server):
    cache = open_cache(redis_url + "?socket_timeout=0.2&retry_interval=0.5")
    get_or_compute(cache, KEYS[:3], _compute)
    redis_server.pause()
    try:
        t0 = time.monotonic()
        for _ in range(20):
            assert get_or_compute(cache, KEYS[:3], _compute) == [_expected(i) for i in range(3)]
        elapsed = time.monotonic() - t0
    finally:
        redis_server.resume()
    s = cache.stats()
    assert s.errors == 1  # only the first lookup waited for the socket timeout ...
    assert s.bypassed == 1 + 2 * 19  # ... every later get and put skipped the frozen server
    assert elapsed < 3.0  # twenty lookups + stores would be >= 40 timeouts (8 s) without the breaker
    time.sleep(0.6)
    before = cache.stats().hits
    assert get_or_compute(cache, KEYS[:3], lambda idx: pytest.fail("should hit after resume")) is not None
    assert cache.stats().hits == before + 3
    cache.close()


async def test_async_kill_and_restart_mid_run(redis_url, redis_server):
    cache = open_async_cache(redis_url + "?socket_timeout=0.2&retry_interval=0.2&timeout=1")
    hits_at_restart = 0
    for step in range(90):
        if step == 20:
            await asyncio.to_thread(redis_server.stop)
        if step == 50:
            await asyncio.to_thread(redis_server.start)
            hits_at_restart = cache.stats().hits
        window = [(step + j) % len(TEXTS) for j in range(4)]
        back = window[::-1]
        outs = await asyncio.gather(_alookup(cache, window), _alookup(cache, back))
        assert outs[0] == [_expected(i) for i in window]
        assert outs[1] == [_expected(i) for i in back]
        await asyncio.sleep(0.01)
    s = cache.stats()
    assert s.errors >= 1 and s.hits > hits_at_restart
    await cache.aclose()

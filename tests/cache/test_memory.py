"""Embedded LRU: bytes-bounded eviction in LRU order, TTL, limits, thread safety, validation."""

import threading

import pytest

from promptpress.cache import MemoryCache, NullCache
from promptpress.cache.memory import ENTRY_OVERHEAD


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_round_trip_and_stats():
    cache = MemoryCache(1 << 20)
    cache.put_many({"a": b"xx", "b": b"yyy"})
    assert cache.get_many(["a", "b", "c", "a"]) == [b"xx", b"yyy", None, b"xx"]
    s = cache.stats()
    assert (s.hits, s.misses, s.puts, s.bytes_read, s.bytes_written) == (3, 1, 2, 7, 5)
    assert s.to_dict()["hits"] == 3 and s.hit_rate == 0.75
    assert cache.get_many([]) == []


def test_eviction_is_by_bytes_and_least_recently_used_first():
    value = b"v" * 100
    per_entry = len("k0") + len(value) + ENTRY_OVERHEAD
    cache = MemoryCache(per_entry * 3, max_value_bytes=per_entry * 2)
    cache.put_many({"k0": value, "k1": value, "k2": value})
    assert cache.get_many(["k0"]) == [value]  # k0 is now the most recent; k1 the least
    cache.put_many({"k3": value})
    assert cache.get_many(["k0", "k1", "k2", "k3"]) == [value, None, value, value]
    assert cache.current_bytes <= cache.max_bytes
    assert cache.stats().evictions == 1
    # one bigger value pushes out as many of the least recent entries as needed (k0, k2; not k3)
    cache.put_many({"big": b"B" * per_entry})
    assert cache.get_many(["k0", "k2", "k3", "big"]) == [None, None, value, b"B" * per_entry]
    assert cache.current_bytes <= cache.max_bytes
    assert cache.stats().evictions == 3


def test_overwrite_replaces_size_accounting():
    cache = MemoryCache(10_000)
    cache.put_many({"a": b"x" * 1000})
    cache.put_many({"a": b"x" * 10})
    assert cache.current_bytes == 1 + 10 + ENTRY_OVERHEAD


def test_ttl_expiry_and_default_ttl():
    clock = FakeClock()
    cache = MemoryCache(1 << 20, default_ttl=10, clock=clock)
    cache.put_many({"short": b"1"}, ttl=1)
    cache.put_many({"default": b"2"})
    clock.now += 5
    assert cache.get_many(["short", "default"]) == [None, b"2"]
    clock.now += 6
    assert cache.get_many(["default"]) == [None]
    assert len(cache) == 0


def test_values_over_max_value_bytes_are_not_stored_and_counted():
    cache = MemoryCache(1 << 16, max_value_bytes=100)
    cache.put_many({"ok": b"x" * 100, "big": b"x" * 101})
    assert cache.get_many(["ok", "big"]) == [b"x" * 100, None]
    assert cache.stats().oversized == 1 and cache.stats().puts == 1
    with pytest.raises(ValueError):
        MemoryCache(1000, max_value_bytes=5000)


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda c: c.get_many("abc"), TypeError),
        (lambda c: c.get_many([1]), TypeError),
        (lambda c: c.get_many([""]), ValueError),
        (lambda c: c.put_many({"a": "text"}), TypeError),
        (lambda c: c.put_many([("a", b"x")]), TypeError),
        (lambda c: c.put_many({"a": b"x"}, ttl=0), ValueError),
        (lambda c: c.put_many({"a": b"x"}, ttl=float("nan")), ValueError),
    ],
)
def test_bad_input_is_a_clear_error_and_stores_nothing(call, exc):
    cache = MemoryCache(1 << 16)
    with pytest.raises(exc):
        call(cache)
    assert len(cache) == 0


def test_thread_safety_under_concurrent_puts_and_gets():
    cache = MemoryCache(64 * 1024, max_value_bytes=1024)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(300):
                key = f"t{t}-{i % 50}"
                cache.put_many({key: bytes([t]) * (i % 200 + 1)})
                got = cache.get_many([key])[0]
                assert got is None or got[:1] == bytes([t])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert cache.current_bytes <= cache.max_bytes
    real = sum(len(k) + len(v) + ENTRY_OVERHEAD for k, (v, _) in cache._entries.items())
    assert real == cache.current_bytes
    assert cache.stats().puts == 6 * 300


def test_null_cache_stores_nothing_but_validates():
    cache = NullCache()
    cache.put_many({"a": b"1"})
    assert cache.get_many(["a"]) == [None]
    assert cache.stats().puts == 0 and cache.stats().misses == 1
    with pytest.raises(TypeError):
        cache.put_many({"a": 1})  # type: ignore[dict-item]

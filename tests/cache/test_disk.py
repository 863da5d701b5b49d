"""sqlite cache: persists across reopen, bounded by bytes (LRU by access time), TTL, schema checks."""

import sqlite3
import threading

import pytest

from promptpress.cache import DiskCache, open_cache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.001  # strictly increasing access times
        return self.now


def test_values_persist_across_reopen(tmp_path):
    path = tmp_path / "c.sqlite"
    with DiskCache(path) as cache:
        cache.put_many({"a": b"\x00\x01binary", "b": b"2"})
    with DiskCache(path) as cache:
        assert cache.get_many(["a", "b", "c"]) == [b"\x00\x01binary", b"2", None]
        assert len(cache) == 2


def test_directory_path_gets_a_file(tmp_path):
    with DiskCache(tmp_path) as cache:
        cache.put_many({"a": b"1"})
        assert cache.path == tmp_path / "segments.sqlite"


def test_bounded_size_evicts_least_recently_read(tmp_path):
    clock = FakeClock()
    value = b"v" * 1000
    cache = DiskCache(tmp_path / "c.sqlite", max_bytes=3 * 1002, max_value_bytes=2000, clock=clock)
    cache.put_many({"k0": value})
    cache.put_many({"k1": value})
    cache.put_many({"k2": value})
    cache.get_many(["k0"])  # k1 is now the least recently read
    cache.put_many({"k3": value})
    assert cache.get_many(["k0", "k1", "k2", "k3"]) == [value, None, value, value]
    assert cache.current_bytes <= cache.max_bytes
    assert cache.stats().evictions == 1
    cache.close()
    reopened = DiskCache(tmp_path / "c.sqlite", max_bytes=3 * 1002, max_value_bytes=2000)
    assert reopened.current_bytes == 3 * 1002  # total survives reopen (trigger-maintained)


def test_overwrite_keeps_total_exact(tmp_path):
    cache = DiskCache(tmp_path / "c.sqlite")
    cache.put_many({"a": b"x" * 500})
    cache.put_many({"a": b"x" * 5})
    assert cache.current_bytes == 1 + 5
    cache.clear()
    assert cache.current_bytes == 0


def test_ttl_expiry(tmp_path):
    clock = FakeClock()
    cache = DiskCache(tmp_path / "c.sqlite", clock=clock)
    cache.put_many({"a": b"1"}, ttl=5)
    cache.put_many({"b": b"2"})
    clock.now += 10
    assert cache.get_many(["a", "b"]) == [None, b"2"]
    assert len(cache) == 1


def test_other_schema_version_is_wiped(tmp_path):
    path = tmp_path / "c.sqlite"
    DiskCache(path).put_many({"a": b"1"})
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '0' WHERE name = 'schema'")
    assert DiskCache(path).get_many(["a"]) == [None]


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a usable"):
        DiskCache(path)


def test_closed_cache_raises_and_factory_wraps_it_fail_open(tmp_path):
    cache = DiskCache(tmp_path / "c.sqlite")
    cache.close()
    with pytest.raises(RuntimeError, match="closed"):
        cache.get_many(["a"])
    wrapped = open_cache(f"disk://{tmp_path}/f.sqlite?max_bytes=1MiB")
    wrapped.put_many({"a": b"1"})
    assert wrapped.get_many(["a"]) == [b"1"]
    wrapped.inner.close()  # the store goes away under the wrapper: calls miss, never raise
    assert wrapped.get_many(["a"]) == [None]
    wrapped.put_many({"b": b"2"})
    assert wrapped.stats().errors == 1 and wrapped.stats().bypassed == 1


def test_two_handles_and_threads_share_one_file(tmp_path):
    path = tmp_path / "c.sqlite"
    a, b = DiskCache(path), DiskCache(path)

    def writer(cache: DiskCache, tag: str) -> None:
        for i in range(40):
            cache.put_many({f"{tag}{i}": tag.encode() * 10})
            cache.get_many([f"{tag}{i}"])

    threads = [threading.Thread(target=writer, args=(c, t)) for c, t in ((a, "a"), (b, "b"), (a, "c"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(a) == 120
    assert a.current_bytes == sum(len(f"{t}{i}") + 10 for t in "abc" for i in range(40))
    assert b.get_many(["a39", "c0"]) == [b"a" * 10, b"c" * 10]

"""get_or_compute: only misses are computed, in one batch, once per key across threads and tasks."""

import asyncio
import threading
import time

import numpy as np
import pytest

from promptpress.cache import (
    ArrayCodec,
    AsyncCacheAdapter,
    MemoryCache,
    SingleFlight,
    aget_or_compute,
    encode_arrays,
    get_or_compute,
)


class Recorder:
    """A compute_missing that records its batches and derives values from the key text."""

    def __init__(self, keys: list[str], delay: float = 0.0) -> None:
        self.keys, self.delay = keys, delay
        self.batches: list[list[int]] = []
        self.per_key: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, idx: list[int]) -> list[bytes]:
        with self._lock:
            self.batches.append(list(idx))
            for i in idx:
                self.per_key[self.keys[i]] = self.per_key.get(self.keys[i], 0) + 1
        time.sleep(self.delay)
        return [f"value-of-{self.keys[i]}".encode() for i in idx]


def test_first_call_computes_all_once_second_call_hits():
    cache = MemoryCache(1 << 20)
    keys = ["a", "b", "c", "a"]
    rec = Recorder(keys)
    out = get_or_compute(cache, keys, rec)
    assert out == [b"value-of-a", b"value-of-b", b"value-of-c", b"value-of-a"]
    assert rec.batches == [[0, 1, 2]]  # one batch, duplicate "a" computed once
    again = Recorder(keys)
    assert get_or_compute(cache, keys, again) == out
    assert again.batches == []
    assert cache.stats().hits == 3


def test_only_the_misses_are_computed_with_their_positions():
    cache = MemoryCache(1 << 20)
    cache.put_many({"b": b"cached-b"})
    keys = ["a", "b", "c"]
    rec = Recorder(keys)
    assert get_or_compute(cache, keys, rec) == [b"value-of-a", b"cached-b", b"value-of-c"]
    assert rec.batches == [[0, 2]]


def test_array_values_and_corrupt_entries_are_recomputed_and_counted():
    cache = MemoryCache(1 << 20)
    codec = ArrayCodec(required=("keep",))
    keys = ["s0", "s1", "s2"]

    def compute(idx):
        return [{"keep": np.full(4, i, np.float16)} for i in idx]

    good = encode_arrays({"keep": np.full(4, 9, np.float16)})
    cache.put_many({"s0": good, "s1": good[:-3], "s2": b"garbage"})
    out = get_or_compute(cache, keys, compute, codec=codec)
    np.testing.assert_array_equal(out[0]["keep"], np.full(4, 9))
    np.testing.assert_array_equal(out[1]["keep"], np.full(4, 1))
    np.testing.assert_array_equal(out[2]["keep"], np.full(4, 2))
    s = cache.stats()
    assert s.invalid == 2 and s.hits == 1 and s.misses == 2
    # the recomputed values replaced the bad ones
    assert get_or_compute(cache, keys, lambda idx: pytest.fail("should hit"), codec=codec)[1]["keep"][0] == 1


def test_wrong_number_of_computed_values_is_an_error_and_nothing_is_stored():
    cache = MemoryCache(1 << 20)
    with pytest.raises(ValueError, match="returned 1 values for 2"):
        get_or_compute(cache, ["a", "b"], lambda idx: [b"x"])
    assert len(cache) == 0


def test_concurrent_misses_on_the_same_keys_compute_once():
    cache = MemoryCache(1 << 20)
    keys = [f"seg{i}" for i in range(20)]
    rec = Recorder(keys, delay=0.05)
    barrier = threading.Barrier(8)
    results: list[list[bytes]] = []

    def worker(t: int) -> None:
        mine = keys[t % 3 :] + keys[: t % 3]  # overlapping batches in different orders
        barrier.wait()
        results.append(get_or_compute(cache, mine, lambda idx: rec([keys.index(mine[i]) for i in idx])))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 8
    assert all(sorted(r) == sorted(f"value-of-{k}".encode() for k in keys) for r in results)
    assert rec.per_key == dict.fromkeys(keys, 1)


def test_when_the_leader_fails_waiters_compute_for_themselves():
    cache = MemoryCache(1 << 20)
    flight = SingleFlight()
    started = threading.Event()
    release = threading.Event()

    def failing(idx):
        started.set()
        release.wait(5)
        raise RuntimeError("model crashed")

    errors: list[BaseException] = []

    def leader() -> None:
        try:
            get_or_compute(cache, ["k"], failing, flight=flight)
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=leader)
    t.start()
    started.wait(5)
    follower_result: list[list[bytes]] = []
    f = threading.Thread(
        target=lambda: follower_result.append(get_or_compute(cache, ["k"], lambda i: [b"ok"], flight=flight))
    )
    f.start()
    time.sleep(0.05)
    assert len(flight) == 1  # the follower is waiting on the leader's future
    release.set()
    t.join()
    f.join()
    assert len(errors) == 1 and follower_result == [[b"ok"]]
    assert len(flight) == 0


async def test_async_single_flight_across_tasks():
    cache = AsyncCacheAdapter(MemoryCache(1 << 20))
    keys = ["x", "y", "z"]
    calls: list[list[int]] = []

    async def compute(idx):
        calls.append(idx)
        await asyncio.sleep(0.02)
        return [keys[i].encode() * 2 for i in idx]

    outs = await asyncio.gather(*(aget_or_compute(cache, keys, compute) for _ in range(5)))
    assert outs == [[b"xx", b"yy", b"zz"]] * 5
    assert calls == [[0, 1, 2]]
    assert await aget_or_compute(cache, keys, lambda idx: pytest.fail("should hit")) == outs[0]
    assert (await cache.astats()).hits == 3


async def test_async_waiter_recovers_when_leader_is_cancelled():
    cache = AsyncCacheAdapter(MemoryCache(1 << 20))

    async def slow(idx):
        await asyncio.sleep(10)
        return [b"never"]

    leader = asyncio.create_task(aget_or_compute(cache, ["k"], slow))
    await asyncio.sleep(0.01)
    follower = asyncio.create_task(aget_or_compute(cache, ["k"], lambda idx: [b"mine"]))
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await follower == [b"mine"]
    with pytest.raises(asyncio.CancelledError):
        await leader


@pytest.mark.parametrize("run", ["sync", "async"])
def test_values_the_caller_does_not_accept_are_misses_and_overwritten(run):
    keys = ["a", "b"]
    cache = MemoryCache(1 << 20)
    cache.put_many({"a": encode_arrays({"keep": np.zeros(2)}), "b": encode_arrays({"keep": np.zeros(3)})})
    wanted = {0: 3, 1: 3}  # "a" holds 2 values where 3 belong: well formed, wrong shape
    codec = ArrayCodec(required=("keep",))

    def compute(idx):
        return [{"keep": np.ones(wanted[i])} for i in idx]

    def fits(i, value):
        return value["keep"].shape == (wanted[i],)

    def call():
        if run == "sync":
            return get_or_compute(cache, keys, compute, codec=codec, accept=fits)
        return asyncio.run(aget_or_compute(AsyncCacheAdapter(cache), keys, compute, codec=codec, accept=fits))

    out = call()
    assert [v["keep"].shape for v in out] == [(3,), (3,)]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.invalid) == (1, 1, 1)
    out = get_or_compute(cache, keys, lambda idx: pytest.fail("repaired: all hit"), codec=codec, accept=fits)
    assert out[0]["keep"].tolist() == [1.0, 1.0, 1.0]

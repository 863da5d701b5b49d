"""Read-through caching with single flight: look up many keys, compute only the misses, once.

:func:`get_or_compute` (sync) and :func:`aget_or_compute` (asyncio) are what a compressor calls::

    values = get_or_compute(cache, keys, compute_missing, codec=ArrayCodec())

1. Duplicate keys in one call are looked up and computed once.
2. Each distinct key is *claimed* in the cache's :class:`SingleFlight`. A key another thread (task)
   is already computing is not looked up or computed again: the caller waits for that result.
3. The claimed keys are fetched with one ``get_many``; values that fail to decode (corrupt,
   truncated, stale: :class:`~promptpress.cache.codec.CacheValueError`) or that the caller's
   ``accept(index, value)`` rejects (well formed but of the wrong shape for what the key stands for)
   are misses, counted as ``invalid`` and overwritten by the recomputed value.
4. ``compute_missing(indices)`` is called once, with the positions (into ``keys``) of the misses,
   and must return one value per index, in order. The values are stored with one ``put_many``
   and handed to any waiting callers.

If the leader's computation fails, its waiters compute for themselves (and raise if that fails
too). Cache *backend* failures are not handled here: pass a fail-open cache
(:class:`~promptpress.cache.resilience.ResilientCache`, which ``open_cache`` returns for Redis).

Single flight is per process and per cache object (a default :class:`SingleFlight` is attached to
each cache; pass ``flight=`` to share one across caches). Across processes, concurrent misses may
compute twice; the second put just overwrites the same value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .codec import BytesCodec, CacheValueError, ValueCodec
from .interface import AsyncSegmentCache, SegmentCache

__all__ = ["AsyncSingleFlight", "SingleFlight", "aget_or_compute", "get_or_compute"]

log = logging.getLogger("promptpress.cache")
T = TypeVar("T")
_BYTES: ValueCodec[Any] = BytesCodec()


class SingleFlight:
    """In-flight computations by key: the first claimant of a key computes it, later ones wait.

    One future per *claim* (a batch of keys), resolved with a ``{key: value}`` dict, so a batch of
    hundreds of keys costs one future, not hundreds.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, Any] = {}

    def _new_future(self) -> Any:
        return concurrent.futures.Future()

    def claim(self, keys: Sequence[str]) -> tuple[list[str], Any, dict[str, Any]]:
        """(keys this caller leads, the future it must resolve, {key: future of another caller})."""
        led: list[str] = []
        waits: dict[str, Any] = {}
        fut = self._new_future()
        with self._lock:
            for key in keys:
                other = self._inflight.get(key)
                if other is None:
                    self._inflight[key] = fut
                    led.append(key)
                else:
                    waits[key] = other
        return led, fut, waits

    def release(self, led: list[str], fut: Any) -> None:
        with self._lock:
            for key in led:
                if self._inflight.get(key) is fut:
                    del self._inflight[key]

    def __len__(self) -> int:
        return len(self._inflight)


class AsyncSingleFlight(SingleFlight):
    """Same, with asyncio futures (use from one event loop)."""

    def _new_future(self) -> Any:
        return asyncio.get_running_loop().create_future()


_flights: weakref.WeakKeyDictionary[object, SingleFlight] = weakref.WeakKeyDictionary()
_flights_lock = threading.Lock()


def flight_for(cache: SegmentCache | AsyncSegmentCache) -> SingleFlight:
    """The default single flight attached to ``cache``."""
    with _flights_lock:
        flight = _flights.get(cache)
        if flight is None:
            flight = AsyncSingleFlight() if isinstance(cache, AsyncSegmentCache) else SingleFlight()
            _flights[cache] = flight
        return flight


def _first_index(keys: Sequence[str]) -> dict[str, int]:
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if not isinstance(key, str):
            raise TypeError(f"cache keys must be str, got {type(key).__name__}")
        first.setdefault(key, i)
    return first


Accept = Callable[[int, Any], bool]  # (index into the keys, decoded value) -> trust it?


def _decode_found(
    cache: SegmentCache | AsyncSegmentCache,
    keys: list[str],
    raw: list[bytes | None],
    codec: ValueCodec[T],
    accept: Accept | None = None,
    first: dict[str, int] | None = None,
) -> tuple[dict[str, T], list[str]]:
    found: dict[str, T] = {}
    missing: list[str] = []
    invalid = 0
    for key, data in zip(keys, raw, strict=True):
        if data is None:
            missing.append(key)
            continue
        try:
            value = codec.decode(data)
            if accept is not None and first is not None and not accept(first[key], value):
                raise CacheValueError("the value does not fit its key (wrong shape)")
            found[key] = value
        except CacheValueError as exc:
            invalid += 1
            missing.append(key)
            log.debug("untrusted cache value for %s: %s", key, exc)
    if invalid:
        cache.record_invalid(invalid)
    return found, missing


def _encode_computed(
    missing: list[str], computed: Sequence[T], codec: ValueCodec[T], found: dict[str, T]
) -> dict[str, bytes]:
    if len(computed) != len(missing):
        raise ValueError(f"compute_missing returned {len(computed)} values for {len(missing)} indices")
    encoded: dict[str, bytes] = {}
    for key, value in zip(missing, computed, strict=True):
        found[key] = value
        encoded[key] = codec.encode(value)
    return encoded


def _resolve(fut: Any, found: dict[str, Any] | None, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(found)
    elif isinstance(exc, Exception):
        fut.set_exception(exc)
        fut.exception()  # mark retrieved: asyncio would log it if no one else was waiting
    else:
        fut.cancel()


def _subset(compute_missing: Callable[[list[int]], Any], positions: list[int]) -> Callable[[list[int]], Any]:
    """compute_missing for a call on a subset of the keys (indices mapped back to the originals)."""
    return lambda idx: compute_missing([positions[i] for i in idx])


def _accept_subset(accept: Accept | None, positions: list[int]) -> Accept | None:
    """`accept` for a call on a subset of the keys (indices mapped back to the originals)."""
    return None if accept is None else (lambda i, value: accept(positions[i], value))


def get_or_compute(
    cache: SegmentCache,
    keys: Sequence[str],
    compute_missing: Callable[[list[int]], Sequence[T]],
    *,
    codec: ValueCodec[T] = _BYTES,
    ttl: float | None = None,
    flight: SingleFlight | None = None,
    accept: Accept | None = None,
) -> list[T]:
    """Values for ``keys`` (decoded by ``codec``), computing only the misses in one batched call.
    ``accept(index, value)``, when given, rejects a decoded value as invalid (see the module doc)."""
    first = _first_index(keys)
    flight = flight if flight is not None else flight_for(cache)
    led, fut, waits = flight.claim(list(first))
    found: dict[str, T] = {}
    try:
        if led:
            found, missing = _decode_found(cache, led, cache.get_many(led), codec, accept, first)
            if missing:
                computed = compute_missing([first[k] for k in missing])
                cache.put_many(_encode_computed(missing, computed, codec, found), ttl)
        _resolve(fut, found, None)
    except BaseException as exc:
        _resolve(fut, None, exc)
        raise
    finally:
        flight.release(led, fut)
    retry: list[str] = []
    for key, other in waits.items():
        try:
            found[key] = other.result()[key]
        except (Exception, concurrent.futures.CancelledError):
            retry.append(key)
    if retry:  # the other caller failed: compute these ourselves
        sub = _subset(compute_missing, [first[k] for k in retry])
        again = _accept_subset(accept, [first[k] for k in retry])
        values = get_or_compute(cache, retry, sub, codec=codec, ttl=ttl, flight=flight, accept=again)
        found.update(zip(retry, values, strict=True))
    return [found[k] for k in keys]


async def aget_or_compute(
    cache: AsyncSegmentCache,
    keys: Sequence[str],
    compute_missing: Callable[[list[int]], Sequence[T] | Awaitable[Sequence[T]]],
    *,
    codec: ValueCodec[T] = _BYTES,
    ttl: float | None = None,
    flight: SingleFlight | None = None,
    accept: Accept | None = None,
) -> list[T]:
    """asyncio twin of :func:`get_or_compute`; ``compute_missing`` may be sync or async.

    A CPU-heavy sync ``compute_missing`` blocks the event loop: wrap it with
    ``lambda idx: asyncio.to_thread(fn, idx)``.
    """
    first = _first_index(keys)
    flight = flight if flight is not None else flight_for(cache)
    led, fut, waits = flight.claim(list(first))
    found: dict[str, T] = {}
    try:
        if led:
            raw = await cache.aget_many(led)
            found, missing = _decode_found(cache, led, raw, codec, accept, first)
            if missing:
                computed = compute_missing([first[k] for k in missing])
                if inspect.isawaitable(computed):
                    computed = await computed
                await cache.aput_many(_encode_computed(missing, computed, codec, found), ttl)
        _resolve(fut, found, None)
    except BaseException as exc:
        _resolve(fut, None, exc)
        raise
    finally:
        flight.release(led, fut)
    retry: list[str] = []
    if waits:
        await asyncio.wait(set(waits.values()))  # never cancels the others' futures
    for key, other in waits.items():
        if other.cancelled() or other.exception() is not None:
            retry.append(key)
        else:
            found[key] = other.result()[key]
    if retry:
        sub = _subset(compute_missing, [first[k] for k in retry])
        again = _accept_subset(accept, [first[k] for k in retry])
        values = await aget_or_compute(cache, retry, sub, codec=codec, ttl=ttl, flight=flight, accept=again)
        found.update(zip(retry, values, strict=True))
    return [found[k] for k in keys]

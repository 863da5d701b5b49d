"""Read-through caching with single flight: look up many keys, compute only the misses, once.

:func:`get_or_compute` (sync) and :func:`aget_or_compute` (asyncio) are what a compressor calls::

    values = get_or_compute(cache, keys, compute_missing, codec=ArrayCodec())

1. Duplicate keys in one call are looked up and computed once.
2. Each distinct key is *claimed* in the cache's :class:`SingleFlight`. A key another thread (task)
   is already computing is not looked up or computed again: the caller waits for that result.
3. The claimed keys are fetched with one ``get_many``; values that fail to decode (corrupt,
   truncated, stale: :class:`~promptpress.cache.codec.CacheValueError`) are misses, counted as
   ``invalid`` and overwritten by the recomputed value.
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
    """Per-key in-flight futures: the first claimant of a key computes it, later ones wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, Any] = {}

    def _new_future(self) -> Any:
        return concurrent.futures.Future()

    def claim(self, keys: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split ``keys`` into (led: futures this caller must resolve, waits: futures of others)."""
        led: dict[str, Any] = {}
        waits: dict[str, Any] = {}
        with self._lock:
            for key in keys:
                fut = self._inflight.get(key)
                if fut is None:
                    led[key] = self._inflight[key] = self._new_future()
                else:
                    waits[key] = fut
        return led, waits

    def release(self, led: dict[str, Any]) -> None:
        with self._lock:
            for key, fut in led.items():
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


def _decode_found(
    cache: SegmentCache | AsyncSegmentCache, keys: list[str], raw: list[bytes | None], codec: ValueCodec[T]
) -> tuple[dict[str, T], list[str]]:
    found: dict[str, T] = {}
    missing: list[str] = []
    invalid = 0
    for key, data in zip(keys, raw, strict=True):
        if data is None:
            missing.append(key)
            continue
        try:
            found[key] = codec.decode(data)
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


def _resolve(led: dict[str, Any], found: dict[str, Any] | None, exc: BaseException | None) -> None:
    for key, fut in led.items():
        if fut.done():
            continue
        if exc is None and found is not None:
            fut.set_result(found[key])
        elif isinstance(exc, Exception):
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: asyncio would log it if no one else was waiting
        else:
            fut.cancel()


def get_or_compute(
    cache: SegmentCache,
    keys: Sequence[str],
    compute_missing: Callable[[list[int]], Sequence[T]],
    *,
    codec: ValueCodec[T] = _BYTES,
    ttl: float | None = None,
    flight: SingleFlight | None = None,
) -> list[T]:
    """Values for ``keys`` (decoded by ``codec``), computing only the misses in one batched call."""
    first = _first_index(keys)
    flight = flight if flight is not None else flight_for(cache)
    led, waits = flight.claim(list(first))
    found: dict[str, T] = {}
    try:
        if led:
            led_keys = list(led)
            found, missing = _decode_found(cache, led_keys, cache.get_many(led_keys), codec)
            if missing:
                computed = compute_missing([first[k] for k in missing])
                cache.put_many(_encode_computed(missing, computed, codec, found), ttl)
        _resolve(led, found, None)
    except BaseException as exc:
        _resolve(led, None, exc)
        raise
    finally:
        flight.release(led)
    retry: list[str] = []
    for key, fut in waits.items():
        try:
            found[key] = fut.result()
        except (Exception, concurrent.futures.CancelledError):
            retry.append(key)
    if retry:  # the other caller failed: compute these ourselves
        sub = [first[k] for k in retry]
        values = get_or_compute(
            cache,
            retry,
            lambda idx: compute_missing([sub[i] for i in idx]),
            codec=codec,
            ttl=ttl,
            flight=flight,
        )
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
) -> list[T]:
    """asyncio twin of :func:`get_or_compute`; ``compute_missing`` may be sync or async.

    A CPU-heavy sync ``compute_missing`` blocks the event loop: wrap it with
    ``lambda idx: asyncio.to_thread(fn, idx)``.
    """
    first = _first_index(keys)
    flight = flight if flight is not None else flight_for(cache)
    led, waits = flight.claim(list(first))
    found: dict[str, T] = {}
    try:
        if led:
            led_keys = list(led)
            found, missing = _decode_found(cache, led_keys, await cache.aget_many(led_keys), codec)
            if missing:
                computed = compute_missing([first[k] for k in missing])
                if inspect.isawaitable(computed):
                    computed = await computed
                await cache.aput_many(_encode_computed(missing, computed, codec, found), ttl)  # type: ignore[arg-type]
        _resolve(led, found, None)
    except BaseException as exc:
        _resolve(led, None, exc)
        raise
    finally:
        flight.release(led)
    retry: list[str] = []
    if waits:
        await asyncio.wait(list(waits.values()))  # never cancels the others' futures
    for key, fut in waits.items():
        if fut.cancelled() or fut.exception() is not None:
            retry.append(key)
        else:
            found[key] = fut.result()
    if retry:
        sub = [first[k] for k in retry]

        def compute_sub(idx: list[int]) -> Sequence[T] | Awaitable[Sequence[T]]:
            return compute_missing([sub[i] for i in idx])

        values = await aget_or_compute(cache, retry, compute_sub, codec=codec, ttl=ttl, flight=flight)
        found.update(zip(retry, values, strict=True))
    return [found[k] for k in keys]

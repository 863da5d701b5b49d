"""Fail-open wrappers: a cache outage degrades to misses, never to failed compressions.

:class:`ResilientCache` (sync) and :class:`AsyncResilientCache` wrap any backend. A failing call
(connection refused, timeout, cluster down, disk error) returns all-miss / not-stored instead of
raising, counts one ``error`` and opens a :class:`CircuitBreaker`. While open, calls skip the
backend entirely (counted as ``bypassed``), so an outage costs nothing per call instead of a socket
timeout per call. Every ``retry_interval`` seconds one caller probes the backend; the first success
closes the circuit. One WARNING is logged when an outage starts and one INFO when it ends, never
one per call.

Bad *input* (wrong key or value types, bad TTL) is validated before the backend is touched and
raises as usual: fail-open covers the backend, not the caller's bugs.

Slow backends: the Redis clients have socket timeouts; the async wrapper can also bound each call
with ``timeout`` (``asyncio.wait_for``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from .interface import (
    AsyncSegmentCache,
    CacheStats,
    SegmentCache,
    StatsRecorder,
    check_items,
    check_keys,
    check_ttl,
)

__all__ = ["AsyncResilientCache", "CircuitBreaker", "ResilientCache"]

log = logging.getLogger("promptpress.cache")

DEFAULT_RETRY_INTERVAL = 5.0


class CircuitBreaker:
    """Closed -> (failure) -> open -> (retry_interval elapses, one probe) -> closed or open again."""

    def __init__(
        self,
        name: str,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if retry_interval <= 0:
            raise ValueError(f"retry_interval must be positive, got {retry_interval}")
        self.name = name
        self.retry_interval = retry_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._open = False
        self._retry_at = 0.0
        self._since = 0.0
        self._failures = 0
        self.outages = 0

    @property
    def is_open(self) -> bool:
        return self._open

    def allow(self) -> bool:
        """True if the caller should use the backend (closed, or this caller is the probe)."""
        with self._lock:
            if not self._open:
                return True
            now = self._clock()
            if now >= self._retry_at:
                self._retry_at = now + self.retry_interval  # other callers keep bypassing meanwhile
                return True
            return False

    def failure(self, exc: BaseException) -> None:
        with self._lock:
            now = self._clock()
            self._failures += 1
            self._retry_at = now + self.retry_interval
            if self._open:
                return
            self._open, self._since = True, now
            self.outages += 1
        log.warning(
            "cache %s unavailable (%s: %s); serving misses, retrying every %.1fs",
            self.name,
            type(exc).__name__,
            exc,
            self.retry_interval,
        )

    def success(self) -> None:
        if not self._open:  # fast path, no lock: the common case
            return
        with self._lock:
            if not self._open:
                return
            self._open = False
            down, failures = self._clock() - self._since, self._failures
            self._failures = 0
        log.info("cache %s recovered after %.1fs (%d failed calls)", self.name, down, failures)


class _FailOpen:
    """Breaker bookkeeping and counters shared by the sync and async wrappers.

    ``_begin_get``/``_begin_put`` validate the input (raising on bad input) and decide whether to
    call the backend; ``_failed*`` record a backend failure. Counters of the wrapper itself
    (errors, bypassed, the misses they caused) are added to the inner cache's in ``stats()``.
    """

    inner: SegmentCache | AsyncSegmentCache

    def __init__(self, name: str, retry_interval: float, clock: Callable[[], float]) -> None:
        self.breaker = CircuitBreaker(name, retry_interval, clock)
        self._own = StatsRecorder()

    def _begin_get(self, keys: Sequence[str]) -> tuple[list[str], list[bytes | None] | None]:
        """(checked keys, the answer if the backend must not be called)."""
        checked = check_keys(keys)
        if not checked:
            return checked, []
        if not self.breaker.allow():
            self._own.add(bypassed=1, misses=len(checked))
            return checked, [None] * len(checked)
        return checked, None

    def _begin_put(
        self, items: Mapping[str, bytes], ttl: float | None
    ) -> tuple[dict[str, bytes], float | None] | None:
        checked, ttl = check_items(items), check_ttl(ttl)
        if not checked:
            return None
        if not self.breaker.allow():
            self._own.add(bypassed=1)
            return None
        return checked, ttl

    def _failed_get(self, exc: BaseException, n: int) -> list[bytes | None]:
        self.breaker.failure(exc)
        self._own.add(errors=1, misses=n)
        return [None] * n

    def _failed(self, exc: BaseException) -> None:
        self.breaker.failure(exc)
        self._own.add(errors=1)

    def stats(self) -> CacheStats:
        return self.inner.stats() + self._own.snapshot()

    def record_invalid(self, count: int) -> None:
        self.inner.record_invalid(count)


class ResilientCache(_FailOpen, SegmentCache):
    """Sync fail-open wrapper around any :class:`SegmentCache`."""

    inner: SegmentCache

    def __init__(
        self,
        inner: SegmentCache,
        *,
        name: str | None = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        SegmentCache.__init__(self, max_value_bytes=inner.max_value_bytes, default_ttl=inner.default_ttl)
        _FailOpen.__init__(self, name or type(inner).__name__, retry_interval, clock)
        self.inner = inner

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        checked, answer = self._begin_get(keys)
        if answer is not None:
            return answer
        try:
            values = self.inner.get_many(checked)
        except Exception as exc:
            return self._failed_get(exc, len(checked))
        self.breaker.success()
        return values

    def put_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        begun = self._begin_put(items, ttl)
        if begun is None:
            return
        try:
            self.inner.put_many(*begun)
        except Exception as exc:
            self._failed(exc)
            return
        self.breaker.success()

    _get_many = get_many  # the template hooks are never reached
    _put_many = put_many

    def close(self) -> None:
        try:
            self.inner.close()
        except Exception as exc:
            log.warning("closing cache %s failed: %s", self.breaker.name, exc)


class AsyncResilientCache(_FailOpen, AsyncSegmentCache):
    """asyncio fail-open wrapper; ``timeout`` (seconds) bounds each backend call if set."""

    inner: AsyncSegmentCache

    def __init__(
        self,
        inner: AsyncSegmentCache,
        *,
        name: str | None = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        AsyncSegmentCache.__init__(self, max_value_bytes=inner.max_value_bytes, default_ttl=inner.default_ttl)
        _FailOpen.__init__(self, name or type(inner).__name__, retry_interval, clock)
        self.inner = inner
        self.timeout = timeout

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        checked, answer = self._begin_get(keys)
        if answer is not None:
            return answer
        try:
            values = await asyncio.wait_for(self.inner.aget_many(checked), self.timeout)
        except Exception as exc:  # includes asyncio.TimeoutError; not CancelledError (BaseException)
            return self._failed_get(exc, len(checked))
        self.breaker.success()
        return values

    async def aput_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        begun = self._begin_put(items, ttl)
        if begun is None:
            return
        try:
            await asyncio.wait_for(self.inner.aput_many(*begun), self.timeout)
        except Exception as exc:
            self._failed(exc)
            return
        self.breaker.success()

    _aget_many = aget_many
    _aput_many = aput_many

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        except Exception as exc:
            log.warning("closing cache %s failed: %s", self.breaker.name, exc)

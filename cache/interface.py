"""The segment cache interface: bytes in, bytes out, many keys per call.

A segment cache maps string keys (see :mod:`promptpress.cache.keys`) to opaque ``bytes`` values
(see :mod:`promptpress.cache.codec` for the numpy array envelope). It knows nothing about models.
Every call is batched, because a compressor looks up all the segments of a prompt at once and one
network round trip per segment would cost more than it saves.

Two abstract bases share one contract and one set of counters:

- :class:`SegmentCache` (sync): ``get_many``, ``put_many``, ``stats``, ``close``.
- :class:`AsyncSegmentCache` (asyncio): ``aget_many``, ``aput_many``, ``stats``/``astats``, ``aclose``.

The public methods are template methods: they validate the input (clear ``TypeError``/``ValueError``
on bad keys, values or TTLs), drop values over ``max_value_bytes`` (counted as ``oversized``), call
the backend's ``_get_many``/``_put_many`` and update the counters. A backend only talks to its store.

Counters (:class:`CacheStats`) are per cache object and per process; ``to_dict()`` gives the flat
mapping the service exports as Prometheus counters.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

__all__ = [
    "AsyncSegmentCache",
    "CacheStats",
    "SegmentCache",
    "StatsRecorder",
    "check_items",
    "check_keys",
    "check_ttl",
]

MAX_KEY_LENGTH = 1024


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a cache's counters (monotonic since the cache was opened).

    - ``hits``/``misses``: keys found / not found (a value that failed to decode counts as a miss).
    - ``puts``: values stored; ``bytes_read``/``bytes_written``: value bytes moved.
    - ``errors``: backend calls that failed (Redis down, timeout); the call degraded to a miss.
    - ``evictions``: entries dropped by the embedded stores to stay under their byte bound.
    - ``oversized``: values not stored because they exceed the maximum value size.
    - ``invalid``: values found but rejected as corrupt, truncated or stale (recomputed).
    - ``bypassed``: calls answered without touching the backend while its circuit was open.
    """

    hits: int = 0
    misses: int = 0
    puts: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    errors: int = 0
    evictions: int = 0
    oversized: int = 0
    invalid: int = 0
    bypassed: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def to_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}

    def __add__(self, other: CacheStats) -> CacheStats:
        if not isinstance(other, CacheStats):
            return NotImplemented
        return CacheStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


class StatsRecorder:
    """Thread-safe counters behind :class:`CacheStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys((f.name for f in fields(CacheStats)), 0)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._counts[name] += delta

    def record_get(self, values: Sequence[bytes | None]) -> None:
        hits = [v for v in values if v is not None]
        self.add(hits=len(hits), misses=len(values) - len(hits), bytes_read=sum(len(v) for v in hits))

    def record_invalid(self, count: int) -> None:
        """Turn ``count`` hits into misses: the bytes were there but could not be trusted."""
        if count:
            self.add(hits=-count, misses=count, invalid=count)

    def snapshot(self) -> CacheStats:
        with self._lock:
            return CacheStats(**self._counts)


def check_keys(keys: Sequence[str]) -> list[str]:
    if isinstance(keys, (str, bytes)):
        raise TypeError("keys must be a sequence of str, not a single str/bytes")
    out = list(keys)
    for k in out:
        if not isinstance(k, str):
            raise TypeError(f"cache keys must be str, got {type(k).__name__}")
        if not k or len(k) > MAX_KEY_LENGTH:
            raise ValueError(f"cache keys must be 1..{MAX_KEY_LENGTH} characters, got {len(k)}")
    return out


def check_items(items: Mapping[str, bytes]) -> dict[str, bytes]:
    if not isinstance(items, Mapping):
        raise TypeError(f"items must be a mapping of str to bytes, got {type(items).__name__}")
    check_keys(list(items))
    out: dict[str, bytes] = {}
    for k, v in items.items():
        if not isinstance(v, (bytes, bytearray, memoryview)):
            raise TypeError(f"cache values must be bytes, got {type(v).__name__} for key {k!r}")
        out[k] = bytes(v)
    return out


def check_ttl(ttl: float | None) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
    return float(ttl)


class _CacheBase:
    """State and helpers shared by the sync and async bases."""

    #: values longer than this are not stored (counted as ``oversized``); None = no limit
    max_value_bytes: int | None = None
    #: TTL used when ``put_many`` is called with ``ttl=None``; None = no expiry
    default_ttl: float | None = None

    def __init__(self, *, max_value_bytes: int | None = None, default_ttl: float | None = None) -> None:
        if max_value_bytes is not None and max_value_bytes <= 0:
            raise ValueError(f"max_value_bytes must be positive or None, got {max_value_bytes}")
        self.max_value_bytes = max_value_bytes
        self.default_ttl = check_ttl(default_ttl)
        self._stats = StatsRecorder()

    def _prepare_put(
        self, items: Mapping[str, bytes], ttl: float | None
    ) -> tuple[dict[str, bytes], float | None]:
        checked = check_items(items)
        ttl = check_ttl(ttl)
        if self.max_value_bytes is not None:
            keep = {k: v for k, v in checked.items() if len(v) <= self.max_value_bytes}
            if len(keep) != len(checked):
                self._stats.add(oversized=len(checked) - len(keep))
            checked = keep
        return checked, ttl if ttl is not None else self.default_ttl

    def _record_put(self, items: Mapping[str, bytes]) -> None:
        self._stats.add(puts=len(items), bytes_written=sum(len(v) for v in items.values()))

    def stats(self) -> CacheStats:
        return self._stats.snapshot()

    def record_invalid(self, count: int) -> None:
        """Called by readers (``get_or_compute``) when ``count`` returned values failed to decode."""
        self._stats.record_invalid(count)


class SegmentCache(_CacheBase, ABC):
    """Synchronous segment cache. Backends implement ``_get_many`` and ``_put_many``."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for ``keys`` in order; ``None`` where a key is absent or expired."""
        checked = check_keys(keys)
        if not checked:
            return []
        values = self._get_many(checked)
        self._stats.record_get(values)
        return values

    def put_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store ``items``; ``ttl`` in seconds (None: the cache's ``default_ttl``)."""
        checked, ttl = self._prepare_put(items, ttl)
        if checked:
            self._put_many(checked, ttl)
            self._record_put(checked)

    def close(self) -> None:
        """Release connections/files. Idempotent."""

    def __enter__(self) -> SegmentCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def _get_many(self, keys: list[str]) -> list[bytes | None]: ...

    @abstractmethod
    def _put_many(self, items: dict[str, bytes], ttl: float | None) -> None: ...


class AsyncSegmentCache(_CacheBase, ABC):
    """asyncio twin of :class:`SegmentCache`. Backends implement ``_aget_many`` and ``_aput_many``."""

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        checked = check_keys(keys)
        if not checked:
            return []
        values = await self._aget_many(checked)
        self._stats.record_get(values)
        return values

    async def aput_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        checked, ttl = self._prepare_put(items, ttl)
        if checked:
            await self._aput_many(checked, ttl)
            self._record_put(checked)

    async def astats(self) -> CacheStats:
        return self.stats()

    async def aclose(self) -> None:
        """Release connections. Idempotent."""

    async def __aenter__(self) -> AsyncSegmentCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @abstractmethod
    async def _aget_many(self, keys: list[str]) -> list[bytes | None]: ...

    @abstractmethod
    async def _aput_many(self, items: dict[str, bytes], ttl: float | None) -> None: ...

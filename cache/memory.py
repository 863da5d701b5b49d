"""Embedded in-process cache: an LRU bounded by bytes, thread-safe, optional TTL.

The default cache when no Redis is configured: nothing to run, nothing to configure. One
``OrderedDict`` guarded by one lock; a hit moves the key to the end, a put evicts from the front
until the byte budget holds. An entry costs ``len(key) + len(value) + ENTRY_OVERHEAD`` bytes of
budget (the overhead is an estimate of the dict/tuple bookkeeping, so small values are not free).
Expired entries are dropped when read, and evicted like any other when space is needed.

:class:`NullCache` stores nothing (``open_cache("none://")``): for turning the cache off
without an ``if`` at every call site.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from .interface import SegmentCache

__all__ = ["DEFAULT_MAX_BYTES", "ENTRY_OVERHEAD", "MemoryCache", "NullCache"]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
ENTRY_OVERHEAD = 96


class MemoryCache(SegmentCache):
    """In-process LRU cache bounded by ``max_bytes``.

    ``default_ttl`` (seconds) applies to puts without a TTL; None keeps entries until evicted.
    ``max_value_bytes`` defaults to a quarter of ``max_bytes`` so one value cannot flush the cache.
    ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        default_ttl: float | None = None,
        max_value_bytes: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(max_bytes, int) or max_bytes <= ENTRY_OVERHEAD:
            raise ValueError(f"max_bytes must be an int > {ENTRY_OVERHEAD}, got {max_bytes!r}")
        if max_value_bytes is None:
            max_value_bytes = max(1, max_bytes // 4)
        if max_value_bytes > max_bytes - ENTRY_OVERHEAD:
            raise ValueError("max_value_bytes cannot exceed max_bytes")
        super().__init__(max_value_bytes=max_value_bytes, default_ttl=default_ttl)
        self.max_bytes = max_bytes
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._size = 0

    @staticmethod
    def _cost(key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD

    @property
    def current_bytes(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: str) -> None:
        value, _ = self._entries.pop(key)
        self._size -= self._cost(key, value)

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        now = self._clock()
        out: list[bytes | None] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is None:
                    out.append(None)
                elif entry[1] is not None and entry[1] <= now:
                    self._drop(key)
                    out.append(None)
                else:
                    self._entries.move_to_end(key)
                    out.append(entry[0])
        return out

    def _put_many(self, items: dict[str, bytes], ttl: float | None) -> None:
        expires = self._clock() + ttl if ttl is not None else None
        evicted = 0
        with self._lock:
            for key, value in items.items():
                if key in self._entries:
                    self._drop(key)
                self._entries[key] = (value, expires)
                self._size += self._cost(key, value)
            while self._size > self.max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)
                evicted += 1
        if evicted:
            self._stats.add(evictions=evicted)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def close(self) -> None:
        self.clear()


class NullCache(SegmentCache):
    """Always misses, stores nothing."""

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        return [None] * len(keys)

    def put_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        self._prepare_put(items, ttl)  # validate only: a bad call fails here as it would elsewhere

    def _put_many(self, items: dict[str, bytes], ttl: float | None) -> None:
        return None

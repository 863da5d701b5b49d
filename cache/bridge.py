"""Use a sync cache (memory, disk) where the asyncio service expects an :class:`AsyncSegmentCache`.

The in-memory LRU answers in microseconds, so it is called inline; a blocking store (the sqlite
:class:`~promptpress.cache.disk.DiskCache`) is called through ``asyncio.to_thread`` so it never
stalls the event loop. Counters stay in the wrapped cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from .interface import AsyncSegmentCache, CacheStats, SegmentCache

__all__ = ["AsyncCacheAdapter"]


class AsyncCacheAdapter(AsyncSegmentCache):
    """Async face of a sync cache; ``offload=True`` runs each call in a worker thread."""

    def __init__(self, inner: SegmentCache, *, offload: bool = False) -> None:
        super().__init__(max_value_bytes=inner.max_value_bytes, default_ttl=inner.default_ttl)
        self.inner = inner
        self.offload = offload

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if self.offload:
            return await asyncio.to_thread(self.inner.get_many, keys)
        return self.inner.get_many(keys)

    async def aput_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        if self.offload:
            await asyncio.to_thread(self.inner.put_many, items, ttl)
        else:
            self.inner.put_many(items, ttl)

    async def _aget_many(self, keys: list[str]) -> list[bytes | None]:  # pragma: no cover - overridden
        return await self.aget_many(keys)

    async def _aput_many(self, items: dict[str, bytes], ttl: float | None) -> None:  # pragma: no cover
        await self.aput_many(items, ttl)

    def stats(self) -> CacheStats:
        return self.inner.stats()

    def record_invalid(self, count: int) -> None:
        self.inner.record_invalid(count)

    async def aclose(self) -> None:
        if self.offload:
            await asyncio.to_thread(self.inner.close)
        else:
            self.inner.close()

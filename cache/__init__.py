"""Segment cache: one small interface, several backends (embedded LRU, sqlite, Redis, Redis Cluster).

Compressed segments are cached so repeated RAG chunks are compressed once. Typical use::

    from promptpress.cache import ArrayCodec, KeySpace, get_or_compute, open_cache

    cache = open_cache("redis://localhost:6379/0")          # or None: in-process LRU
    space = KeySpace("acme", model="minilm-3f2a", compressor="tc-1", params="w512")
    keys = space.keys(segments)
    values = get_or_compute(cache, keys, lambda idx: [{"keep": probs(segments[i])} for i in idx],
                            codec=ArrayCodec(required=("keep",)))

Modules: ``interface`` (SegmentCache, AsyncSegmentCache, CacheStats), ``codec`` (numpy envelope),
``keys`` (key layout), ``memory`` / ``disk`` / ``redis_backend`` (backends), ``resilience``
(fail-open circuit breaker), ``flight`` (get_or_compute + single flight), ``bridge`` (sync cache
behind the async interface), ``factory`` (open_cache from a spec string).
"""

from .bridge import AsyncCacheAdapter
from .codec import (
    ArrayCodec,
    BytesCodec,
    CacheValueError,
    CorruptValueError,
    StaleValueError,
    ValueCodec,
    decode_arrays,
    encode_arrays,
)
from .disk import DiskCache
from .factory import open_async_cache, open_cache, parse_size
from .flight import AsyncSingleFlight, SingleFlight, aget_or_compute, get_or_compute
from .interface import AsyncSegmentCache, CacheStats, SegmentCache
from .keys import KeySpace, fingerprint, segment_digest, segment_key
from .memory import MemoryCache, NullCache
from .resilience import AsyncResilientCache, CircuitBreaker, ResilientCache
from .signed import AsyncSignedCache, SignedCache

# The Redis backends need the optional ``redis`` package (extra ``promptpress[redis]``): imported on
# first use so the embedded default works without it.
_LAZY = {"RedisCache", "AsyncRedisCache"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from . import redis_backend

        return getattr(redis_backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ArrayCodec",
    "AsyncCacheAdapter",
    "AsyncRedisCache",
    "AsyncResilientCache",
    "AsyncSegmentCache",
    "AsyncSignedCache",
    "AsyncSingleFlight",
    "BytesCodec",
    "CacheStats",
    "CacheValueError",
    "CircuitBreaker",
    "CorruptValueError",
    "DiskCache",
    "KeySpace",
    "MemoryCache",
    "NullCache",
    "RedisCache",
    "ResilientCache",
    "SegmentCache",
    "SignedCache",
    "SingleFlight",
    "StaleValueError",
    "ValueCodec",
    "aget_or_compute",
    "decode_arrays",
    "encode_arrays",
    "fingerprint",
    "get_or_compute",
    "open_async_cache",
    "open_cache",
    "parse_size",
    "segment_digest",
    "segment_key",
]

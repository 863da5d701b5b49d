"""Redis backends (redis-py): :class:`RedisCache` (sync) and :class:`AsyncRedisCache` (asyncio).

Standalone and Cluster
----------------------
``from_url`` checks the URL at once and builds the client on first use (the sync cluster client
connects in its constructor; a cache must open while the cluster is down). The client gets its own
connection pool (a blocking one for standalone Redis: bursts wait for a free connection), short
socket timeouts and at most one immediate reconnect retry (redis-py's default of 10 retries with
backoff would turn an outage into multi-second stalls; :mod:`promptpress.cache.resilience` handles
outages instead). A URL scheme ``redis+cluster://`` / ``rediss+cluster://`` (or ``?cluster=true``)
selects ``redis.cluster.RedisCluster`` / ``redis.asyncio.cluster.RedisCluster``.

Reads: standalone sends ``MGET`` in chunks of ``chunk_size`` keys, all chunks in one pipeline (one
round trip). In a cluster a multi-key ``MGET`` fails with CROSSSLOT unless every key hashes to one
slot, and the segment keys are deliberately *not* hash-tagged (see :mod:`promptpress.cache.keys`:
every value is self-contained, so nothing needs to be co-located, and tagging would pile a whole
namespace onto one master). So the cluster path uses the client's ``mget_nonatomic``, which groups
keys by slot and pipelines one ``MGET`` per slot to the owning node. Non-atomic is fine here: each
key is an independent cache entry, there is no multi-key invariant to protect.

Writes: ``SET key value PX ttl_ms`` per item in one non-transactional pipeline (a cluster pipeline
routes each command to its node). Values above ``max_value_bytes`` are not sent (counted as
``oversized``): one huge value must not evict hundreds of useful ones or block the server.

Errors (connection refused, timeouts, cluster down) propagate from these classes; wrap them in
:class:`~promptpress.cache.resilience.ResilientCache` (``open_cache`` does) to fail open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from .interface import AsyncSegmentCache, SegmentCache

__all__ = ["DEFAULT_MAX_VALUE_BYTES", "DEFAULT_REDIS_TTL", "AsyncRedisCache", "RedisCache", "parse_redis_url"]

DEFAULT_REDIS_TTL = 7 * 24 * 3600.0
DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
DEFAULT_SOCKET_TIMEOUT = 0.5
DEFAULT_CHUNK = 512

_C = TypeVar("_C", bound="_RedisCommon")


def parse_redis_url(url: str) -> tuple[str, bool]:
    """Return (url redis-py understands, is_cluster). Accepts ``redis+cluster://`` and ``?cluster=``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    cluster = False
    if scheme.endswith("+cluster"):
        scheme, cluster = scheme[: -len("+cluster")], True
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"not a Redis URL: {url!r} (use redis://, rediss:// or redis+cluster://)")
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "cluster":
            cluster = value.lower() in ("1", "true", "yes", "on")
        elif name == "decode_responses":
            raise ValueError("the segment cache stores binary values: decode_responses is not supported")
        else:
            query.append((name, value))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment)), cluster


def _make_client(
    url: str,
    *,
    use_asyncio: bool,
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    socket_connect_timeout: float | None = None,
    max_connections: int = 64,
) -> Any:
    """A redis-py client (sync or asyncio, standalone or cluster) with its own connection pool.

    Standalone clients get a *blocking* pool: when all ``max_connections`` are busy (many threads
    or coroutines at once) a call waits up to ``socket_timeout`` for a free connection instead of
    failing with "Too many connections", which would look like an outage and open the breaker.
    """
    plain, cluster = parse_redis_url(url)
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout
        if socket_connect_timeout is not None
        else socket_timeout,
        "retry": (AsyncRetry if use_asyncio else Retry)(NoBackoff(), 1, (RedisConnectionError,)),
        "decode_responses": False,
    }
    if cluster:
        cluster_cls = redis.asyncio.cluster.RedisCluster if use_asyncio else redis.cluster.RedisCluster
        return cluster_cls.from_url(plain, **options)
    pool_cls: Any = redis.asyncio.BlockingConnectionPool if use_asyncio else redis.BlockingConnectionPool
    client_cls: Any = redis.asyncio.Redis if use_asyncio else redis.Redis
    return client_cls.from_pool(pool_cls.from_url(plain, timeout=socket_timeout, **options))


def _chunks(keys: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(keys), size):
        yield keys[i : i + size]


def _check_values(values: list[Any]) -> list[bytes | None]:
    for v in values:
        if v is not None and not isinstance(v, bytes):
            raise TypeError("Redis returned str values: the client must not use decode_responses=True")
    return values


class _RedisCommon:
    """Client ownership and command planning shared by the sync and async caches."""

    _CLUSTER_TYPES = (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster)
    _USE_ASYNCIO = False

    def __init__(
        self,
        client: Any = None,
        *,
        connect: Callable[[], Any] | None = None,
        cluster: bool = False,
        default_ttl: float | None = DEFAULT_REDIS_TTL,
        max_value_bytes: int | None = DEFAULT_MAX_VALUE_BYTES,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        """Wrap ``client``, or build one with ``connect()`` on first use (``cluster`` says which kind).

        Lazy building matters for Redis Cluster: the sync cluster client connects in its
        constructor, and a cache must open (and fail open) while the cluster is down.
        """
        super().__init__(max_value_bytes=max_value_bytes, default_ttl=default_ttl)  # type: ignore[call-arg]
        if (client is None) == (connect is None):
            raise ValueError("pass either a redis-py client or a connect() factory")
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self._client = client
        self._connect = connect
        self._connect_lock = threading.Lock()
        self.is_cluster = isinstance(client, self._CLUSTER_TYPES) if client is not None else cluster
        self.chunk_size = chunk_size

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._connect_lock:
                if self._client is None and self._connect is not None:
                    self._client = self._connect()
        return self._client

    @classmethod
    def from_url(
        cls: type[_C],
        url: str,
        *,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        socket_connect_timeout: float | None = None,
        max_connections: int = 64,
        **cache_options: Any,
    ) -> _C:
        """Build the client from ``url`` (see :func:`parse_redis_url`) on first use.

        ``cache_options`` go to ``__init__``. The URL is checked now (bad URLs fail here).
        """
        _, cluster = parse_redis_url(url)

        def connect() -> Any:
            return _make_client(
                url,
                use_asyncio=cls._USE_ASYNCIO,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_connect_timeout,
                max_connections=max_connections,
            )

        return cls(connect=connect, cluster=cluster, **cache_options)

    def _mget_pipeline(self, keys: list[str]) -> Any:
        """Standalone: one pipeline holding an MGET per chunk of keys."""
        pipe = self.client.pipeline(transaction=False)
        for chunk in _chunks(keys, self.chunk_size):
            pipe.mget(chunk)
        return pipe

    def _set_pipeline(self, items: dict[str, bytes], ttl: float | None) -> Any:
        """``SET key value PX ttl_ms`` per item in one non-transactional pipeline."""
        pipe = self.client.pipeline(transaction=False)
        px = max(1, round(ttl * 1000)) if ttl is not None else None
        for key, value in items.items():
            pipe.set(key, value, px=px)
        return pipe


class RedisCache(_RedisCommon, SegmentCache):
    """Sync Redis / Redis Cluster cache around a redis-py client (it owns and closes the client)."""

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        if self.is_cluster:  # per-slot MGETs, pipelined to the owning nodes
            return _check_values(
                [v for c in _chunks(keys, self.chunk_size) for v in self.client.mget_nonatomic(c)]
            )
        return _check_values([v for part in self._mget_pipeline(keys).execute() for v in part])

    def _put_many(self, items: dict[str, bytes], ttl: float | None) -> None:
        self._set_pipeline(items, ttl).execute()

    def ping(self) -> bool:
        return bool(self.client.ping())

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class AsyncRedisCache(_RedisCommon, AsyncSegmentCache):
    """asyncio Redis / Redis Cluster cache around a ``redis.asyncio`` client."""

    _USE_ASYNCIO = True

    async def _aget_many(self, keys: list[str]) -> list[bytes | None]:
        if self.is_cluster:
            out: list[Any] = []
            for chunk in _chunks(keys, self.chunk_size):
                out += await self.client.mget_nonatomic(chunk)
            return _check_values(out)
        return _check_values([v for part in await self._mget_pipeline(keys).execute() for v in part])

    async def _aput_many(self, items: dict[str, bytes], ttl: float | None) -> None:
        await self._set_pipeline(items, ttl).execute()

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

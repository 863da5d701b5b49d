"""Open a cache from one string (CLI flag, env var, settings field).

=====================================================  ==============================================
spec                                                   cache
=====================================================  ==============================================
``None``, ``""``, ``memory://``                        in-process LRU, 256 MiB (the default)
``memory://?max_bytes=64MiB&ttl=3600``                 same, sized / with a default TTL
``disk:///var/cache/pp.sqlite?max_bytes=2GiB``         sqlite file, persistent, bounded
``redis://host:6379/0?ttl=86400&max_value_bytes=1MiB``  Redis, fail-open
``rediss://...``, ``unix:///run/redis.sock``           Redis over TLS / a unix socket, fail-open
``redis+cluster://host:7000`` (or ``?cluster=true``)   Redis Cluster, fail-open
``none://``                                            no caching
=====================================================  ==============================================

Any spec takes ``secret=...`` (or ``open_cache(spec, secret=...)``): keys and values authenticated
with it (:mod:`promptpress.cache.signed`), so tenants sharing a store cannot read or poison each
other's entries.

Options understood in the query string: ``max_bytes`` (memory, disk), ``ttl`` (seconds, default TTL
of puts), ``max_value_bytes``; for Redis also ``socket_timeout``, ``socket_connect_timeout``,
``max_connections``, ``retry_interval`` (circuit breaker, seconds), ``fail_open`` (default true)
and, async only, ``timeout`` (seconds per call). Sizes accept ``K``/``M``/``G`` with optional
``B``/``iB`` (all powers of 1024). Other Redis query options go to redis-py's ``from_url``.

Redis and disk caches come wrapped in :class:`~promptpress.cache.resilience.ResilientCache`, so a
store outage makes calls miss instead of fail.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .bridge import AsyncCacheAdapter
from .disk import DiskCache
from .interface import AsyncSegmentCache, SegmentCache
from .memory import MemoryCache, NullCache
from .resilience import AsyncResilientCache, ResilientCache
from .signed import AsyncSignedCache, SignedCache

__all__ = ["open_async_cache", "open_cache", "parse_size"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def parse_size(text: str | int) -> int:
    """``"64MiB"`` -> 67108864. Plain integers are bytes."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 1048576, 512K, 64MiB, 2G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


_OPTION_TYPES: dict[str, Any] = {
    "max_bytes": parse_size,
    "max_value_bytes": parse_size,
    "ttl": float,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "max_connections": int,
    "retry_interval": float,
    "fail_open": _bool,
    "timeout": float,
    "secret": str,
}


def is_redis_spec(spec: str) -> bool:
    """True when `spec` names a Redis or Redis Cluster cache (which needs the 'redis' extra)."""
    return urlsplit(spec.strip()).scheme.lower() in _REDIS_SCHEMES


def _split(spec: str) -> tuple[str, Any, dict[str, Any], list[tuple[str, str]]]:
    if not isinstance(spec, str):
        raise TypeError(f"cache spec must be a str or None, got {type(spec).__name__}")
    if spec.strip().lower() in ("memory", "none", "off"):
        spec = spec.strip().lower() + "://"
    parts = urlsplit(spec)
    scheme = parts.scheme.lower()
    ours: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OPTION_TYPES:
            try:
                ours[name] = _OPTION_TYPES[name](value)
            except ValueError as exc:
                raise ValueError(f"cache spec {spec!r}: bad {name}: {exc}") from exc
        else:
            rest.append((name, value))
    return scheme, parts, ours, rest


def _reject(spec: str, opts: dict[str, Any], rest: list[tuple[str, str]], allowed: set[str]) -> None:
    bad = sorted(set(opts) - allowed) + [name for name, _ in rest]
    if bad:
        raise ValueError(f"cache spec {spec!r}: unknown option(s) {bad}; allowed: {sorted(allowed)}")


def _embedded(
    spec: str, scheme: str, parts: Any, opts: dict[str, Any], rest: list[tuple[str, str]]
) -> SegmentCache:
    common: dict[str, Any] = {"default_ttl": opts.get("ttl"), "max_value_bytes": opts.get("max_value_bytes")}
    if scheme in ("", "memory"):
        if scheme == "" and spec.strip():
            raise ValueError(
                f"unknown cache spec {spec!r}; expected memory://, disk:///path, redis://... or none://"
            )
        _reject(spec, opts, rest, {"max_bytes", "ttl", "max_value_bytes"})
        if "max_bytes" in opts:
            common["max_bytes"] = opts["max_bytes"]
        return MemoryCache(**common)
    if scheme == "disk":
        _reject(spec, opts, rest, {"max_bytes", "ttl", "max_value_bytes", "retry_interval"})
        path = parts.netloc + parts.path
        if not path:
            raise ValueError(f"cache spec {spec!r}: disk:// needs a path, e.g. disk:///var/cache/pp.sqlite")
        if "max_bytes" in opts:
            common["max_bytes"] = opts["max_bytes"]
        disk = DiskCache(path, **common)
        return ResilientCache(disk, name=f"disk:{disk.path}", retry_interval=opts.get("retry_interval", 5.0))
    if scheme in ("none", "off"):
        _reject(spec, opts, rest, set())
        return NullCache()
    raise ValueError(
        f"unknown cache scheme {scheme!r} in {spec!r}; expected memory, disk, redis, rediss, unix, redis+cluster, none"
    )


def _redis_parts(
    spec: str, parts: Any, opts: dict[str, Any], rest: list[tuple[str, str]], allow_timeout: bool
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    allowed = set(_OPTION_TYPES) - {"max_bytes"} - (set() if allow_timeout else {"timeout"})
    _reject(spec, opts, [], allowed)
    url = str(urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)))
    client: dict[str, Any] = {
        k: opts[k] for k in ("socket_timeout", "socket_connect_timeout", "max_connections") if k in opts
    }
    cache: dict[str, Any] = {"default_ttl": opts["ttl"]} if "ttl" in opts else {}
    if "max_value_bytes" in opts:
        cache["max_value_bytes"] = opts["max_value_bytes"]
    return url, client, cache


def _redis_backend() -> Any:
    """The Redis module, imported on demand: ``redis`` is an optional dependency."""
    try:
        from . import redis_backend
    except ImportError as exc:
        raise ImportError(
            f"the Redis cache needs the 'redis' extra ({exc.name or 'redis'} is not installed): "
            "pip install -e '.[redis]' in a clone, or pip install 'promptpress[redis]'"
        ) from exc
    return redis_backend


def _display(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}{parts.path}"


def open_cache(spec: str | None = None, *, secret: str | bytes | None = None) -> SegmentCache:
    """Open a sync cache from a spec string (see the module docstring). ``None``: in-memory LRU.
    With a `secret` (or a ``secret`` option), a `SignedCache` over it."""
    cache = _open_cache(spec)
    secret = secret or _secret(spec)
    return SignedCache(cache, secret) if secret else cache


def open_async_cache(spec: str | None = None, *, secret: str | bytes | None = None) -> AsyncSegmentCache:
    """Open an asyncio cache: native redis.asyncio for Redis, an adapter over memory/disk otherwise.
    With a `secret` (or a ``secret`` option), an `AsyncSignedCache` over it."""
    cache = _open_async_cache(spec)
    secret = secret or _secret(spec)
    return AsyncSignedCache(cache, secret) if secret else cache


def _secret(spec: str | None) -> str | None:
    return None if spec is None else _split(spec)[2].pop("secret", None)


def _open_cache(spec: str | None) -> SegmentCache:
    if spec is None:
        return MemoryCache()
    scheme, parts, opts, rest = _split(spec)
    opts.pop("secret", None)
    if scheme not in _REDIS_SCHEMES:
        return _embedded(spec, scheme, parts, opts, rest)
    url, client, cache = _redis_parts(spec, parts, opts, rest, allow_timeout=False)
    backend = _redis_backend().RedisCache.from_url(url, **client, **cache)
    if not opts.get("fail_open", True):
        return backend
    return ResilientCache(backend, name=_display(url), retry_interval=opts.get("retry_interval", 5.0))


def _open_async_cache(spec: str | None) -> AsyncSegmentCache:
    if spec is None:
        return AsyncCacheAdapter(MemoryCache())
    scheme, parts, opts, rest = _split(spec)
    opts.pop("secret", None)
    if scheme not in _REDIS_SCHEMES:
        inner = _embedded(spec, scheme, parts, opts, rest)
        return AsyncCacheAdapter(inner, offload=scheme == "disk")
    url, client, cache = _redis_parts(spec, parts, opts, rest, allow_timeout=True)
    backend = _redis_backend().AsyncRedisCache.from_url(url, **client, **cache)
    if not opts.get("fail_open", True):
        return backend
    return AsyncResilientCache(
        backend,
        name=_display(url),
        retry_interval=opts.get("retry_interval", 5.0),
        timeout=opts.get("timeout"),
    )

"""Authenticated cache entries: tenants sharing a store cannot read or poison each other's values.

A plain cache trusts any well-formed value (the codec's checksum is unkeyed): whoever can write to
the Redis decides which words every tenant's prompts keep, and whoever knows a text can compute its
key and see whether someone cached it. :class:`SignedCache` (and :class:`AsyncSignedCache`) wrap a
cache with a secret:

- a key's digest (its last component) becomes ``HMAC(namespace key, key)``, where the namespace key
  is ``HMAC(secret, namespace)`` (the namespace is the key's third component, ``pp:v1:<namespace>:``):
  without the secret a key cannot be computed from a text, and two namespaces never share one;
- a value is stored as ``b"PPS1" + HMAC-SHA256(namespace key, stored key + value) + value``; one whose
  tag does not verify (forged, written unsigned, moved from another key) is a miss, counted as
  ``invalid``, and the recomputed value overwrites it.

The key's other components stay as they are (``SCAN MATCH pp:v1:<tenant>:*`` still works). Unsigned
caches keep their keys and values unchanged; a signed and an unsigned service sharing a store never
read each other's entries. ``open_cache("redis://...?secret=...")`` or ``open_cache(url,
secret=...)`` returns a signed cache.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from .interface import AsyncSegmentCache, CacheStats, SegmentCache, check_keys

__all__ = ["AsyncSignedCache", "SignedCache"]

MAGIC = b"PPS1"
_TAG = 32


class _Signer:
    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(raw) < 16:
            raise ValueError("the cache secret must be at least 16 bytes long")
        self._secret = raw
        self._namespaces: dict[str, bytes] = {}

    def _namespace_key(self, key: str) -> bytes:
        parts = key.split(":", 3)
        namespace = parts[2] if len(parts) == 4 and parts[0] == "pp" else ""
        derived = self._namespaces.get(namespace)
        if derived is None:
            message = b"promptpress cache namespace\0" + namespace.encode()
            derived = hmac.new(self._secret, message, hashlib.sha256).digest()
            if len(self._namespaces) < 1024:
                self._namespaces[namespace] = derived
        return derived

    def key(self, key: str) -> str:
        """The stored key: `key` with its digest (last component) derived with the namespace key."""
        digest = hmac.new(self._namespace_key(key), b"key\0" + key.encode(), hashlib.sha256)
        prefix, colon, _ = key.rpartition(":")
        return prefix + colon + digest.hexdigest()[:32]

    def _tag(self, stored_key: str, value: bytes) -> bytes:
        mac = hmac.new(
            self._namespace_key(stored_key), b"value\0" + stored_key.encode() + b"\0", hashlib.sha256
        )
        mac.update(value)
        return mac.digest()

    def seal(self, stored_key: str, value: bytes) -> bytes:
        return MAGIC + self._tag(stored_key, value) + value

    def open(self, stored_key: str, data: bytes | None) -> tuple[bytes | None, bool]:
        """(the value, or None; whether a present value was rejected)."""
        if data is None:
            return None, False
        data = bytes(data)
        head = len(MAGIC) + _TAG
        if len(data) < head or not data.startswith(MAGIC):
            return None, True
        value = data[head:]
        if not hmac.compare_digest(data[len(MAGIC) : head], self._tag(stored_key, value)):
            return None, True
        return value, False

    def open_all(self, stored: list[str], raw: list[bytes | None]) -> tuple[list[bytes | None], int]:
        out: list[bytes | None] = []
        rejected = 0
        for key, data in zip(stored, raw, strict=True):
            value, bad = self.open(key, data)
            out.append(value)
            rejected += bad
        return out, rejected

    def seal_all(self, items: Mapping[str, bytes]) -> dict[str, bytes]:
        out = {}
        for key, value in items.items():
            stored = self.key(key)
            out[stored] = self.seal(stored, value)
        return out


class SignedCache(SegmentCache):
    """A sync cache whose keys and values are authenticated with `secret` (see the module doc)."""

    def __init__(self, inner: SegmentCache, secret: str | bytes) -> None:
        SegmentCache.__init__(self, max_value_bytes=inner.max_value_bytes, default_ttl=inner.default_ttl)
        self.inner = inner
        self._signer = _Signer(secret)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        stored = [self._signer.key(k) for k in check_keys(keys)]
        values, rejected = self._signer.open_all(stored, self.inner.get_many(stored) if stored else [])
        if rejected:
            self.inner.record_invalid(rejected)
        return values

    def put_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        self.inner.put_many(self._signer.seal_all(items), ttl)

    _get_many = get_many  # the template hooks are never reached
    _put_many = put_many

    def stats(self) -> CacheStats:
        return self.inner.stats()

    def record_invalid(self, count: int) -> None:
        self.inner.record_invalid(count)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> object:  # `breaker`... of the wrapped cache
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


class AsyncSignedCache(AsyncSegmentCache):
    """asyncio twin of :class:`SignedCache`."""

    def __init__(self, inner: AsyncSegmentCache, secret: str | bytes) -> None:
        AsyncSegmentCache.__init__(self, max_value_bytes=inner.max_value_bytes, default_ttl=inner.default_ttl)
        self.inner = inner
        self._signer = _Signer(secret)

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        stored = [self._signer.key(k) for k in check_keys(keys)]
        values, rejected = self._signer.open_all(stored, await self.inner.aget_many(stored) if stored else [])
        if rejected:
            self.inner.record_invalid(rejected)
        return values

    async def aput_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        await self.inner.aput_many(self._signer.seal_all(items), ttl)

    _aget_many = aget_many
    _aput_many = aput_many

    def stats(self) -> CacheStats:
        return self.inner.stats()

    def record_invalid(self, count: int) -> None:
        self.inner.record_invalid(count)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str) -> object:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

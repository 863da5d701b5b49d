"""Cache keys: namespaced, versioned, short, and safe for Redis Cluster.

Layout::

    pp:v1:<namespace>:<model>:<compressor>:<params>:<digest>

- ``pp:v1`` — key layout version; bump ``KEY_VERSION`` and every old key is simply never read
  again (it ages out by TTL or LRU).
- ``namespace`` — tenant / application; first so ops can ``SCAN MATCH pp:v1:<tenant>:*``.
- ``model`` — fingerprint of the model whose output is cached (weights hash, revision).
- ``compressor`` — version of the code that turns model output into the cached value.
- ``params`` — fingerprint of every other input the value depends on (window size, dtype...);
  not the rate/target when the cached value is rate-independent (keep probabilities are).
- ``digest`` — blake2b-128 of the exact UTF-8 segment text, 32 hex chars. Segmenting must be
  stable (the compressor's job) so the same text hits whatever prompt it appears in.

Components are restricted to ``[A-Za-z0-9._-]`` (at most 64 chars; long things go through
:func:`fingerprint`). In particular no ``{``/``}``: a Redis Cluster hash tag would pin all keys
sharing it to one slot. Segment keys are deliberately *not* hash-tagged: every value is
self-contained (one key per segment, no multi-key invariants), so nothing has to live together,
and spreading segments over all slots spreads memory and load over all masters. Multi-key reads
across slots are done per slot by the Redis backend (see :mod:`promptpress.cache.redis_backend`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["KEY_PREFIX", "KEY_VERSION", "KeySpace", "fingerprint", "segment_digest", "segment_key"]

KEY_PREFIX = "pp"
KEY_VERSION = "v1"
_COMPONENT = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _component(name: str, value: str) -> str:
    if not isinstance(value, str) or not _COMPONENT.fullmatch(value):
        raise ValueError(
            f"cache key {name} must be 1-64 characters of [A-Za-z0-9._-], got {value!r} "
            "(hash long or free-form values with promptpress.cache.keys.fingerprint)"
        )
    return value


def fingerprint(obj: Any, size: int = 8) -> str:
    """Short stable hex fingerprint of a JSON-serialisable object (dict keys sorted) or of bytes."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        raw = bytes(obj)
    else:
        try:
            raw = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        except TypeError as exc:
            raise TypeError(f"fingerprint needs JSON-serialisable data or bytes: {exc}") from exc
    return hashlib.blake2b(raw, digest_size=size).hexdigest()


def segment_digest(segment_text: str) -> str:
    """blake2b-128 hex digest of the exact segment text."""
    if not isinstance(segment_text, str):
        raise TypeError(f"segment text must be str, got {type(segment_text).__name__}")
    return hashlib.blake2b(segment_text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class KeySpace:
    """Everything a cached value depends on except the segment text; builds its keys."""

    namespace: str
    model: str
    compressor: str
    params: str = "default"

    def __post_init__(self) -> None:
        for name in ("namespace", "model", "compressor", "params"):
            _component(name, getattr(self, name))

    @property
    def prefix(self) -> str:
        return f"{KEY_PREFIX}:{KEY_VERSION}:{self.namespace}:{self.model}:{self.compressor}:{self.params}:"

    def key(self, segment_text: str) -> str:
        return self.prefix + segment_digest(segment_text)

    def keys(self, segments: Sequence[str]) -> list[str]:
        prefix = self.prefix
        return [prefix + segment_digest(s) for s in segments]


def segment_key(
    namespace: str,
    model_fingerprint: str,
    compressor_version: str,
    params_fingerprint: str,
    segment_text: str,
) -> str:
    """One key; see :class:`KeySpace` for building many with the same parameters."""
    return KeySpace(namespace, model_fingerprint, compressor_version, params_fingerprint).key(segment_text)

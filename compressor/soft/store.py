"""Per-segment storage of concept embeddings (fp16) in the segment cache.

The soft compressor talks to any object with ``get_many(keys) -> list[bytes | None]`` and
``put_many({key: bytes})`` — the interface of `promptpress.cache` backends (memory, Redis).
Keys hold the encoder's fingerprint (config + weights) and the segment's token ids, so different
weights or decoders never share entries. Values are ``.npy`` bytes of a float16 array (no pickle).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import torch


class SegmentCacheLike(Protocol):
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def put_many(self, items: Mapping[str, bytes]) -> None: ...


def segment_key(fingerprint: str, token_ids: Sequence[int]) -> str:
    digest = hashlib.sha256(np.asarray(token_ids, dtype=np.int64).tobytes()).hexdigest()[:32]
    return f"soft:{fingerprint}:{digest}"


def encode_embeddings(tensor: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    np.save(buf, tensor.detach().to(torch.float16).cpu().numpy(), allow_pickle=False)
    return buf.getvalue()


def decode_embeddings(data: bytes, hidden_size: int) -> torch.Tensor:
    """Inverse of `encode_embeddings`; raises ValueError on bytes that are not such an array."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"cached concept embeddings are corrupt: {exc}") from exc
    if arr.ndim != 2 or arr.shape[1] != hidden_size or arr.dtype != np.float16:
        raise ValueError(
            f"cached concept embeddings have shape {arr.shape} {arr.dtype}, expected (n, {hidden_size}) float16"
        )
    return torch.from_numpy(arr.copy())


class DictCache:
    """A process-local cache with the same interface (for scripts and tests without a backend)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self.data.get(k) for k in keys]

    def put_many(self, items: Mapping[str, bytes]) -> None:
        self.data.update(items)

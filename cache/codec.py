"""Self-describing binary envelope for cached numpy arrays.

A cached value is one or more *named* numpy arrays, e.g. a token-classifier segment's
``{"offsets": int32[n], "keep": float16[n]}`` or a soft segment's ``{"concepts": float16[k, d]}``.
Values cross process and machine boundaries (Redis, a sqlite file), so they are never pickled and
never trusted: every field is bounds-checked and the body carries a checksum.

Layout (little-endian)::

    header (20 bytes)
      magic     4s   b"PPAR"
      version   u8   FORMAT_VERSION (another version is *stale*, not corrupt)
      n_arrays  u8
      reserved  u16  0
      body_len  u32  bytes after the header
      checksum  8s   blake2b(body, digest_size=8)
    body, per array
      name_len u8, name (utf-8), dtype_len u8, dtype str (numpy ``dtype.str``, e.g. "<f2"),
      ndim u8, shape (ndim x u32), payload (prod(shape) * itemsize bytes, C order)

Only plain numeric/bool dtypes are allowed. ``decode_arrays`` returns read-only arrays that view
the value bytes (no copy). Any malformed input raises a :class:`CacheValueError` subclass:
:class:`CorruptValueError` (bad magic, truncated, checksum, bad field) or :class:`StaleValueError`
(written by another format version). Readers treat both as a cache miss and recompute
(:func:`promptpress.cache.flight.get_or_compute` does it and counts them as ``invalid``).

:class:`BytesCodec` and :class:`ArrayCodec` adapt values to ``get_or_compute``: they turn what a
compressor computes into bytes and back.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping
from typing import Protocol, TypeVar

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "ArrayCodec",
    "BytesCodec",
    "CacheValueError",
    "CorruptValueError",
    "StaleValueError",
    "ValueCodec",
    "decode_arrays",
    "encode_arrays",
]

MAGIC = b"PPAR"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sBBHI8s")
_MAX_ARRAYS = 255
_MAX_NDIM = 8
_ALLOWED_KINDS = frozenset("biuf")  # bool, signed int, unsigned int, float

T = TypeVar("T")


class CacheValueError(ValueError):
    """A cached value cannot be trusted; treat it as a miss."""


class CorruptValueError(CacheValueError):
    """Bad magic, truncated data, checksum mismatch or an impossible field."""


class StaleValueError(CacheValueError):
    """The value was written by another format version."""


def _checksum(body: bytes | memoryview) -> bytes:
    return hashlib.blake2b(body, digest_size=8).digest()


def _check_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise TypeError(f"only numeric or bool arrays can be cached, got dtype {dtype}")
    return dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Encode named arrays into one self-describing value."""
    if not isinstance(arrays, Mapping) or not arrays:
        raise ValueError("encode_arrays needs a non-empty mapping of name -> numpy array")
    if len(arrays) > _MAX_ARRAYS:
        raise ValueError(f"at most {_MAX_ARRAYS} arrays per value, got {len(arrays)}")
    parts: list[bytes] = []
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"array names must be non-empty str, got {name!r}")
        raw_name = name.encode("utf-8")
        if len(raw_name) > 255:
            raise ValueError(f"array name too long: {name[:40]!r}...")
        arr = np.asarray(value)
        dtype = _check_dtype(arr.dtype)
        arr = arr.astype(dtype, copy=False)  # tobytes(order="C") copes with any layout; keeps 0-d
        if arr.ndim > _MAX_NDIM:
            raise ValueError(f"array {name!r} has {arr.ndim} dims; at most {_MAX_NDIM}")
        if any(d >= 2**32 for d in arr.shape):
            raise ValueError(f"array {name!r} dimension too large: {arr.shape}")
        dstr = dtype.str.encode("ascii")
        parts += [
            struct.pack("<B", len(raw_name)),
            raw_name,
            struct.pack("<B", len(dstr)),
            dstr,
            struct.pack(f"<B{arr.ndim}I", arr.ndim, *arr.shape),
            arr.tobytes(order="C"),
        ]
    body = b"".join(parts)
    if len(body) >= 2**32:
        raise ValueError("value too large for the envelope (>= 4 GiB)")
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(arrays), 0, len(body), _checksum(body))
    return header + body


_DTYPE_CACHE: dict[bytes, np.dtype] = {}


def _dtype(raw: bytes) -> np.dtype:
    dtype = _DTYPE_CACHE.get(raw)
    if dtype is None:
        try:
            dtype = np.dtype(raw.decode("ascii"))
            dtype = _check_dtype(dtype)
        except (UnicodeDecodeError, TypeError) as exc:
            raise CorruptValueError(f"bad dtype {raw!r}: {exc}") from exc
        if len(_DTYPE_CACHE) < 64:
            _DTYPE_CACHE[raw] = dtype
    return dtype


def decode_arrays(data: bytes) -> dict[str, np.ndarray]:
    """Decode a value written by :func:`encode_arrays`; raises :class:`CacheValueError` if untrusted."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"decode_arrays needs bytes, got {type(data).__name__}")
    size = len(data)
    if size < _HEADER.size:
        raise CorruptValueError(f"truncated value: {size} bytes < header {_HEADER.size}")
    magic, version, n_arrays, _reserved, body_len, checksum = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptValueError(f"bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise StaleValueError(f"value format version {version}, this build reads {FORMAT_VERSION}")
    if size - _HEADER.size != body_len:
        raise CorruptValueError(
            f"truncated value: body is {size - _HEADER.size} bytes, header says {body_len}"
        )
    if _checksum(memoryview(data)[_HEADER.size :]) != checksum:
        raise CorruptValueError("checksum mismatch")
    out: dict[str, np.ndarray] = {}
    pos = _HEADER.size
    try:
        for _ in range(n_arrays):
            end = pos + 1 + data[pos]
            name = data[pos + 1 : end].decode("utf-8")
            pos = end + 1 + data[end]
            dtype = _dtype(data[end + 1 : pos])
            ndim = data[pos]
            if ndim > _MAX_NDIM:
                raise CorruptValueError(f"bad ndim {ndim}")
            shape = struct.unpack_from(f"<{ndim}I", data, pos + 1)
            pos += 1 + 4 * ndim
            nbytes = math.prod(shape) * dtype.itemsize
            if pos + nbytes > size:
                raise CorruptValueError("truncated value: array payload runs past the end")
            out[name] = np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize, offset=pos).reshape(
                shape
            )
            pos += nbytes
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise CorruptValueError(f"truncated or malformed value: {exc}") from exc
    if pos != size:
        raise CorruptValueError(f"{size - pos} trailing bytes after the last array")
    return out


class ValueCodec(Protocol[T]):
    """Turns computed values into cache bytes and back (``decode`` raises CacheValueError)."""

    def encode(self, value: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


class BytesCodec:
    """Identity codec: values are already bytes."""

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"BytesCodec needs bytes values, got {type(value).__name__}")
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data


class ArrayCodec:
    """Values are ``dict[str, np.ndarray]``, stored with :func:`encode_arrays`.

    ``required`` names arrays a value must contain; a value missing one (e.g. written by an older
    compressor that stored fewer fields under the same key) is rejected as stale.
    """

    def __init__(self, required: tuple[str, ...] = ()) -> None:
        self.required = tuple(required)

    def encode(self, value: Mapping[str, np.ndarray]) -> bytes:
        return encode_arrays(value)

    def decode(self, data: bytes) -> dict[str, np.ndarray]:
        arrays = decode_arrays(data)
        missing = [n for n in self.required if n not in arrays]
        if missing:
            raise StaleValueError(f"value lacks arrays {missing}")
        return arrays

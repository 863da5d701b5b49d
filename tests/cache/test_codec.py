"""The numpy value envelope: round trips, and every kind of damage is detected, never trusted."""

import struct

import numpy as np
import pytest

from promptpress.cache.codec import (
    FORMAT_VERSION,
    ArrayCodec,
    BytesCodec,
    CorruptValueError,
    StaleValueError,
    _checksum,
    decode_arrays,
    encode_arrays,
)


def _segment_value(n: int = 7, d: int = 16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {
        "offsets": np.cumsum(rng.integers(1, 9, size=n)).astype(np.int32),
        "keep": rng.random(n).astype(np.float16),
        "concepts": rng.standard_normal((3, d)).astype(np.float16),
    }


def test_round_trip_several_named_arrays_keeps_dtype_shape_and_values():
    value = _segment_value()
    out = decode_arrays(encode_arrays(value))
    assert list(out) == list(value)
    for name, arr in value.items():
        assert out[name].dtype == arr.dtype
        assert out[name].shape == arr.shape
        np.testing.assert_array_equal(out[name], arr)


@pytest.mark.parametrize(
    "arr",
    [
        np.array(3.5, dtype=np.float64),
        np.zeros((0, 4), dtype=np.float32),
        np.array([True, False, True]),
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.arange(6, dtype=">i4"),  # big-endian input is stored little-endian
        np.arange(12, dtype=np.int64).reshape(3, 4).T,  # non-contiguous view
    ],
)
def test_round_trip_edge_arrays(arr):
    out = decode_arrays(encode_arrays({"x": arr}))["x"]
    assert out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.byteorder in ("<", "|", "=")


def test_decoded_arrays_are_read_only_views():
    out = decode_arrays(encode_arrays({"keep": np.ones(4, np.float32)}))["keep"]
    with pytest.raises(ValueError):
        out[0] = 2.0


@pytest.mark.parametrize(
    "bad", [np.array(["a", "b"]), np.array([object()], dtype=object), np.zeros(2, complex)]
)
def test_non_numeric_dtypes_are_refused(bad):
    with pytest.raises(TypeError, match="numeric"):
        encode_arrays({"x": bad})


def test_bad_input_to_encode_is_a_clear_error():
    with pytest.raises(ValueError, match="non-empty"):
        encode_arrays({})
    with pytest.raises(TypeError, match="names"):
        encode_arrays({"": np.zeros(1)})
    with pytest.raises(TypeError, match="bytes"):
        decode_arrays("not bytes")  # type: ignore[arg-type]


def test_every_truncation_is_detected():
    data = encode_arrays(_segment_value(3, 2))
    for cut in range(len(data)):
        with pytest.raises(CorruptValueError):
            decode_arrays(data[:cut])


def test_every_single_byte_flip_in_the_body_is_detected():
    data = encode_arrays(_segment_value(3, 2))
    for pos in range(20, len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x5A
        with pytest.raises(CorruptValueError):
            decode_arrays(bytes(damaged))


def test_garbage_and_bad_magic_are_corrupt():
    with pytest.raises(CorruptValueError, match="magic"):
        decode_arrays(b"X" * 64)
    with pytest.raises(CorruptValueError):
        decode_arrays(b"")


def test_other_format_version_is_stale_not_corrupt():
    data = bytearray(encode_arrays({"x": np.arange(3)}))
    data[4] = FORMAT_VERSION + 1
    with pytest.raises(StaleValueError):
        decode_arrays(bytes(data))


def _reseal(body: bytes, n_arrays: int) -> bytes:
    header = struct.pack("<4sBBHI8s", b"PPAR", FORMAT_VERSION, n_arrays, 0, len(body), _checksum(body))
    return header + body


def test_a_well_sealed_but_inconsistent_body_is_still_rejected():
    body = encode_arrays({"x": np.arange(3, dtype=np.int32)})[20:]
    with pytest.raises(CorruptValueError, match="trailing"):
        decode_arrays(_reseal(body + b"\0", 1))
    with pytest.raises(CorruptValueError, match="truncated"):
        decode_arrays(_reseal(body, 2))  # claims a second array that is not there
    forged = body.replace(b"<i4", b"|O8")
    with pytest.raises(CorruptValueError):
        decode_arrays(_reseal(forged, 1))


def test_array_codec_requires_named_arrays_and_bytes_codec_is_identity():
    codec = ArrayCodec(required=("keep", "offsets"))
    data = codec.encode(_segment_value())
    assert set(codec.decode(data)) >= {"keep", "offsets"}
    with pytest.raises(StaleValueError, match="keep"):
        codec.decode(encode_arrays({"offsets": np.arange(3)}))
    assert BytesCodec().decode(BytesCodec().encode(b"abc")) == b"abc"
    with pytest.raises(TypeError):
        BytesCodec().encode("text")  # type: ignore[arg-type]

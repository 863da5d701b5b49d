"""Precision and batching levers: the bf16 back end, ``auto``, ONNX Runtime settings and the batch
policy (each option's validation, and what each changes of the decisions)."""

from __future__ import annotations

import numpy as np
import pytest

from promptpress.compressor import TokenClassifierCompressor
from promptpress.compressor.batching import BatchPolicy
from promptpress.compressor.runtime import BACKENDS, OrtSettings, check_backend, resolve_backend
from promptpress.compressor.torch_runtime import native_bf16


@pytest.fixture(scope="module")
def tiny_loaded(tiny_checkpoint):
    from promptpress.compressor.model import load_token_classifier

    return load_token_classifier(tiny_checkpoint)


# ---------------------------------------------------------------- bf16 and auto
def test_bf16_runtime_holds_bf16_linears_and_scores_like_fp32(tiny_loaded, multi_news):
    import torch

    fp32 = TokenClassifierCompressor(tiny_loaded, backend="torch")
    bf16 = TokenClassifierCompressor(tiny_loaded, backend="bf16")
    assert bf16.backend == bf16.runtime.name == "bf16"
    modules = list(bf16.runtime.model.modules())
    assert not any(isinstance(m, torch.nn.Linear) for m in modules)
    linears = [m for m in modules if type(m).__name__ == "Bf16Linear"]
    assert len(linears) == sum(isinstance(m, torch.nn.Linear) for m in tiny_loaded.model.modules()) > 0
    assert {m.weight.dtype for m in linears} == {torch.bfloat16}
    assert next(tiny_loaded.model.parameters()).dtype == torch.float32  # the loaded model is left as it was
    ids = fp32._tokenizer.encode(multi_news[0][:2000], add_special_tokens=False).ids
    windows = [np.asarray(ids[i : i + n], dtype=np.int64) for i, n in ((0, 7), (7, 120), (127, 60))]
    for a, b in zip(fp32.score_windows(windows), bf16.score_windows(windows)):
        assert a.shape == b.shape and b.dtype == np.float32
        diff = float(np.abs(a - b).max())
        assert 0 < diff < 0.05, diff  # rounded (bf16 keeps 8 bits of mantissa), not broken


def test_native_bf16_reads_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    assert native_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert not native_bf16(cpuinfo)
    assert not native_bf16(tmp_path / "missing")


def test_auto_resolves_to_a_real_backend(monkeypatch, tiny_loaded):
    import promptpress.compressor.runtime as runtime

    monkeypatch.setattr(runtime, "native_bf16", lambda: True)
    assert resolve_backend("auto") == "bf16"
    monkeypatch.setattr(runtime, "native_bf16", lambda: False)
    assert resolve_backend("auto") == "torch"
    assert resolve_backend("onnx") == "onnx"
    compressor = TokenClassifierCompressor(tiny_loaded, backend="auto")
    assert compressor.backend == compressor.runtime.name == "torch"  # the cache keys name what ran
    assert compressor._keyspace is None or "auto" not in str(compressor._keyspace)


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="unknown backend 'bf32'; choose one of auto, torch, bf16"):
        check_backend("bf32")
    assert "bf16" in BACKENDS and "auto" not in BACKENDS


# ---------------------------------------------------------------- ONNX Runtime settings
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threads": 0}, "threads must be a positive integer or None, got 0"),
        ({"threads": True}, "threads must be a positive integer"),
        ({"threads": 1.5}, "threads must be a positive integer"),
        ({"spinning": "no"}, "spinning must be True or False, got 'no'"),
    ],
)
def test_ort_settings_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OrtSettings(**kwargs)


def test_onnx_runtime_sleeps_between_operators_unless_asked(tiny_loaded):
    from promptpress.compressor.runtime import OnnxRuntime

    compressor = TokenClassifierCompressor(tiny_loaded, backend="onnx", threads=1)
    assert compressor.runtime.settings == OrtSettings(threads=1, spinning=False)
    key = "session.intra_op.allow_spinning"
    assert compressor.runtime.session.get_session_options().get_session_config_entry(key) == "0"
    spinning = OnnxRuntime(compressor.runtime.graph, "onnx", OrtSettings(1, spinning=True))
    assert spinning.session.get_session_options().get_session_config_entry(key) == "1"


# ---------------------------------------------------------------- batching
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_fill": 0}, r"min_fill must be a number in \(0, 1\], got 0"),
        ({"min_fill": 1.5}, r"min_fill must be a number in \(0, 1\]"),
        ({"min_fill": True}, r"min_fill must be a number"),
        ({"max_rows": 0}, "max_rows must be a positive integer, got 0"),
        ({"max_tokens": "4096"}, "max_tokens must be a positive integer, got '4096'"),
    ],
)
def test_batch_policy_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchPolicy(**kwargs)


def test_compressor_rejects_a_bad_batch_fill(tiny_loaded):
    with pytest.raises(ValueError, match=r"min_fill must be a number in \(0, 1\], got 2"):
        TokenClassifierCompressor(tiny_loaded, batch_fill=2)


def test_batches_cut_where_padding_would_exceed_the_fill():
    widths = [100, 98, 60, 99, 12, 12, 12, 500]
    batches = BatchPolicy(max_rows=8, max_tokens=4096, min_fill=0.95).batches(range(len(widths)), widths)
    assert sorted(i for b in batches for i in b) == list(range(len(widths)))  # each window once
    assert batches == [[7], [0, 3, 1], [2], [4, 5, 6]]
    for batch in batches:  # padding within the asked share
        width = max(widths[i] for i in batch)
        assert sum(widths[i] for i in batch) >= 0.95 * width * len(batch)
    exact = BatchPolicy(min_fill=1.0).batches(range(len(widths)), widths)
    assert all(len({widths[i] for i in b}) == 1 for b in exact)
    capped = BatchPolicy(max_rows=2, max_tokens=4096, min_fill=0.01).batches([4, 5, 6], widths)
    assert [len(b) for b in capped] == [2, 1]


def test_batching_does_not_change_what_is_kept(tiny_loaded, multi_news):
    text = "\n\n".join(multi_news[:2])
    loose = TokenClassifierCompressor(tiny_loaded, backend="torch", batch_size=8, batch_fill=0.5)
    tight = TokenClassifierCompressor(tiny_loaded, backend="torch", batch_fill=1.0)
    a = loose.compress(text, rate=0.33, return_words=True)
    b = tight.compress(text, rate=0.33, return_words=True)
    assert a.compressed_text == b.compressed_text
    pa = np.array([w.probability for w in a.words])
    pb = np.array([w.probability for w in b.words])
    assert np.abs(pa - pb).max() < 1e-4


def test_the_default_backend_is_auto_and_fp32_stays_available(monkeypatch, tiny_loaded):
    import promptpress.compressor.runtime as runtime
    from promptpress.service.settings import Settings

    monkeypatch.setattr(runtime, "native_bf16", lambda: True)
    assert TokenClassifierCompressor(tiny_loaded).backend == "bf16"
    assert TokenClassifierCompressor(tiny_loaded, backend="torch").runtime.name == "torch"
    assert Settings().compressor_backend == "auto"

"""The faster CPU back ends make (almost) the same decisions as fp32."""

from __future__ import annotations

import numpy as np
import pytest

from promptpress.compressor import TokenClassifierCompressor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def confident(minilm_checkpoint):
    """MiniLM with its head's logits scaled up: probabilities spread over (0, 1) like a trained
    head's, instead of the untrained head's 0.5 +- 0.01 where any rounding flips a decision."""
    import copy

    import torch

    from promptpress.compressor.model import fingerprint, load_token_classifier

    loaded = copy.copy(load_token_classifier(minilm_checkpoint))
    with torch.no_grad():
        loaded.model.classifier.weight.mul_(50.0)
    loaded.fingerprint = fingerprint(loaded.model, loaded.tokenizer)
    return loaded


@pytest.mark.parametrize("backend", ["int8", "onnx", "onnx-int8"])
def test_backend_decisions_match_fp32(confident, backend, multi_news):
    reference_compressor = TokenClassifierCompressor(confident)
    fast = TokenClassifierCompressor(confident, backend=backend)
    assert fast.runtime.name == backend
    text = "\n\n".join(multi_news[:2])
    reference = reference_compressor.compress(text, rate=0.33, return_words=True)
    result = fast.compress(text, rate=0.33, return_words=True)
    ref = np.array([w.keep for w in reference.words])
    got = np.array([w.keep for w in result.words])
    assert len(ref) == len(got) > 1000
    agreement = float((ref == got).mean())
    assert agreement >= (0.999 if backend == "onnx" else 0.98), agreement


def test_onnx_probabilities_equal_torch(minilm):
    fast = TokenClassifierCompressor(minilm.loaded, backend="onnx")
    windows = [np.arange(1000, 1000 + n, dtype=np.int64) for n in (5, 40, 300)]
    for a, b in zip(minilm.score_windows(windows), fast.score_windows(windows)):
        assert a.shape == b.shape
        assert np.abs(a - b).max() < 1e-4


def test_unknown_backend(minilm):
    with pytest.raises(ValueError, match="unknown backend"):
        TokenClassifierCompressor(minilm.loaded, backend="tpu")

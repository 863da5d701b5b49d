"""The ONNX path without torch: a model exported once opens from its inference artefact (tokenizers and
ONNX Runtime only) and compresses exactly as the torch path does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from promptpress.compressor import TokenClassifierCompressor
from promptpress.compressor.artefact import find_artefact
from promptpress.compressor.model import load_token_classifier
from promptpress.compressor.onnx_export import export_graph


@pytest.fixture
def checkpoint(tiny_checkpoint, tmp_path):
    """A private copy of the tiny checkpoint: its own source key, so its first open is cold."""
    return shutil.copytree(tiny_checkpoint, tmp_path / "tiny-copy")


def test_the_artefact_describes_the_model_as_the_loaded_checkpoint_does(checkpoint):
    loaded = load_token_classifier(checkpoint)
    artefact, graph = export_graph(loaded, "onnx")
    assert graph.with_name("onnx.onnx.data").stat().st_size > 10 * graph.stat().st_size  # weights apart
    found = find_artefact(checkpoint)
    assert found is not None and found.directory == artefact.directory
    info, reference = found.info(str(checkpoint)), loaded.info()
    assert info.tokenizer.to_str() == reference.tokenizer.to_str()
    for field in ("spec", "cls_id", "sep_id", "pad_id", "trained_head", "max_length", "fingerprint"):
        assert getattr(info, field) == getattr(reference, field), field
    assert found.info(str(checkpoint), max_length=64).max_length == 64


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_a_second_open_needs_no_torch_model_and_decides_the_same(checkpoint, multi_news, backend):
    cold = TokenClassifierCompressor(checkpoint, backend=backend)
    assert cold._loaded is not None  # loaded with torch, then exported
    warm = TokenClassifierCompressor(checkpoint, backend=backend)
    assert warm._loaded is None and warm.runtime.name == backend
    text = multi_news[3]
    a = cold.compress(text, rate=0.4, return_words=True)
    b = warm.compress(text, rate=0.4, return_words=True)
    assert a.compressed_text == b.compressed_text
    assert [(w.text, w.probability, w.keep) for w in a.words or []] == [
        (w.text, w.probability, w.keep) for w in b.words or []
    ]
    assert warm.loaded.fingerprint == warm.info.fingerprint  # torch loads on demand only


def test_a_changed_checkpoint_is_loaded_and_exported_again(checkpoint):
    TokenClassifierCompressor(checkpoint, backend="onnx")
    assert find_artefact(checkpoint) is not None
    config = checkpoint / "config.json"
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert find_artefact(checkpoint) is None
    assert TokenClassifierCompressor(checkpoint, backend="onnx")._loaded is not None


def test_the_onnx_path_equals_the_torch_path_on_real_text(tiny, checkpoint, multi_news):
    TokenClassifierCompressor(checkpoint, backend="onnx")  # the first open exports
    fast = TokenClassifierCompressor(checkpoint, backend="onnx")
    assert fast._loaded is None
    text = "\n\n".join(multi_news[:2])
    for rate in (0.33, 0.5):
        assert (
            fast.compress(text, rate=rate).compressed_text == tiny.compress(text, rate=rate).compressed_text
        )


@pytest.mark.slow
def test_the_cli_imports_neither_torch_nor_transformers_once_the_model_is_exported(multi_news, tmp_path):
    # the default command with an empty cache, then again (timed by benchmarks/bench_cli.py), then the
    # torch path: one printed text; the second run never imports torch or transformers
    path = tmp_path / "doc.txt"
    path.write_text(multi_news[4], encoding="utf-8")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PROMPTPRESS_CACHE_DIR": str(tmp_path / "cache")}
    cli = [sys.executable, "-X", "importtime", "-m", "promptpress.service.cli", "compress", str(path)]

    def run(*extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([*cli, "--rate", "0.33", *extra], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc

    def imported(proc: subprocess.CompletedProcess) -> set[str]:
        lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
        return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines}

    first, second, torch_path = run(), run(), run("--backend", "torch")
    assert {"torch", "transformers"} <= imported(first)  # the cold run loads and exports the model
    assert not {"torch", "transformers"} & imported(second), "the warm ONNX path imported torch"
    assert "onnxruntime" in imported(second) and "[onnx]" in second.stderr
    assert "torch" in imported(torch_path) and "[torch]" in torch_path.stderr
    assert first.stdout == second.stdout == torch_path.stdout
    assert 0 < len(second.stdout) < len(multi_news[4])


def test_onnx_probabilities_from_the_artefact_equal_torch(tiny, checkpoint):
    TokenClassifierCompressor(checkpoint, backend="onnx")
    fast = TokenClassifierCompressor(checkpoint, backend="onnx")
    windows = [np.arange(1000, 1000 + n, dtype=np.int64) for n in (5, 40, 300)]
    for a, b in zip(tiny.score_windows(windows), fast.score_windows(windows)):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-5

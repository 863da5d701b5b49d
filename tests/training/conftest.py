"""Fixtures for the training pipeline tests: the MiniLM tokenizer and real QMSum meetings."""

from __future__ import annotations

from pathlib import Path

import pytest

QMSUM = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "qmsum-train"


@pytest.fixture(scope="session")
def qmsum_dir() -> Path:
    if not QMSUM.is_dir():
        pytest.fail(f"QMSum training meetings are missing at {QMSUM} (see ../shared/data/README.md)")
    return QMSUM.resolve()


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    from promptpress.compressor.assets import resolve

    return AutoTokenizer.from_pretrained(resolve("package:all-minilm-l6-v2"))


@pytest.fixture(scope="session")
def splitter(tokenizer):
    from promptpress.compressor.training.wordsplit import WordSplitter

    return WordSplitter(tokenizer)

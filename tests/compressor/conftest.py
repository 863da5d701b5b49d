"""Fixtures for the compressor tests: real text, the packaged encoder, and a tiny local BERT."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("PROMPTPRESS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def multi_news() -> list[str]:
    path = DATA / "longbench" / "multi_news.jsonl"
    if not path.is_file():
        pytest.fail(f"shared data not found at {path}; set PROMPTPRESS_SHARED_DATA")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["context"] for line in fh][:12]


@pytest.fixture(scope="session")
def minilm_checkpoint(tmp_path_factory) -> Path:
    """The packaged MiniLM with its seeded (untrained) head, saved as a token-classification
    checkpoint. The directory name contains 'bert-base-multilingual-cased' because llmlingua 0.2.2
    picks its word-merge rule by substring of the model path."""
    from promptpress.compressor.model import load_token_classifier

    loaded = load_token_classifier("package:all-minilm-l6-v2")
    path = tmp_path_factory.mktemp("ckpt") / "bert-base-multilingual-cased-minilm-test"
    loaded.model.save_pretrained(path)
    loaded.tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def minilm(minilm_checkpoint):
    from promptpress.compressor import TokenClassifierCompressor

    return TokenClassifierCompressor(minilm_checkpoint, backend="torch")  # fp32: llmlingua parity


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT token classifier with MiniLM's tokenizer: real code path, fast."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from promptpress.compressor import resolve

    torch.manual_seed(1)
    tokenizer = AutoTokenizer.from_pretrained(resolve("package:all-minilm-l6-v2"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=2,
        architectures=["BertForTokenClassification"],
    )
    model = BertForTokenClassification(config).eval()
    with torch.no_grad():  # spread the probabilities so decisions are not ties around 0.5
        model.classifier.weight.mul_(40.0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-bert"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny(tiny_checkpoint):
    from promptpress.compressor import TokenClassifierCompressor

    return TokenClassifierCompressor(tiny_checkpoint, backend="torch")

"""The surprisal baseline: the token classifier's teacher used as a compressor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptpress.compressor import Compressor
from promptpress.compressor.tokens import count_tokens
from promptpress.eval.baselines import SurprisalDropCompressor
from promptpress.eval.longbench import load_dataset
from promptpress.eval.methods import make_method


class ScriptedTeacher:
    """Scores a word by what it is: capitalised words 100 + length, others their length."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def span_information(self, text: str, spans: np.ndarray, question=None, prefix: str = "") -> np.ndarray:
        self.texts.append(text)
        words = [text[s:e] for s, e in spans.tolist()]
        return np.array([len(w) + (100 if w[:1].isupper() else 0) for w in words], dtype=np.float64)


@pytest.fixture(scope="module")
def text(longbench_dir: Path) -> str:
    return load_dataset(longbench_dir, "multi_news", limit=1)[0].context


@pytest.fixture
def scripted() -> tuple[SurprisalDropCompressor, ScriptedTeacher]:
    compressor = SurprisalDropCompressor()
    teacher = ScriptedTeacher()
    compressor._teacher = teacher
    return compressor, teacher


def test_keeps_the_highest_scoring_words_in_order_within_budget(scripted, text: str) -> None:
    compressor, teacher = scripted
    assert isinstance(compressor, Compressor)
    result = compressor.compress(text, rate=0.33)
    assert result.compressed_tokens == count_tokens(result.compressed_text)
    assert result.rate == pytest.approx(0.33, abs=0.02)
    kept = result.compressed_text.split()
    words = text.split()
    # kept words are a subsequence of the original words
    it = iter(words)
    assert all(any(w == x for x in it) for w in kept)
    # capitalised words rank first: nearly all of them fit a third of the budget, few others do
    capital = [w for w in words if w[:1].isupper()]
    assert sum(w[:1].isupper() for w in kept) >= 0.9 * min(len(capital), len(kept))
    assert teacher.texts == [text]  # one LM pass for the whole text


def test_other_rates_of_the_same_text_reuse_the_scores(scripted, text: str) -> None:
    compressor, teacher = scripted
    compressor.compress(text, rate=0.5)
    calls = len(teacher.texts)
    half = compressor.compress(text, rate=0.5).compressed_text
    fifth = compressor.compress(text, rate=0.2).compressed_text
    assert len(teacher.texts) == calls
    assert set(fifth.split()) <= set(half.split())
    compressor.compress(text + " More.", rate=0.5)
    assert len(teacher.texts) > calls


def test_make_method_names_it() -> None:
    method = make_method("surprisal")
    assert method.name == "surprisal" and isinstance(method.compressor, SurprisalDropCompressor)
    assert make_method("surprisal:some/lm").compressor.model == "some/lm"


def _tiny_qwen(path: Path, text: str) -> None:
    """A randomly initialised 1-layer Qwen2 with a byte-level BPE trained on `text`, saved in `path`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator([text], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


@pytest.mark.slow
def test_a_real_causal_lm_scores_every_word(tmp_path: Path, text: str) -> None:
    """The tiny LM read through the teacher's own loading and scoring path."""
    _tiny_qwen(tmp_path, text)
    sample = " ".join(text.split()[:400])  # several hundred BPE tokens
    whole = SurprisalDropCompressor(str(tmp_path), max_lm_tokens=4096).scores(sample)
    pieces = SurprisalDropCompressor(str(tmp_path), max_lm_tokens=128)
    scores = pieces.scores(sample)
    assert scores.shape == whole.shape == (400,)
    # a random LM spreads probability thinly: every word after the first carries several nats
    assert (scores[1:] > 1.0).all() and (whole[1:] > 1.0).all()
    # the first piece is read exactly as in one pass; later pieces see only 64 tokens of history
    np.testing.assert_allclose(scores[:30], whole[:30], rtol=1e-4)
    assert not np.allclose(scores, whole)
    result = pieces.compress(sample, rate=0.5)
    assert result.rate == pytest.approx(0.5, abs=0.03)


@pytest.mark.slow
def test_the_bf16_teacher_scores_like_fp32_and_says_so_in_its_name(
    tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptpress.compressor.training.surprisal import SurprisalTeacher
    from promptpress.compressor.training.wordsplit import top_k_mask

    _tiny_qwen(tmp_path, text)
    sample = " ".join(text.split()[:300])
    spans, pos = [], 0
    for word in sample.split(" "):
        spans.append((pos, pos + len(word)))
        pos += len(word) + 1
    fp32 = SurprisalTeacher(tmp_path, precision="fp32")
    from promptpress.compressor.training import soft_runtime

    monkeypatch.setattr(soft_runtime, "native_bf16", lambda: False)  # as on an AVX2-only CPU
    with pytest.warns(RuntimeWarning, match="emulated"):
        bf16 = SurprisalTeacher(tmp_path, precision="bf16")
    a = fp32.span_information(sample, np.array(spans))
    b = bf16.span_information(sample, np.array(spans))
    assert a.shape == b.shape == (300,)
    assert not np.array_equal(a, b)  # bf16 products did run
    np.testing.assert_allclose(b, a, rtol=0.05)
    assert np.mean(top_k_mask(a, 0.5) == top_k_mask(b, 0.5)) > 0.9
    assert bf16.name.endswith(":bf16") and not fp32.name.endswith(":bf16")
    with pytest.raises(ValueError, match="precision"):
        SurprisalTeacher(tmp_path, precision="fp16")

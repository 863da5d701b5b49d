"""Word boundaries from the tokenizer's own definition, for the three sub-word styles."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from promptpress.compressor.words import (
    detect_word_rule,
    strip_leading_space,
    word_ids,
    word_probabilities,
    word_spans,
)

CORPUS = [
    "The committee approved the budget on Tuesday, after a long debate.",
    "Researchers tokenized unbelievably long documents; compression helped.",
    "State-of-the-art models don't always win: simple baselines are strong.",
] * 20

TEXT = "Unbelievably, the committee's tokenizers win."
# WordPiece's pre-tokenizer splits every punctuation mark into a word of its own; with the marker
# styles a piece without the marker continues the word before it, as in llmlingua's XLM-R rule.
SPLIT = ["Unbelievably", ",", "the", "committee", "'", "s", "tokenizers", "win", "."]
MARKED = ["Unbelievably", ",", "the", "committee", "'s", "tokenizers", "win", "."]


def _wordpiece() -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=120, special_tokens=["[UNK]"]))
    return tok


def _metaspace() -> Tokenizer:
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(replacement="▁"), pre_tokenizers.Punctuation()]
    )
    tok.decoder = decoders.Metaspace(replacement="▁")
    tok.train_from_iterator(
        CORPUS, trainers.UnigramTrainer(vocab_size=100, special_tokens=["<unk>"], unk_token="<unk>")
    )
    return tok


def _bytelevel() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    )
    return tok


@pytest.mark.parametrize(
    ("build", "style", "marker", "expected"),
    [
        (_wordpiece, "wordpiece", "##", SPLIT),
        (_metaspace, "metaspace", "▁", MARKED),
        (_bytelevel, "bytelevel", "Ġ", MARKED),
    ],
)
def test_style_detection_and_words(build, style, marker, expected):
    tok = build()
    rule = detect_word_rule(tok)
    assert (rule.style, rule.marker) == (style, marker)
    enc = tok.encode(TEXT)
    offsets = np.asarray(enc.offsets, dtype=np.int64)
    starts = rule.starts(enc.tokens, offsets, TEXT)
    # small vocabularies split words into several pieces: the rule must glue them back
    assert len(enc.tokens) > len(expected)
    offsets = strip_leading_space(TEXT, offsets)
    ids = word_ids(starts)
    spans = word_spans(offsets, ids, int(ids[-1]) + 1)
    assert [TEXT[s:e] for s, e in spans.tolist()] == expected


def test_unknown_style_falls_back_to_whitespace_offsets():
    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    rule = detect_word_rule(tok)
    assert rule.style == "offsets"
    text = "ab cd, ef"
    enc = tok.encode(text)
    starts = rule.starts(enc.tokens, np.asarray(enc.offsets), text)
    ids = word_ids(starts)
    spans = word_spans(np.asarray(enc.offsets), ids, int(ids[-1]) + 1)
    assert [text[s:e] for s, e in spans.tolist()] == ["ab", "cd", ",", "ef"]


def test_slow_tokenizer_is_rejected_clearly():
    with pytest.raises(TypeError, match="fast"):
        detect_word_rule(object())


def test_word_probabilities_mean_and_first():
    probs = np.array([0.2, 0.4, 0.9, 0.1, 0.3], dtype=np.float32)
    ids = np.array([0, 0, 1, 2, 2])
    assert np.allclose(word_probabilities(probs, ids, 3, "mean"), [0.3, 0.9, 0.2])
    assert np.allclose(word_probabilities(probs, ids, 3, "first"), [0.2, 0.9, 0.1])

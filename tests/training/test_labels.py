"""Words and labels: train-time words equal inference-time words, token <-> word aggregation."""

from __future__ import annotations

import numpy as np
import pytest

from promptpress.compressor.training.surprisal import aggregate, char_to_word
from promptpress.compressor.training.wordsplit import token_labels, top_k_mask, word_scores

TEXT = "PhD F: Unbelievably, the re-organisation's budget wasn't approved."


def test_words_follow_the_tokenizer_rule(splitter):
    enc = splitter.encode(TEXT)
    words = enc.words()
    # WordPiece: punctuation is its own word, sub-words of one word stay together
    assert words[:4] == ["PhD", "F", ":", "Unbelievably"]
    assert "budget" in words and "," in words
    assert enc.n_tokens > enc.n_words  # "Unbelievably" and others are several tokens
    assert all(TEXT[s:e] == w for (s, e), w in zip(enc.spans.tolist(), words))


def test_token_labels_spread_word_labels_over_sub_words(splitter):
    enc = splitter.encode(TEXT)
    labels = np.zeros(enc.n_words, dtype=np.int64)
    labels[3] = 1  # "Unbelievably"
    tok = token_labels(labels, enc.word_of_token)
    assert tok.sum() == int((enc.word_of_token == 3).sum()) > 1
    assert (tok[enc.word_of_token == 3] == 1).all()
    with pytest.raises(ValueError, match="different tokenizer"):
        token_labels(labels[:2], enc.word_of_token)


def test_word_scores_match_the_compressor_aggregation(splitter, tokenizer):
    from promptpress.compressor.words import detect_word_rule, word_ids, word_probabilities

    enc = splitter.encode(TEXT)
    probs = np.linspace(0.0, 1.0, enc.n_tokens).astype(np.float32)
    # what TokenClassifierCompressor does with the same tokens
    tokens = tokenizer.convert_ids_to_tokens(enc.ids.tolist())
    ids = word_ids(
        detect_word_rule(tokenizer).starts(tokens, np.zeros((len(tokens), 2), dtype=np.int64), TEXT)
    )
    expected = word_probabilities(probs, ids, int(ids[-1]) + 1, "mean")
    np.testing.assert_allclose(word_scores(probs, enc), expected)
    first = np.flatnonzero(enc.word_of_token == 3)
    assert word_scores(probs, enc)[3] == pytest.approx(probs[first].mean())


def test_char_to_word_gives_gaps_to_the_next_word():
    spans = np.array([[0, 3], [4, 7], [9, 10]])  # "abc def  g"
    owner = char_to_word(10, spans)
    assert owner.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]


def test_surprisal_aggregation_sums_tokens_into_words():
    spans = np.array([[0, 3], [4, 7], [9, 10]])
    owner = char_to_word(10, spans)
    # LM tokens starting at 0 ("ab"), 2 ("c"), 3 (" def"), 7 ("  g")
    scores = aggregate(np.array([0, 2, 3, 7]), np.array([1.0, 2.0, 4.0, 8.0]), owner, 3)
    assert scores.tolist() == [3.0, 4.0, 8.0]


def test_top_k_mask_keeps_the_best_share():
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.2])
    assert top_k_mask(scores, 0.4).tolist() == [False, True, False, True, False]
    assert top_k_mask(scores, 0.01).sum() == 1
    assert top_k_mask(np.zeros(0), 0.5).sum() == 0


def test_answer_words_mixed_into_training_labels(qmsum_dir, splitter):
    from promptpress.compressor.training.answers import answer_targets
    from promptpress.compressor.training.corpus import meeting_files, meeting_windows
    from promptpress.compressor.training.labels import LabelledWindow, mix_answer_words

    window = next(w for w in meeting_windows(meeting_files(qmsum_dir)[0], splitter, 300) if w.queries)
    words = splitter.encode(window.text).words()
    scores = np.arange(len(words), dtype=np.float32)[::-1].copy()  # teacher prefers early words
    teacher = LabelledWindow(window, top_k_mask(scores, 0.5), scores, {}, "t", 1.0)
    held = LabelledWindow(
        type(window)(**{**window.__dict__, "split": "heldout"}), teacher.keep, scores, {}, "t", 1.0
    )
    mixed, same = mix_answer_words([teacher, held], splitter, weight=1.0)
    targets = answer_targets(words, [q.answer for q in window.queries] + [q.query for q in window.queries])
    assert 0 < targets.sum() < len(words) // 2
    assert mixed.keep[targets].all()  # every answer word is kept ...
    assert mixed.keep.sum() == teacher.keep.sum()  # ... at the same rate ...
    assert not teacher.keep[targets].all()
    rest = ~targets
    order = np.flatnonzero(mixed.keep & rest)
    assert (order < np.flatnonzero(~mixed.keep & rest).min()).all()  # ... then the teacher's order
    assert same is held  # held-out labels stay the teacher's

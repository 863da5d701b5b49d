"""Words of a text exactly as the compressor sees them at inference time.

Training labels are per word, and "word" must mean the same thing when a teacher labels a window,
when the trainer spreads word labels over sub-word tokens, and when `TokenClassifierCompressor`
averages token probabilities back into words. All three go through `WordSplitter`, which uses the
encoder tokenizer's own word rule (`promptpress.compressor.words`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..words import detect_word_rule, strip_leading_space, word_ids, word_probabilities, word_spans


@dataclass(frozen=True)
class EncodedWords:
    text: str
    ids: np.ndarray  # encoder token ids, without special tokens
    word_of_token: np.ndarray  # token -> word index
    spans: np.ndarray  # [n_words, 2] character spans of the words in `text`

    @property
    def n_words(self) -> int:
        return len(self.spans)

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    def words(self) -> list[str]:
        return [self.text[s:e] for s, e in self.spans.tolist()]


class WordSplitter:
    """Tokenise with an encoder's fast tokenizer and group its tokens into words."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.rule = detect_word_rule(tokenizer)
        self._backend = copy.deepcopy(tokenizer.backend_tokenizer)
        self._backend.no_padding()
        self._backend.no_truncation()

    def encode(self, text: str) -> EncodedWords:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[EncodedWords]:
        out = []
        for text, enc in zip(texts, self._backend.encode_batch(texts, add_special_tokens=False)):
            ids = np.asarray(enc.ids, dtype=np.int64)
            offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
            if self.rule.style != "wordpiece":
                offsets = strip_leading_space(text, offsets)
            starts = self.rule.starts(list(enc.tokens), offsets, text)
            wid = word_ids(starts)
            n_words = int(wid[-1]) + 1 if len(wid) else 0
            out.append(EncodedWords(text, ids, wid, word_spans(offsets, wid, n_words)))
        return out

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._backend.encode_batch(texts, add_special_tokens=False)]


def token_labels(word_labels: np.ndarray, word_of_token: np.ndarray) -> np.ndarray:
    """Spread word labels over the word's sub-word tokens (every token of a kept word is kept)."""
    word_labels = np.asarray(word_labels)
    if len(word_of_token) and int(word_of_token.max()) >= len(word_labels):
        raise ValueError(
            f"{len(word_labels)} word labels for a text of {int(word_of_token.max()) + 1} words: "
            "the labels were made with a different tokenizer"
        )
    return word_labels[word_of_token]


def word_scores(token_probs: np.ndarray, encoded: EncodedWords) -> np.ndarray:
    """Token keep-probabilities -> word probabilities, the way the compressor aggregates them."""
    return word_probabilities(np.asarray(token_probs), encoded.word_of_token, encoded.n_words, "mean")


def top_k_mask(scores: np.ndarray, rate: float) -> np.ndarray:
    """Keep the round(rate * n) highest-scoring words (ties: earlier word first)."""
    n = len(scores)
    k = min(n, max(1 if n else 0, round(rate * n)))
    mask = np.zeros(n, dtype=bool)
    if k:
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        mask[order[:k]] = True
    return mask

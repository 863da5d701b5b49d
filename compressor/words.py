"""Words from sub-word tokens, decided by the tokenizer itself (never by the model's name).

Three styles cover the encoders LLMLingua-2-like models are built on:
- WordPiece (BERT, MiniLM, MPNet): a token continues the previous word when it starts with the
  model's continuing-subword prefix (``##``);
- SentencePiece / Metaspace (XLM-RoBERTa, LLMLingua-2's large model): a token starts a word when
  it starts with the meta-space ``▁``, or is punctuation;
- byte-level BPE (RoBERTa, GPT-2 style): a token starts a word when it starts with ``Ġ`` (an
  encoded space) or a newline byte, or is punctuation.
Tokenizers of any other kind fall back to offsets: a token starts a word when whitespace separates
it from the previous token.

Everything after tokenisation works on numpy arrays: a boolean "starts a word" per token, word ids
by cumulative sum, word probabilities by `np.bincount` (mean) or first-token gather.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Literal

import numpy as np

Style = Literal["wordpiece", "metaspace", "bytelevel", "offsets"]
_PUNCT = frozenset(string.punctuation)


@dataclass(frozen=True)
class WordRule:
    style: Style
    marker: str  # "##" for WordPiece (continuation), "▁"/"Ġ" for the others (word start)

    def starts(self, tokens: list[str], offsets: np.ndarray, text: str) -> np.ndarray:
        """Boolean array: does token i start a new word?"""
        n = len(tokens)
        if n == 0:
            return np.zeros(0, dtype=bool)
        if self.style == "wordpiece":
            starts = np.fromiter((not t.startswith(self.marker) for t in tokens), dtype=bool, count=n)
        elif self.style in ("metaspace", "bytelevel"):
            extra = ("Ċ", "ĉ") if self.style == "bytelevel" else ()
            starts = np.fromiter(
                (
                    t.startswith(self.marker) or t in _PUNCT or (bool(extra) and t.startswith(extra))
                    for t in tokens
                ),
                dtype=bool,
                count=n,
            )
        else:
            gaps = np.ones(n, dtype=bool)
            if n > 1:
                prev_end = offsets[:-1, 1]
                cur_start = offsets[1:, 0]
                gaps[1:] = cur_start > prev_end
            punct = np.fromiter((text[s:e] in _PUNCT for s, e in offsets.tolist()), dtype=bool, count=n)
            starts = gaps | punct
        starts[0] = True
        return starts


def detect_word_rule(tokenizer: object) -> WordRule:
    """Read the word-boundary rule from a (fast) Hugging Face tokenizer's own definition."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    try:
        spec = json.loads(backend.to_str())  # type: ignore[attr-defined]
    except Exception as exc:
        raise TypeError(
            f"{type(tokenizer).__name__} is not a fast (Rust) tokenizer; promptpress needs a "
            "tokenizer.json-backed tokenizer to map tokens to words and characters"
        ) from exc
    model = spec.get("model") or {}
    components = _components(spec.get("decoder")) + _components(spec.get("pre_tokenizer"))
    if model.get("type") == "WordPiece":
        return WordRule("wordpiece", model.get("continuing_subword_prefix") or "##")
    for component in components:
        if component.get("type") == "Metaspace":
            return WordRule("metaspace", component.get("replacement") or "▁")
    for component in components:
        if component.get("type") == "ByteLevel":
            return WordRule("bytelevel", "Ġ")
    return WordRule("offsets", "")


def _components(node: dict | None) -> list[dict]:
    if not node:
        return []
    if node.get("type") == "Sequence":
        children = node.get("decoders") or node.get("pretokenizers") or []
        return [c for child in children for c in _components(child)]
    return [node]


def word_ids(starts: np.ndarray) -> np.ndarray:
    """Token -> word index, given the "starts a word" flags."""
    return np.cumsum(starts) - 1


def word_probabilities(
    token_probs: np.ndarray, ids: np.ndarray, n_words: int, mode: Literal["mean", "first"]
) -> np.ndarray:
    """Aggregate token keep-probabilities into word probabilities (vectorised)."""
    if n_words == 0:
        return np.zeros(0, dtype=np.float32)
    if mode == "first":
        first = np.full(n_words, -1, dtype=np.int64)
        # the first token of a word is where the word id changes
        change = np.ones(len(ids), dtype=bool)
        change[1:] = ids[1:] != ids[:-1]
        first[ids[change]] = np.nonzero(change)[0]
        return token_probs[first].astype(np.float32)
    sums = np.bincount(ids, weights=token_probs, minlength=n_words)
    counts = np.bincount(ids, minlength=n_words)
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def word_spans(offsets: np.ndarray, ids: np.ndarray, n_words: int) -> np.ndarray:
    """[n_words, 2] character spans: start of a word's first token, end of its last."""
    spans = np.zeros((n_words, 2), dtype=np.int64)
    if n_words == 0:
        return spans
    spans[:, 0] = np.iinfo(np.int64).max
    np.minimum.at(spans[:, 0], ids, offsets[:, 0])
    np.maximum.at(spans[:, 1], ids, offsets[:, 1])
    return spans


def strip_leading_space(text: str, offsets: np.ndarray) -> np.ndarray:
    """Move token starts past the whitespace some tokenizers include (``▁word``/``Ġword`` offsets
    cover the space before the word), so spans hold the word itself."""
    out = offsets.copy()
    for i, (s, e) in enumerate(offsets.tolist()):
        if s < e and text[s].isspace():
            piece = text[s:e]
            out[i, 0] = s + len(piece) - len(piece.lstrip())
    return out

"""Split text into stable segments of at most S backend tokens, aligned to word boundaries.

The rule (deterministic, documented because the segment cache depends on it):

1. The text is cut into *words*: each word is a run of whitespace followed by a run of
   non-whitespace (``\\s*\\S+``); trailing whitespace at the very end of the text is one more word.
   Leading whitespace belongs to the word after it, as in BPE tokenizers (`` world``).
2. Each word is tokenized on its own (no special tokens). A segment's tokens are the concatenation
   of its words' tokens, so a segment's tokens depend only on the segment's own text.
3. Words are packed greedily from the start: a word joins the current segment while the segment
   stays within S tokens; otherwise it starts a new segment. A word longer than S tokens on its own
   is cut into consecutive pieces of S tokens (the only case where a segment ends inside a word).

Consequence (stability): segmentation from a segment boundary on depends only on the text from
that boundary on. So if ``A + B`` has a segment boundary where ``B`` starts, the segments of ``B``
are the same in ``A + B`` as in ``B`` alone, whatever ``A`` is. `segment_texts` segments each
context (e.g. each RAG chunk) on its own, so a chunk's segments — and their cached concept
embeddings — never depend on what precedes it. (Whitespace belongs to the *following* word: a word
boundary lies before whitespace, never after it.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

_WORD = re.compile(r"\s*\S+|\s+$")


class Tokenizer(Protocol):
    def __call__(self, text: list[str], add_special_tokens: bool = ...) -> object: ...


@dataclass(frozen=True)
class Segment:
    """A piece of text and its backend token ids (at most S of them)."""

    text: str
    token_ids: tuple[int, ...]
    start: int  # character offsets in the segmented text
    end: int


def split_words(text: str) -> list[str]:
    """Cut `text` into words as described in the module docstring; ``"".join`` gives `text` back."""
    return _WORD.findall(text)


def segment_text(text: str, tokenizer: Tokenizer, max_tokens: int = 20) -> list[Segment]:
    """Segments of at most `max_tokens` tokens covering `text` exactly (empty text: no segments)."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    words = split_words(text)
    if not words:
        return []
    encoded = tokenizer(words, add_special_tokens=False)["input_ids"]  # type: ignore[index]
    segments: list[Segment] = []
    ids: list[int] = []
    seg_start = pos = 0

    def close(end: int) -> None:
        nonlocal ids, seg_start
        if ids:
            segments.append(Segment(text[seg_start:end], tuple(ids), seg_start, end))
        ids, seg_start = [], end

    for word, word_ids in zip(words, encoded, strict=True):
        word_ids = list(word_ids)
        if len(ids) + len(word_ids) > max_tokens:
            close(pos)
        if len(word_ids) > max_tokens:  # a very long word: pieces of max_tokens tokens
            ends = _piece_ends(tokenizer, word, len(word_ids), max_tokens)
            for i in range(0, len(word_ids) - max_tokens, max_tokens):
                ids = word_ids[i : i + max_tokens]
                close(pos + ends[(i + max_tokens) // max_tokens - 1])
            word_ids = word_ids[(len(word_ids) - 1) // max_tokens * max_tokens :]
        ids.extend(word_ids)
        pos += len(word)
    close(pos)
    return segments


def segment_texts(texts: Sequence[str], tokenizer: Tokenizer, max_tokens: int = 20) -> list[list[Segment]]:
    """Segment each text on its own (each context starts at a segment boundary)."""
    return [segment_text(t, tokenizer, max_tokens) for t in texts]


def _piece_ends(tokenizer: Tokenizer, word: str, n_tokens: int, max_tokens: int) -> list[int]:
    """Character offsets (within `word`) where each full piece of `max_tokens` tokens ends.

    Uses the tokenizer's offset mapping; tokenizers without one put the whole word's text in the
    word's last piece (the earlier pieces get empty text, their token ids are still exact).
    """
    n_pieces = (n_tokens - 1) // max_tokens
    try:
        enc = tokenizer([word], add_special_tokens=False, return_offsets_mapping=True)  # type: ignore[call-arg]
        offsets = enc["offset_mapping"][0]  # type: ignore[index]
    except (TypeError, ValueError, KeyError, NotImplementedError):
        return [0] * n_pieces
    if len(offsets) != n_tokens:
        return [0] * n_pieces
    return [int(offsets[(k + 1) * max_tokens - 1][1]) for k in range(n_pieces)]

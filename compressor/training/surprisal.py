"""Surprisal teacher: a causal LM's self-information per word (Selective Context / LLMLingua-1).

Each window is read by a local causal LM (default: the packaged Qwen2.5-Coder-0.5B, loaded with
the soft compressor's `load_decoder`, which caches a dequantised copy of the GGUF). A token's
self-information is ``-log p(token | everything before it)``; a word's score is the sum over
the LM tokens that start inside it (tokens that start in the whitespace before a word count for
that word). The `rate` share of words with the highest scores is labelled keep. With a question,
the LM reads ``Question: ...`` first, so words that the question makes predictable score lower
and words relevant to it but still surprising score higher.

``precision="bf16"`` runs the LM's matrix products under bfloat16 autocast (weights stay fp32):
about 3x faster on a CPU with AVX-512 BF16 or AMX, with nearly the same labels
(``benchmarks/check_surprisal_bf16.py`` measures how many).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..assets import DEFAULT_DECODER
from ..soft.decoder import load_decoder
from .soft_runtime import resolve_precision
from .teachers import WordLabels
from .wordsplit import EncodedWords, top_k_mask

if TYPE_CHECKING:
    from transformers import PreTrainedModel

PREFIX = "Meeting transcript:\n"


def char_to_word(text_length: int, spans: np.ndarray) -> np.ndarray:
    """Word index of every character; characters between words belong to the next word."""
    owner = np.full(text_length + 1, -1, dtype=np.int64)
    for w, (s, e) in enumerate(spans.tolist()):
        owner[s:e] = w
    # back-fill gaps with the following word (the last gap with the last word)
    nxt = len(spans) - 1 if len(spans) else -1
    for i in range(text_length, -1, -1):
        if owner[i] >= 0:
            nxt = owner[i]
        else:
            owner[i] = nxt
    return owner


def aggregate(
    token_starts: np.ndarray, token_scores: np.ndarray, owner: np.ndarray, n_words: int
) -> np.ndarray:
    """Sum token scores into the words their first character belongs to."""
    scores = np.zeros(n_words, dtype=np.float64)
    if n_words == 0 or len(token_starts) == 0:
        return scores
    idx = owner[np.clip(token_starts, 0, len(owner) - 1)]
    ok = idx >= 0
    np.add.at(scores, idx[ok], token_scores[ok])
    return scores


class SurprisalTeacher:
    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        rate: float = 0.5,
        condition: bool = False,
        max_lm_tokens: int = 1024,
        overlap: int = 128,
        precision: str = "fp32",
    ) -> None:
        if not 0 < rate < 1:
            raise ValueError(f"rate must be in (0, 1), got {rate}")
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
        import torch

        resolve_precision(precision, torch.device("cpu"))  # warns where bf16 would be emulated

        spec = os.fspath(model) if model else DEFAULT_DECODER
        self.model: PreTrainedModel | None
        self.model, self.tokenizer = load_decoder(spec, torch.float32)
        self.rate = rate
        self.condition = condition
        self.max_lm_tokens = max_lm_tokens
        self.overlap = overlap
        self.precision = precision
        self.name = (
            f"surprisal:{spec}"
            + (":question" if condition else "")
            + (":bf16" if precision == "bf16" else "")
        )
        self._torch = torch

    def word_information(self, words: EncodedWords, question: str | None = None) -> np.ndarray:
        """Self-information (nats) of every word of the window."""
        return self.span_information(words.text, words.spans, question)

    def span_information(
        self, text: str, spans: np.ndarray, question: str | None = None, prefix: str = PREFIX
    ) -> np.ndarray:
        """Self-information (nats) of every word of `text`, words given as [n, 2] character spans.

        The LM reads `prefix` + `text` (after ``Question: ...`` when conditioned). A text longer than
        `max_lm_tokens` LM tokens is read in consecutive pieces of that size, each after the last
        `overlap` tokens of the piece before it, so every token but the first is scored.
        """
        torch = self._torch
        head = (f"Question: {question.strip()}\n\n" if question and self.condition else "") + prefix
        enc = self.tokenizer(head + text, return_offsets_mapping=True, add_special_tokens=False)
        ids = list(enc["input_ids"])
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        info = np.zeros(max(len(ids) - 1, 0), dtype=np.float64)  # info[i]: token i + 1
        overlap = min(self.overlap, self.max_lm_tokens // 2)
        start = 1  # first target token of the piece
        while start < len(ids):
            first = max(0, start - max(overlap, 1)) if start > 1 else 0
            end = min(len(ids), first + self.max_lm_tokens)
            with (
                torch.inference_mode(),
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"),
            ):
                logits = self._model()(torch.tensor([ids[first:end]])).logits[0]
            logits = logits.float()
            logp = torch.log_softmax(logits[:-1], dim=-1)
            target = torch.tensor(ids[first + 1 : end])
            piece = (-logp.gather(1, target[:, None])[:, 0]).numpy()
            info[start - 1 : end - 1] = piece[start - 1 - first :]
            start = end
        starts = offsets[1:, 0] - len(head)
        inside = starts >= 0  # tokens of the prefix carry no word
        spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        owner = char_to_word(len(text), spans)
        return aggregate(starts[inside], info[inside], owner, len(spans))

    def label(self, words: EncodedWords, question: str | None = None) -> WordLabels:
        scores = self.word_information(words, question)
        return WordLabels(top_k_mask(scores, self.rate), scores.astype(np.float32))

    def close(self) -> None:
        self.model = None

    def _model(self) -> PreTrainedModel:
        if self.model is None:
            raise RuntimeError("the surprisal teacher is closed")
        return self.model

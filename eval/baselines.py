"""Honest baselines implementing the `Compressor` protocol: truncation, seeded random word drop, and
surprisal word drop (a causal LM's self-information, the token classifier's own teacher).

Both meet the same budget the real compressors get (`rate` of the tiktoken tokens, or
`target_tokens`), and report tiktoken counts of what they actually produced. Several contexts are
treated like one text joined by blank lines (a truncation of a document list keeps its first
documents), except that random drop handles each context on its own at the same rate.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from promptpress.compressor.options import CompressOptions
from promptpress.compressor.result import CompressionResult, ContextResult
from promptpress.compressor.tokens import DEFAULT_ENCODING, get_encoding
from promptpress.compressor.training.lexical import lexical_scores
from promptpress.compressor.training.surprisal import SurprisalTeacher

_WORD = re.compile(r"\s*\S+")
_JOIN = "\n\n"


def _contexts(context: str | Sequence[str]) -> list[str]:
    if isinstance(context, str):
        return [context]
    if not all(isinstance(c, str) for c in context):
        raise TypeError("context must be a string or a sequence of strings")
    return list(context)


def _options(options: CompressOptions | None, overrides: dict[str, Any]) -> CompressOptions:
    options = options or CompressOptions()
    return options.with_overrides(**overrides) if overrides else options.validate()


def _budget(total: int, options: CompressOptions) -> int:
    if options.target_tokens is not None:
        return min(total, options.target_tokens)
    return min(total, max(1, round(total * options.rate)))


class _Baseline:
    name = "baseline"
    method = "baseline"

    def __init__(self, encoding: str = DEFAULT_ENCODING) -> None:
        self.encoding = encoding
        self._enc = get_encoding(encoding)

    def count(self, text: str) -> int:
        return len(self._enc.encode_ordinary(text))

    def _result(self, originals: list[str], outputs: list[str]) -> CompressionResult:
        contexts = [
            ContextResult(
                index=i, text=out, original_tokens=self.count(orig), compressed_tokens=self.count(out)
            )
            for i, (orig, out) in enumerate(zip(originals, outputs, strict=True))
        ]
        text = _JOIN.join(out for out in outputs if out)
        return CompressionResult(
            compressed_text=text,
            contexts=contexts,
            original_tokens=self.count(_JOIN.join(originals)),
            compressed_tokens=self.count(text),
            model=self.name,
            method=self.method,
        )


class TruncationCompressor(_Baseline):
    """Keep the first tokens (`keep="head"`) or the first and last halves (`keep="head_tail"`,
    LongBench's middle truncation) of the joined contexts."""

    def __init__(self, keep: Literal["head", "head_tail"] = "head", encoding: str = DEFAULT_ENCODING) -> None:
        if keep not in ("head", "head_tail"):
            raise ValueError(f"keep must be 'head' or 'head_tail', got {keep!r}")
        super().__init__(encoding)
        self.keep = keep
        self.name = "truncate" if keep == "head" else "truncate_head_tail"
        self.method = self.name

    def compress(
        self, context: str | Sequence[str], options: CompressOptions | None = None, /, **overrides: Any
    ) -> CompressionResult:
        originals = _contexts(context)
        opts = _options(options, overrides)
        ids = [self._enc.encode_ordinary(c) for c in originals]
        budget = _budget(sum(len(i) for i in ids), opts)
        head = budget if self.keep == "head" else (budget + 1) // 2
        heads = _allot([len(i) for i in ids], head)
        tails = _allot([len(i) for i in reversed(ids)], budget - head)[::-1]
        outputs = []
        for text, tokens, h, t in zip(originals, ids, heads, tails, strict=True):
            if h + t >= len(tokens):
                outputs.append(text)
            else:
                outputs.append(self._enc.decode(tokens[:h]) + (self._enc.decode(tokens[-t:]) if t else ""))
        return self._result(originals, outputs)


def _allot(counts: Sequence[int], budget: int) -> list[int]:
    """Spend `budget` on `counts` in order: how many tokens each item keeps."""
    kept = []
    for n in counts:
        kept.append(min(n, budget))
        budget -= kept[-1]
    return kept


class _WordDropCompressor(_Baseline):
    """Drop whole words until each context fits its share of the budget; subclasses rank the words."""

    def _order(self, text: str, words: list[str], lengths: list[int]) -> list[int]:
        """Word indices, the first to keep first."""
        raise NotImplementedError

    def _drop(self, text: str, budget: int) -> str:
        words = _WORD.findall(text)
        lengths = [len(self._enc.encode_ordinary(w)) for w in words]
        if sum(lengths) <= budget:
            return text
        keep: set[int] = set()
        used = 0
        for i in self._order(text, words, lengths):
            if used + lengths[i] <= budget:
                keep.add(i)
                used += lengths[i]
        return "".join(words[i] for i in sorted(keep)).strip()

    def compress(
        self, context: str | Sequence[str], options: CompressOptions | None = None, /, **overrides: Any
    ) -> CompressionResult:
        originals = _contexts(context)
        opts = _options(options, overrides)
        counts = [self.count(c) for c in originals]
        total = sum(counts)
        budget = _budget(total, opts)
        outputs = [
            self._drop(text, max(1, round(budget * n / total)) if total else 0) if n else text
            for text, n in zip(originals, counts, strict=True)
        ]
        return self._result(originals, outputs)


class RandomDropCompressor(_WordDropCompressor):
    """Drop whole words at random until each context fits its share of the budget.

    The choice depends only on `seed` and the text, not on call order, so runs are reproducible
    whatever the concurrency.
    """

    name = "random"
    method = "random_drop"

    def __init__(self, seed: int = 0, encoding: str = DEFAULT_ENCODING) -> None:
        super().__init__(encoding)
        self.seed = seed

    def _order(self, text: str, words: list[str], lengths: list[int]) -> list[int]:
        digest = hashlib.sha256(f"{self.seed}\0{text}".encode()).hexdigest()
        order = list(range(len(words)))
        random.Random(digest).shuffle(order)
        return order


class SurprisalDropCompressor(_WordDropCompressor):
    """Keep the words a causal LM finds most surprising (Selective Context / LLMLingua-1's signal).

    This is the surprisal teacher of `promptpress train` used as a compressor, so the trained token
    classifier can be compared with its teacher on the same task. Words are whitespace-separated;
    a word's score is the summed self-information of its LM tokens (long texts are read in pieces
    of `max_lm_tokens`, see `SurprisalTeacher.span_information`). The highest-scoring words are kept,
    in their original order, until each context's share of the budget is spent. Scores of the last
    few texts are kept, so other rates of the same context cost no second LM pass. Slow: a 0.5B LM
    in fp32 on two CPU cores reads a few hundred tokens a second.
    """

    name = "surprisal"
    method = "surprisal_drop"

    def __init__(
        self, model: str | None = None, max_lm_tokens: int = 1024, encoding: str = DEFAULT_ENCODING
    ) -> None:
        super().__init__(encoding)
        self.model = model
        self.max_lm_tokens = max_lm_tokens
        self._teacher: Any = None
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def scores(self, text: str) -> np.ndarray:
        """Self-information (nats) of each whitespace-separated word of `text`."""
        if self._teacher is None:
            self._teacher = SurprisalTeacher(self.model, max_lm_tokens=self.max_lm_tokens)
        spans = np.array([m.span() for m in re.finditer(r"\S+", text)], dtype=np.int64).reshape(-1, 2)
        return np.asarray(self._teacher.span_information(text, spans, prefix=""), dtype=np.float64)

    def _order(self, text: str, words: list[str], lengths: list[int]) -> list[int]:
        key = hashlib.sha256(text.encode()).hexdigest()
        if key not in self._recent:
            self._recent[key] = self.scores(text)
            while len(self._recent) > 8:
                self._recent.popitem(last=False)
        return np.argsort(-self._recent[key], kind="stable").tolist()


class LexicalDropCompressor(_WordDropCompressor):
    """Keep the words the lexical teacher (`training.lexical`) scores highest: rare words, numbers,
    names and their neighbours, from word statistics alone (the `train label --teacher lexical`
    signal used as a compressor, for comparing a student with its teacher)."""

    name = "lexical"
    method = "lexical_drop"

    def _order(self, text: str, words: list[str], lengths: list[int]) -> list[int]:
        spans, at = [], 0
        for word in words:  # each piece is whitespace + word: score the word itself
            start = at + len(word) - len(word.lstrip())
            spans.append((start, at + len(word)))
            at += len(word)
        scores = lexical_scores(text, np.array(spans, dtype=np.int64).reshape(-1, 2))
        return np.argsort(-scores, kind="stable").tolist()

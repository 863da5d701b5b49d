"""Question-aware compression: the budget follows relevance to the question.

The token classifier reads no question. When one is known (RAG, long-document QA), LongLLMLingua's
coarse step helps a great deal: score each unit of the input by its relevance to the question and
let relevant units keep most of their words while off-topic ones keep few. Here relevance is the
cosine similarity of sentence embeddings (default: the packaged all-MiniLM-L6-v2 through
sentence-transformers, offline), and the units are the contexts given, or the paragraphs (blank
lines) of a single long context. `split_budget` turns scores into per-unit token budgets that add
up to the call's budget; the classifier then compresses every unit to its share in one batched call
(`CompressOptions.context_budgets`).

    from promptpress.compressor import load_compressor
    from promptpress.compressor.query_aware import QuestionAwareCompressor

    qa = QuestionAwareCompressor(load_compressor())
    qa.compress_for_question(document, "Who signed the treaty?", 0.33).compressed_text

The LangChain document compressor (`promptpress.adapters`) does the same over retrieved documents.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .assets import resolve
from .options import CompressOptions, Compressor, OptionsError
from .quiet import quiet_transformers
from .result import CompressionResult
from .tokens import count_tokens

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "QuestionAwareCompressor",
    "cosine_scores",
    "load_sentence_model",
    "paragraphs",
    "sentence_embedder",
    "split_budget",
]

DEFAULT_EMBEDDING_MODEL = "package:all-minilm-l6-v2"
Embed = Callable[[list[str]], list[list[float]]]  # texts -> vectors (any scale: cosines are taken)

_PARAGRAPHS = re.compile(r"\n\s*\n")
_lock = threading.Lock()
_models: dict[str, tuple[Any, threading.Lock]] = {}  # spec -> (SentenceTransformer, its call lock)


def load_sentence_model(spec: str = DEFAULT_EMBEDDING_MODEL) -> tuple[Any, threading.Lock]:
    """The sentence-transformers model of an asset spec or directory (loaded once per process, offline)
    and the lock its calls must hold (a fast tokenizer must not be used by two threads at once)."""
    with _lock:
        if spec not in _models:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError(
                    "sentence embeddings need sentence-transformers: pip install 'promptpress[langchain]'"
                ) from exc

            path = str(resolve(spec))
            with quiet_transformers():
                model = SentenceTransformer(path, device="cpu")
            _models[spec] = (model, threading.Lock())
        return _models[spec]


def sentence_embedder(spec: str = DEFAULT_EMBEDDING_MODEL, *, batch_size: int = 32) -> Embed:
    """`Embed` on a local sentence-transformers model: L2-normalised vectors."""

    def embed(texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model, call_lock = load_sentence_model(spec)
        with call_lock:
            vectors = model.encode(
                list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return vectors.astype(float).tolist()  # type: ignore[no-any-return]

    return embed


def cosine_scores(query: Sequence[float], documents: Sequence[Sequence[float]]) -> list[float]:
    """Cosine similarity of each document vector to the query vector, in [-1, 1]."""
    qn = math.sqrt(sum(x * x for x in query)) or 1.0
    out = []
    for vector in documents:
        dn = math.sqrt(sum(x * x for x in vector)) or 1.0
        out.append(sum(a * b for a, b in zip(query, vector)) / (qn * dn))
    return out


def paragraphs(text: str) -> list[str]:
    """The non-empty paragraphs of `text` (cut at blank lines), stripped."""
    return [p.strip() for p in _PARAGRAPHS.split(text) if p.strip()]


def split_budget(
    tokens: Sequence[int],
    scores: Sequence[float],
    budget: int,
    *,
    temperature: float = 0.1,
    min_rate: float = 0.1,
) -> list[int]:
    """Per-unit token targets summing to about `budget`, larger for more relevant units.

    Unit i keeps ``clip(c * exp((s_i - max s) / temperature), min_rate, 1)`` of its ``tokens[i]``,
    with the scale ``c`` found by bisection so the targets add up to `budget`. A small `temperature`
    favours the top units strongly; a large one tends to the same rate for all.
    """
    if len(tokens) != len(scores):
        raise ValueError(f"{len(tokens)} token counts for {len(scores)} scores")
    if temperature <= 0 or not 0 < min_rate <= 1:
        raise ValueError("temperature must be > 0 and min_rate in (0, 1]")
    total = sum(tokens)
    if not tokens or budget >= total:
        return list(tokens)
    if budget <= min_rate * total:  # even the floor does not fit: the same rate for everyone
        return [max(1, round(n * budget / total)) if n else 0 for n in tokens]
    top = max(scores)
    log_weights = [(s - top) / temperature for s in scores]

    def rates(log_scale: float) -> list[float]:
        return [min(1.0, max(min_rate, math.exp(min(0.0, log_scale + lw)))) for lw in log_weights]

    def kept(log_scale: float) -> float:
        return sum(n * r for n, r in zip(tokens, rates(log_scale)))

    # at log(min_rate) every unit sits at the floor (< budget); at -min(log_weights) all keep everything
    low, high = math.log(min_rate), -min(log_weights)
    for _ in range(60):
        mid = (low + high) / 2
        if kept(mid) < budget:
            low = mid
        else:
            high = mid
    return [max(1, round(n * r)) if n else 0 for n, r in zip(tokens, rates(high))]


class QuestionAwareCompressor:
    """`compressor` behind a relevance-weighted budget (see the module docstring).

    `embed` maps texts to vectors (default: `sentence_embedder()`, loaded on first use);
    `temperature` and `min_rate` shape the split (`split_budget`).
    """

    def __init__(
        self,
        compressor: Compressor,
        embed: Embed | None = None,
        *,
        temperature: float = 0.1,
        min_rate: float = 0.1,
    ) -> None:
        if temperature <= 0 or not 0 < min_rate <= 1:
            raise ValueError("temperature must be > 0 and min_rate in (0, 1]")
        self.compressor = compressor
        self.embed = embed or sentence_embedder()
        self.temperature = temperature
        self.min_rate = min_rate

    def scores(self, question: str, texts: Sequence[str]) -> list[float]:
        """Cosine similarity of each text to the question (embedded apart: no padding to the texts)."""
        return cosine_scores(self.embed([question])[0], self.embed(list(texts)))

    def compress_for_question(
        self,
        context: str | Sequence[str],
        question: str,
        rate: float = 0.5,
        *,
        options: CompressOptions | None = None,
    ) -> CompressionResult:
        """Compress `context` (one text: by paragraphs; a list: by context) for `question`.

        `options` may carry `target_tokens` or other settings; its `rate` is replaced by `rate`.
        One unit, or a blank question, is compressed as the plain compressor would.
        """
        if not isinstance(question, str):
            raise OptionsError(f"question must be a string, got {type(question).__name__}")
        opts = (options or CompressOptions()).with_overrides(rate=rate)
        if opts.context_budgets is not None:
            raise OptionsError("context_budgets are what the question decides; do not pass them")
        if opts.budget != "global":
            raise OptionsError("question-aware budgets need budget='global' (each context gets its share)")
        units = paragraphs(context) if isinstance(context, str) else list(context)
        if len(units) < 2 or not question.strip():
            return self.compressor.compress(context, opts)
        tokens = [count_tokens(u) for u in units]
        budget = opts.target_tokens if opts.target_tokens is not None else round(opts.rate * sum(tokens))
        targets = split_budget(
            tokens, self.scores(question, units), budget, temperature=self.temperature, min_rate=self.min_rate
        )
        budgets = tuple(max(1, int(t)) for t in targets)
        return self.compressor.compress(
            units, opts.with_overrides(target_tokens=None, budget="global", context_budgets=budgets)
        )

"""Question-aware compression: the budget follows relevance to the question.

The token classifier reads no question. When one is known (RAG, long-document QA), LongLLMLingua's
coarse step helps a great deal: score each unit of the input by its relevance to the question and
let relevant units keep most of their words while off-topic ones keep few. Here relevance is the
cosine similarity of sentence embeddings (default: the packaged all-MiniLM-L6-v2 through
sentence-transformers, offline), and the units are the contexts given, or the paragraphs (blank
lines) of a single long context. `budget.allocate_budget` splits the call's budget by the scores
(`split_budget`); the classifier then compresses every unit to its share in one batched call
(`CompressOptions.context_budgets`).

    from promptpress.compressor import load_compressor
    from promptpress.compressor.query_aware import QuestionAwareCompressor

    qa = QuestionAwareCompressor(load_compressor())
    qa.compress_for_question(document, "Who signed the treaty?", 0.33).compressed_text

The LangChain document compressor (`promptpress.adapters`) scores retrieved documents with its own
embeddings and compresses them through `QuestionAwareCompressor.compress_by_relevance`.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .assets import resolve
from .budget import allocate_budget, check_split, split_budget
from .options import CompressOptions, Compressor, OptionsError
from .quiet import quiet_transformers
from .result import CompressionResult
from .tokens import DEFAULT_ENCODING, count_tokens

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
        return vectors.astype(float).tolist()

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


class QuestionAwareCompressor:
    """`compressor` behind a relevance-weighted budget (see the module docstring).

    `embed` maps texts to vectors (default: `sentence_embedder()`, loaded on first use);
    `temperature` and `min_rate` shape the split (`split_budget`). Budgets are counted in the
    compressor's own tiktoken encoding when it has one (``compressor.encoding``).
    """

    def __init__(
        self,
        compressor: Compressor,
        embed: Embed | None = None,
        *,
        temperature: float = 0.1,
        min_rate: float = 0.1,
    ) -> None:
        check_split(temperature, min_rate)
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
        return self.compress_by_relevance(units, self.scores(question, units), opts)

    def budgets(
        self, texts: Sequence[str], relevance: Sequence[float], options: CompressOptions
    ) -> tuple[int, ...]:
        """Each text's token budget: the call's budget (`options`) split by `relevance`."""
        tokens = [self._count(t) for t in texts]
        budget = allocate_budget(
            tokens, options, relevance, temperature=self.temperature, min_rate=self.min_rate
        )
        assert budget.per_context is not None  # relevance always splits the budget
        return budget.per_context

    def compress_by_relevance(
        self, texts: Sequence[str], relevance: Sequence[float], options: CompressOptions
    ) -> CompressionResult:
        """`texts` in one call, each compressed to its share of the budget by `relevance` (one score
        per text, e.g. `scores`); `options` needs ``budget="global"``."""
        budgets = self.budgets(texts, relevance, options)
        return self.compressor.compress(
            list(texts), options.with_overrides(target_tokens=None, context_budgets=budgets)
        )

    def _count(self, text: str) -> int:
        encoding = getattr(self.compressor, "encoding", None)
        return count_tokens(text, encoding.name if encoding is not None else DEFAULT_ENCODING)

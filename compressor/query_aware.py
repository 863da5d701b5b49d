"""Question-aware compression: the budget follows relevance to the question.

The token classifier reads no question. When one is known (RAG, long-document QA), LongLLMLingua's
coarse step helps a great deal: score each unit of the input by its relevance to the question and
let relevant units keep most of their words while off-topic ones keep few. Here relevance is the
cosine similarity of sentence embeddings (default: the packaged all-MiniLM-L6-v2 through
sentence-transformers, offline; ``sentence_embedder("package:all-mpnet-base-v2")`` is the bigger
packaged alternative) plus ``lexical_weight`` x the BM25 of the question's words
(`lexical_relevance`, scaled to 1 for the call's best unit), and the units are groups of sentences
(at least ~240 characters, never across a paragraph break; ``units="paragraphs"``: the paragraphs,
the earlier unit). `budget.allocate_budget` splits the call's budget by the scores
(`split_budget`); the classifier then compresses every unit to its share in one batched call
(`CompressOptions.context_budgets`). Numbers are kept or dropped whole by their score (structure
policy ``whole``) instead of always kept, unless the options name a policy for them: a number in
an off-topic unit is no longer paid for by the relevant ones (``numbers="keep"``: always kept).

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
from dataclasses import replace
from typing import Any, Literal

from .assets import resolve
from .budget import allocate_budget, check_split, split_budget
from .embed_cache import DEFAULT_MAX_BYTES, CachedEmbed
from .lexical_relevance import bm25_scores
from .options import CompressOptions, Compressor, OptionsError, StructureSetting
from .quiet import quiet_transformers
from .render import SEPARATOR
from .result import CompressionResult, ContextResult
from .structure import POLICIES, Policy
from .tokens import DEFAULT_ENCODING, count_tokens

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_LEXICAL_WEIGHT",
    "UNITS",
    "QuestionAwareCompressor",
    "cosine_scores",
    "load_sentence_model",
    "paragraphs",
    "question_aware",
    "sentence_embedder",
    "split_budget",
]

DEFAULT_EMBEDDING_MODEL = "package:all-minilm-l6-v2"
DEFAULT_LEXICAL_WEIGHT = 0.2  # BM25 (best unit = 1) added to the cosines: docs/compression.md
Embed = Callable[[list[str]], list[list[float]]]  # texts -> vectors (any scale: cosines are taken)
Units = Literal["sentences", "paragraphs"]
UNITS: tuple[str, ...] = ("sentences", "paragraphs")

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")  # a blank line
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")  # the whitespace after a sentence
MIN_UNITS = 4  # fewer paragraphs than this: relevance is scored on sentence groups instead
MIN_GROUP_CHARS = 240  # a sentence group holds at least this many characters (~50 tokens)
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
    return [p.strip() for p in PARAGRAPH_BREAK.split(text) if p.strip()]


def _tight_spans(
    text: str, separator: re.Pattern[str], start: int = 0, end: int | None = None
) -> list[tuple[int, int]]:
    """(start, end) of the non-blank pieces of text[start:end] between `separator` matches, stripped."""
    end = len(text) if end is None else end
    spans, pos = [], start
    for m in [*separator.finditer(text, start, end), None]:
        stop = m.start() if m is not None else end
        piece = text[pos:stop]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((pos + lead, pos + len(piece.rstrip())))
        if m is not None:
            pos = m.end()
    return spans


def _sentence_groups(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Consecutive sentences of text[start:end] grouped to at least `MIN_GROUP_CHARS` characters."""
    groups: list[tuple[int, int]] = []
    for a, b in _tight_spans(text, SENTENCE_END, start, end):
        if groups and groups[-1][1] - groups[-1][0] < MIN_GROUP_CHARS:
            groups[-1] = (groups[-1][0], b)
        else:
            groups.append((a, b))
    if len(groups) > 1 and groups[-1][1] - groups[-1][0] < MIN_GROUP_CHARS // 2:
        last = groups.pop()
        groups[-1] = (groups[-1][0], last[1])
    return groups


def split_units(
    text: str, min_units: int = MIN_UNITS, units: Units = "sentences"
) -> tuple[list[str], list[str]]:
    """The units relevance is scored on, and the original whitespace before each unit ("" before the
    first), to put the compressed units back together. ``"sentences"``: groups of consecutive
    sentences of at least `MIN_GROUP_CHARS` characters within each paragraph; ``"paragraphs"``: the
    paragraphs, or sentence groups when there are fewer than `min_units` (a news article, a review)."""
    if units not in UNITS:
        raise OptionsError(f"units must be one of {UNITS}, got {units!r}")
    spans = _tight_spans(text, PARAGRAPH_BREAK)
    if units == "sentences" or len(spans) < min_units:
        spans = [group for a, b in spans for group in _sentence_groups(text, a, b)]
    pieces = [text[a:b] for a, b in spans]
    gaps = [""] + [text[spans[i - 1][1] : spans[i][0]] for i in range(1, len(spans))]
    return pieces, gaps


def _joined(texts: Sequence[str], gaps: Sequence[str]) -> str:
    """Compressed units joined with the original whitespace between them (dropped units skipped)."""
    out: list[str] = []
    for text, gap in zip(texts, gaps):
        if text:
            out.append((gap or " ") if out else "")
            out.append(text)
    return "".join(out)


class QuestionAwareCompressor:
    """`compressor` behind a relevance-weighted budget (see the module docstring).

    `embed` maps texts to vectors (default: `sentence_embedder()`, loaded on first use);
    `lexical_weight` is the weight of the question's BM25 (0: embeddings only); `units` how a text is
    cut (`split_units`); `temperature` and `min_rate` shape the split (`split_budget`); `numbers` is
    the structure policy of numbers when the call's options name none (``"whole"``: kept or dropped
    whole by their score; ``"keep"``: always kept, as question-blind compression does). Budgets are
    counted in the compressor's own tiktoken encoding when it has one (``compressor.encoding``).
    """

    def __init__(
        self,
        compressor: Compressor,
        embed: Embed | None = None,
        *,
        temperature: float = 0.1,
        min_rate: float = 0.1,
        lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
        units: Units = "sentences",
        numbers: Policy = "whole",
        embed_cache_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        check_split(temperature, min_rate)
        if not (math.isfinite(lexical_weight) and lexical_weight >= 0):
            raise ValueError(f"lexical_weight must be a finite number >= 0, got {lexical_weight}")
        if units not in UNITS:
            raise ValueError(f"units must be one of {UNITS}, got {units!r}")
        if numbers not in POLICIES:
            raise ValueError(f"numbers must be one of {POLICIES}, got {numbers!r}")
        self.compressor = compressor
        self.embed: Embed = CachedEmbed(embed or sentence_embedder(), embed_cache_bytes)
        self.temperature = temperature
        self.min_rate = min_rate
        self.lexical_weight = lexical_weight
        self.units: Units = units
        self.numbers: Policy = numbers

    def scores(self, question: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to the question: the cosine similarity of their embeddings
        (embedded apart: no padding to the texts), plus `lexical_weight` x the question's BM25 over
        `texts`, scaled so that the best text scores 1."""
        cosines = cosine_scores(self.embed([question])[0], self.embed(list(texts)))
        if not self.lexical_weight:
            return cosines
        lexical = bm25_scores(question, texts)
        top = max(lexical, default=0.0) or 1.0
        return [c + self.lexical_weight * x / top for c, x in zip(cosines, lexical)]

    def compress_for_question(
        self,
        context: str | Sequence[str],
        question: str,
        rate: float = 0.5,
        *,
        options: CompressOptions | None = None,
    ) -> CompressionResult:
        """Compress `context` for `question`: every text is cut into units (`split_units`: sentence
        groups, or paragraphs), all units share the budget by relevance, and each text is put back
        together from its compressed units with its own whitespace.

        One text: the result's contexts are its units (with their relevance). A list: one result
        context per text (relevance: its best unit's). `options` may carry `target_tokens` or other
        settings; its `rate` is replaced by `rate`. A blank question, or a single unit, is compressed
        as the plain compressor would.
        """
        if not isinstance(question, str):
            raise OptionsError(f"question must be a string, got {type(question).__name__}")
        opts = (options or CompressOptions()).with_overrides(rate=rate)
        if opts.context_budgets is not None:
            raise OptionsError("context_budgets are what the question decides; do not pass them")
        if opts.budget != "global":
            raise OptionsError("question-aware budgets need budget='global' (each context gets its share)")
        texts = [context] if isinstance(context, str) else list(context)
        split = [split_units(t, units=self.units) for t in texts]
        flat = [unit for units, _ in split for unit in units]
        if len(flat) < 2 or not question.strip():
            return self.compressor.compress(context, opts)
        relevance = self.scores(question, flat)
        inner = self.compress_by_relevance(flat, relevance, opts)
        return self._reassemble(inner, texts, split, relevance, per_unit=isinstance(context, str))

    def _reassemble(
        self,
        inner: CompressionResult,
        texts: list[str],
        split: list[tuple[list[str], list[str]]],
        relevance: list[float],
        *,
        per_unit: bool,
    ) -> CompressionResult:
        """The units' result as the caller's texts: each text rebuilt from its units' outputs."""
        outputs = [c.text if c.kept else "" for c in inner.contexts]
        if per_unit:  # one text: its units are the contexts
            contexts = [replace(c, relevance=r) for c, r in zip(inner.contexts, relevance)]
            joined = _joined(outputs, split[0][1])
        else:
            contexts, pos = [], 0
            for i, (units, gaps) in enumerate(split):
                mine = range(pos, pos + len(units))
                pos += len(units)
                text = _joined([outputs[k] for k in mine], gaps)
                best = max((relevance[k] for k in mine), default=None)
                contexts.append(
                    ContextResult(
                        i, text, self._count(texts[i]), self._count(text), bool(text), relevance=best
                    )
                )
            joined = SEPARATOR.join(c.text for c in contexts if c.kept)
        return replace(
            inner,
            compressed_text=joined,
            contexts=contexts,
            original_tokens=self._count(SEPARATOR.join(texts)),
            compressed_tokens=self._count(joined),
        )

    def budgets(
        self, texts: Sequence[str], relevance: Sequence[float], options: CompressOptions
    ) -> tuple[int, ...]:
        """Each text's token budget: the call's budget (`options`) split by `relevance`."""
        per_context, _ = self._split(texts, relevance, options)
        return per_context

    def _split(
        self, texts: Sequence[str], relevance: Sequence[float], options: CompressOptions
    ) -> tuple[tuple[int, ...], int]:
        """The per-text budgets and the call's total they share."""
        tokens = [self._count(t) for t in texts]
        budget = allocate_budget(
            tokens, options, relevance, temperature=self.temperature, min_rate=self.min_rate
        )
        assert budget.per_context is not None  # relevance always splits the budget
        return budget.per_context, budget.total

    def compress_by_relevance(
        self, texts: Sequence[str], relevance: Sequence[float], options: CompressOptions
    ) -> CompressionResult:
        """`texts` in one call, each compressed to its share of the budget by `relevance` (one score
        per text, e.g. `scores`); `options` needs ``budget="global"``."""
        per_context, total = self._split(texts, relevance, options)
        # shares of one budget: units whose verbatim spans (code, URLs...) overrun their share take
        # the excess from the others
        return self.compressor.compress(
            list(texts),
            options.with_overrides(
                target_tokens=max(1, total), context_budgets=per_context, structure=self._structure(options)
            ),
        )

    def _structure(self, options: CompressOptions) -> StructureSetting:
        """The call's structure setting with `numbers` as the numbers' policy unless it names one."""
        setting = options.structure
        if setting == "off" or any(kind == "number" for kind, _ in setting):
            return setting
        return (*setting, ("number", self.numbers))

    def _count(self, text: str) -> int:
        encoding = getattr(self.compressor, "encoding", None)
        return count_tokens(text, encoding.name if encoding is not None else DEFAULT_ENCODING)


_question_aware: dict[tuple[int, str], QuestionAwareCompressor] = {}
_question_aware_lock = threading.Lock()


def question_aware(
    compressor: Compressor, embedding_model: str = DEFAULT_EMBEDDING_MODEL
) -> QuestionAwareCompressor:
    """One `QuestionAwareCompressor` per compressor object and relevance model (`embedding_model`, an
    asset spec or a local sentence-transformers directory) in this process, so the service's runner
    and every adapter using that compressor share its embedding cache."""
    key = (id(compressor), embedding_model)
    with _question_aware_lock:
        qa = _question_aware.get(key)
        if qa is None or qa.compressor is not compressor:
            qa = QuestionAwareCompressor(compressor, sentence_embedder(embedding_model))
            _question_aware[key] = qa
        return qa

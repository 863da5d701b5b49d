"""LLMLingua-2-style compression: an encoder labels each word keep or drop.

The pipeline, one step per module:
tokenise once with offsets -> cut windows (`windows`) -> score windows in length-sorted batches
(`runtime`, optionally through a segment cache) -> group tokens into words and forced units
(`words`, `units`) -> choose what to keep for the budget (`budget`) -> copy kept words out of the
original text (`render`).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptpress.cache import ArrayCodec, KeySpace, get_or_compute

from .budget import (
    context_scores,
    drop_consecutive_forced,
    select_contexts,
    select_global,
    select_window,
    window_floor,
)
from .model import DEFAULT_MODEL, LoadedModel, load_token_classifier
from .options import CompressOptions, OptionsError
from .render import gap_levels, render
from .result import CompressionResult, ContextResult, WordDecision
from .runtime import Runtime, make_runtime
from .tokens import DEFAULT_ENCODING, get_encoding
from .units import Units, build_units, find_occurrences, strip_keep_markers
from .windows import end_flags, greedy_windows, stable_windows
from .words import detect_word_rule, strip_leading_space

SEPARATOR = "\n\n"
CACHE_VERSION = "tc-probs-1"  # bump when what is cached for a window changes
log = logging.getLogger("promptpress.compressor")


@dataclass
class _Context:
    text: str  # markers removed
    keep_spans: list[tuple[int, int]]
    ids: np.ndarray
    tokens: list[str]
    offsets: np.ndarray
    windows: list[tuple[int, int]]


class TokenClassifierCompressor:
    """Compress contexts with a keep/drop token classifier.

    >>> compressor = TokenClassifierCompressor()                     # shipped default, CPU
    >>> result = compressor.compress(long_text, rate=0.33)
    >>> result.compressed_text, result.original_tokens, result.compressed_tokens

    `backend` picks the inference path ("torch", "int8", "onnx", "onnx-int8"); `cache` is an
    optional segment cache (`promptpress.cache`) holding each window's token probabilities, so a
    window seen before costs no model call whatever rate is asked.
    """

    method = "token_classifier"

    def __init__(
        self,
        model: str | os.PathLike[str] | LoadedModel = DEFAULT_MODEL,
        *,
        backend: str = "torch",
        threads: int | None = None,
        batch_size: int = 8,
        max_batch_tokens: int = 4096,
        encoding: str = DEFAULT_ENCODING,
        options: CompressOptions | None = None,
        cache: Any = None,
    ) -> None:
        self.loaded = model if isinstance(model, LoadedModel) else load_token_classifier(model)
        self.runtime: Runtime = make_runtime(self.loaded, backend, threads)
        self.backend = backend
        self.rule = detect_word_rule(self.loaded.tokenizer)
        self.encoding = get_encoding(encoding)
        self.default_options = (options or CompressOptions()).validate()
        self.batch_size = max(1, batch_size)
        self.max_batch_tokens = max(self.loaded.max_length, max_batch_tokens)
        self.cache = cache
        self._cache_failed = False
        self._keyspace = _keyspace(self.loaded.fingerprint, backend) if cache is not None else None
        tokenizer = self.loaded.tokenizer
        self._cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        self._sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._specials = int(self._cls is not None) + int(self._sep is not None)
        self._tokenizer = copy.deepcopy(tokenizer.backend_tokenizer)
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._lock = threading.Lock()  # the fast tokenizer and torch modules are shared across threads
        self.name = f"{self.method}:{self.loaded.display_name}"

    # ------------------------------------------------------------------ public API
    @property
    def trained(self) -> bool:
        return self.loaded.trained_head

    def compress(
        self, context: str | Sequence[str], options: CompressOptions | None = None, /, **overrides: Any
    ) -> CompressionResult:
        opts = (
            (options or self.default_options).with_overrides(**overrides)
            if overrides
            else (options or self.default_options).validate()
        )
        texts = _as_contexts(context)
        ctxs = self._prepare(texts, opts)
        units = self._units(ctxs, opts)
        original_texts = [c.text for c in ctxs]
        original_tokens = self._count(SEPARATOR.join(original_texts))
        context_tokens = [self._count(t) for t in original_texts]
        n_contexts = len(ctxs)

        context_keep = np.ones(n_contexts, dtype=bool)
        scores = context_scores(units)
        if opts.context_filter and n_contexts > 1:
            context_rate = opts.context_rate
            if context_rate is None:
                if opts.target_tokens is not None:
                    context_rate = min(1.0, 2 * opts.target_tokens / max(original_tokens, 1))
                else:
                    context_rate = (opts.rate + 1.0) / 2
            context_keep = select_contexts(scores, context_rate, opts.force_contexts)

        if opts.context_budgets is not None and len(opts.context_budgets) != n_contexts:
            raise OptionsError(
                f"context_budgets has {len(opts.context_budgets)} entries for {n_contexts} contexts"
            )
        budget = opts.target_tokens if opts.target_tokens is not None else round(opts.rate * original_tokens)
        if opts.context_budgets is not None:
            budget = sum(b for b, k in zip(opts.context_budgets, context_keep) if k)
        levels = [gap_levels(u.text, u.spans) for u in units]

        def rendered(masks: list[np.ndarray]) -> list[str]:
            return [
                render(u.text, u.spans, m, lv) if k else ""
                for u, m, lv, k in zip(units, masks, levels, context_keep)
            ]

        def measure(masks: list[np.ndarray]) -> int:
            return self._count(SEPARATOR.join(t for t, k in zip(rendered(masks), context_keep) if k))

        kept_units = [u for u, k in zip(units, context_keep) if k]
        if opts.context_budgets is None:
            no_op = budget >= original_tokens
        else:
            no_op = all(b >= n for b, n in zip(opts.context_budgets, context_tokens))
        if no_op and context_keep.all():  # nothing to remove: return the input as is
            masks = [np.ones(len(u), dtype=bool) for u in units]
            out_texts = list(original_texts)
        else:
            if opts.budget == "window":
                reserved = sum(n for n, k in zip(context_tokens, context_keep) if k)
                rate = min(1.0, opts.target_tokens / max(reserved, 1)) if opts.target_tokens else opts.rate
                masks = [select_window(u, rate) for u in units]
                if opts.drop_consecutive:
                    masks = [
                        drop_consecutive_forced(u, m, u.probs > window_floor(u, rate))
                        for u, m in zip(units, masks)
                    ]
            else:
                post = None
                if opts.drop_consecutive:

                    def post(ms: list[np.ndarray]) -> list[np.ndarray]:
                        return [drop_consecutive_forced(u, m, m) for u, m in zip(kept_units, ms)]

                if opts.context_budgets is None:
                    chosen = select_global(
                        kept_units,
                        budget,
                        lambda ms: measure(_expand(ms, context_keep, units)),
                        postprocess=post,
                    )
                else:  # each context meets its own budget
                    kept_levels = [lv for lv, k in zip(levels, context_keep) if k]
                    kept_budgets = [b for b, k in zip(opts.context_budgets, context_keep) if k]
                    chosen = [
                        select_global(
                            [u],
                            b,
                            lambda ms, u=u, lv=lv: self._count(render(u.text, u.spans, ms[0], lv)),
                            postprocess=(lambda ms, u=u: [drop_consecutive_forced(u, ms[0], ms[0])])
                            if opts.drop_consecutive
                            else None,
                        )[0]
                        for u, lv, b in zip(kept_units, kept_levels, kept_budgets)
                    ]
                masks = _expand(chosen, context_keep, units)
            out_texts = rendered(masks)

        final_texts = [t for t, k in zip(out_texts, context_keep) if k]
        compressed_text = SEPARATOR.join(final_texts)
        results = [
            ContextResult(
                index=i,
                text=out_texts[i] if context_keep[i] else "",
                original_tokens=context_tokens[i],
                compressed_tokens=self._count(out_texts[i]) if context_keep[i] else 0,
                kept=bool(context_keep[i]),
                probability=float(scores[i]),
            )
            for i in range(n_contexts)
        ]
        words = _decisions(units, masks, context_keep) if opts.return_words else None
        return CompressionResult(
            compressed_text=compressed_text,
            contexts=results,
            original_tokens=original_tokens,
            compressed_tokens=self._count(compressed_text),
            model=self.loaded.display_name,
            method=self.method,
            words=words,
        )

    # ------------------------------------------------------------------ steps
    def _prepare(self, texts: list[str], opts: CompressOptions) -> list[_Context]:
        stripped = [strip_keep_markers(t, opts.keep_markers) for t in texts]
        with self._lock:
            encodings = self._tokenizer.encode_batch([s[0] for s in stripped], add_special_tokens=False)
        max_len = self.loaded.max_length - self._specials
        ctxs = []
        for (text, keep_spans), enc in zip(stripped, encodings):
            ids = np.asarray(enc.ids, dtype=np.int64)
            offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
            if self.rule.style != "wordpiece":
                offsets = strip_leading_space(text, offsets)
            ends, paragraphs = end_flags(text, offsets, opts.chunk_end_tokens)
            if opts.windowing == "greedy":
                windows = greedy_windows(ends, max_len)
            else:
                windows = stable_windows(ids, ends, paragraphs, max_len)
            ctxs.append(_Context(text, keep_spans, ids, list(enc.tokens), offsets, windows))
        return ctxs

    def _units(self, ctxs: list[_Context], opts: CompressOptions) -> list[Units]:
        probs = self._score(ctxs)
        units = []
        for ctx, token_probs in zip(ctxs, probs):
            token_window = np.zeros(len(ctx.ids), dtype=np.int64)
            for w, (s, e) in enumerate(ctx.windows):
                token_window[s:e] = w
            units.append(
                build_units(
                    ctx.text,
                    ctx.tokens,
                    ctx.offsets,
                    token_probs,
                    token_window,
                    self.rule.starts(ctx.tokens, ctx.offsets, ctx.text),
                    force=find_occurrences(ctx.text, opts.force_tokens),
                    keep_spans=ctx.keep_spans,
                    token_to_word=opts.token_to_word,
                    force_reserve_digit=opts.force_reserve_digit,
                    count=self._count_spans if opts.budget == "global" else self._count_normalized,
                )
            )
        return units

    def _score(self, ctxs: list[_Context]) -> list[np.ndarray]:
        """Keep probability of every token of every context (one model call per uncached window)."""
        jobs = [(c, s, e) for c, ctx in enumerate(ctxs) for s, e in ctx.windows]
        out = [np.zeros(len(ctx.ids), dtype=np.float32) for ctx in ctxs]
        window_ids = [ctxs[c].ids[s:e] for c, s, e in jobs]
        probs = self.score_windows(window_ids)
        for (c, s, e), p in zip(jobs, probs):
            out[c][s:e] = p
        return out

    def score_windows(self, windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Token keep-probabilities for windows of token ids (special tokens are added here).

        With a segment cache, each window's probabilities are looked up first and only the misses
        run through the model (concurrent misses on the same window compute once per process).
        The cached value does not depend on the rate, so any later budget is a cheap threshold.
        """
        if self.cache is None or not windows:
            return self._compute(windows)

        keys = [self._keyspace.key(np.asarray(w, dtype="<i4").tobytes().hex()) for w in windows]

        def compute(indices: list[int]) -> list[dict[str, np.ndarray]]:
            return [
                {"keep": p} for p in self._compute([windows[i] for i in indices])
            ]  # fp32: cached == uncached

        try:
            values = get_or_compute(self.cache, keys, compute, codec=ArrayCodec(required=("keep",)))
        except Exception as exc:  # a failing cache never fails compression
            if not self._cache_failed:
                log.warning("segment cache failed (%s: %s); computing without it", type(exc).__name__, exc)
                self._cache_failed = True
            return self._compute(windows)
        out = [np.asarray(v["keep"], dtype=np.float32) for v in values]
        stale = [i for i, (p, w) in enumerate(zip(out, windows)) if p.shape != (len(w),)]
        for i, p in zip(stale, self._compute([windows[i] for i in stale])):
            out[i] = p
        return out

    def _compute(self, windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the model over windows in length-sorted batches."""
        results = [np.zeros(0, dtype=np.float32) for _ in windows]
        todo = [i for i, w in enumerate(windows) if len(w)]
        head = int(self._cls is not None)
        for batch in self._batches(todo, [len(w) for w in windows]):
            width = max(len(windows[i]) for i in batch) + self._specials
            ids = np.full((len(batch), width), self._pad, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                w = windows[i]
                if head:
                    ids[row, 0] = self._cls
                ids[row, head : head + len(w)] = w
                if self._sep is not None:
                    ids[row, head + len(w)] = self._sep
                mask[row, : len(w) + self._specials] = 1
            with self._lock:
                probs = self.runtime.keep_probs(ids, mask)
            for row, i in enumerate(batch):
                results[i] = probs[row, head : head + len(windows[i])].astype(np.float32)
        return results

    def _batches(self, todo: list[int], lengths: list[int]) -> list[list[int]]:
        """Length-sorted batches bounded by count and padded tokens, cut where padding would exceed
        a fifth of the batch (stable windows vary from a few tokens to the model's length)."""
        order = sorted(todo, key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        current: list[int] = []
        used = 0
        for i in order:
            size = lengths[i] + self._specials
            if current:
                width = lengths[current[0]] + self._specials
                n = len(current) + 1
                if n > self.batch_size or n * width > self.max_batch_tokens or used + size < 0.8 * n * width:
                    batches.append(current)
                    current, used = [], 0
            current.append(i)
            used += size
        if current:
            batches.append(current)
        return batches

    # ------------------------------------------------------------------ helpers
    def _count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text)) if text else 0

    def _count_spans(self, text: str, spans: np.ndarray) -> np.ndarray:
        """Tokens of each unit, from one tiktoken pass over the whole text: a token belongs to the
        unit holding its last character (" word" tokens carry the space before the word)."""
        counts = np.zeros(len(spans), dtype=np.int64)
        if not len(spans) or not text:
            return counts
        tokens = self.encoding.encode_ordinary(text)
        _, starts = self.encoding.decode_with_offsets(tokens)
        last_char = np.append(np.asarray(starts[1:], dtype=np.int64), len(text)) - 1
        unit = np.searchsorted(spans[:, 0], last_char, side="right") - 1
        inside = (unit >= 0) & (last_char < spans[np.maximum(unit, 0), 1])
        np.add.at(counts, unit[inside], 1)
        return np.maximum(counts, 1)  # a unit sharing its token with a neighbour still costs one

    def _count_normalized(self, text: str, spans: np.ndarray) -> np.ndarray:
        """Counts of each word as the encoder's normaliser sees it (lower-cased, accents stripped
        for uncased models), one word at a time: llmlingua counts its word pieces this way, so the
        per-window thresholds match it."""
        normalizer = self._tokenizer.normalizer
        encode = self.encoding.encode_ordinary
        words = [text[s:e] for s, e in spans.tolist()]
        if normalizer is not None:
            words = [normalizer.normalize_str(w) for w in words]
        return np.fromiter((len(encode(w)) for w in words), dtype=np.int64, count=len(words))


def _keyspace(model_fingerprint: str, backend: str) -> Any:

    namespace = os.environ.get("PROMPTPRESS_CACHE_NAMESPACE", "default")
    return KeySpace(namespace, model=model_fingerprint, compressor=CACHE_VERSION, params=backend)


def _as_contexts(context: str | Sequence[str]) -> list[str]:
    if isinstance(context, str):
        return [context]
    if isinstance(context, (bytes, bytearray)):
        raise OptionsError("context must be text (str), not bytes: decode it first")
    try:
        texts = list(context)
    except TypeError as exc:
        raise OptionsError(
            f"context must be a string or a list of strings, got {type(context).__name__}"
        ) from exc
    if not texts:
        raise OptionsError("context is an empty list: pass at least one string")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise OptionsError(f"every context must be a string, got {', '.join(sorted(set(bad)))}")
    return texts


def _expand(chosen: list[np.ndarray], keep: np.ndarray, units: list[Units]) -> list[np.ndarray]:
    it = iter(chosen)
    return [next(it) if k else np.zeros(len(u), dtype=bool) for k, u in zip(keep, units)]


def _decisions(units: list[Units], masks: list[np.ndarray], keep: np.ndarray) -> list[WordDecision]:
    out = []
    for c, (u, m) in enumerate(zip(units, masks)):
        for (s, e), p, k, f in zip(u.spans.tolist(), u.probs.tolist(), m.tolist(), u.forced.tolist()):
            out.append(WordDecision(u.text[s:e], c, s, e, round(p, 6), bool(k and keep[c]), bool(f)))
    return out

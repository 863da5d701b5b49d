"""LLMLingua-2-style compression: an encoder labels each word keep or drop.

`TokenClassifierCompressor.compress` is the whole pipeline, one step per module:
tokenise once with offsets and cut windows (`windows`) -> score windows in length-sorted batches
(`runtime`, optionally through a segment cache) -> group tokens into words and forced units
(`words`, `units`) -> plan the budget: contexts kept, per-context budgets, strategy (`budget`) ->
choose the units (`selection`) -> copy kept units out of the original text (`render`).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from promptpress.cache import ArrayCodec, KeySpace, SegmentCache, get_or_compute

from .batching import DEFAULT_MAX_ROWS, DEFAULT_MAX_TOKENS, DEFAULT_MIN_FILL, BatchPolicy
from .budget import Masks, Plan, plan_budget
from .loader import open_model
from .model import DEFAULT_MODEL, LoadedModel, ModelInfo, load_token_classifier
from .options import CompressOptions, OptionsError
from .protect import Protected, ensure_text, forced_tokens, literal_ranges, protect, verbatim_tokens
from .render import SEPARATOR, Rendering
from .result import CompressionResult, ContextResult, WordDecision
from .runtime import Runtime
from .tokens import DEFAULT_ENCODING, get_encoding, unit_tokens, word_tokens
from .units import Units, build_units, find_occurrences, strip_keep_markers
from .windows import cut_windows, end_flags
from .words import detect_word_rule, strip_leading_space

CACHE_VERSION = "tc-probs-1"  # bump when what is cached for a window changes
log = logging.getLogger("promptpress.compressor")


@dataclass
class _Context:
    original: str  # markers removed
    protected: Protected  # its structure; `protected.text` is what the model sees (long tokens cut)
    ids: np.ndarray
    tokens: list[str]
    offsets: np.ndarray
    windows: list[tuple[int, int]]


class TokenClassifierCompressor:
    """Compress contexts with a keep/drop token classifier.

    >>> compressor = TokenClassifierCompressor()                     # shipped default, CPU
    >>> result = compressor.compress(long_text, rate=0.33)
    >>> result.compressed_text, result.original_tokens, result.compressed_tokens

    `backend` picks the inference path ("torch", "bf16", "int8", "onnx", "onnx-int8", or "auto": bf16
    where the CPU has native bf16, else torch; see `runtime`; an ONNX backend whose model was exported
    before opens without torch: `loader`); `batch_size`, `max_batch_tokens` and `batch_fill` bound
    each model call (`batching.BatchPolicy`; `batch_fill` None: 1.0, no padding, for a runtime whose
    results depend on padding, such as bf16, so that a window scores the same whatever it is batched
    with and cached scores equal fresh ones; else `batching.DEFAULT_MIN_FILL`); `cache` is an optional segment cache
    (`promptpress.cache`) holding each window's token probabilities, so a window seen before costs no
    model call whatever rate is asked; `cache_namespace` is the tenant part of its keys (default:
    ``PROMPTPRESS_CACHE_NAMESPACE``, else ``default``).
    """

    method = "token_classifier"

    def __init__(
        self,
        model: str | os.PathLike[str] | LoadedModel = DEFAULT_MODEL,
        *,
        backend: str = "auto",
        threads: int | None = None,
        batch_size: int = DEFAULT_MAX_ROWS,
        max_batch_tokens: int = DEFAULT_MAX_TOKENS,
        batch_fill: float | None = None,
        encoding: str = DEFAULT_ENCODING,
        options: CompressOptions | None = None,
        cache: SegmentCache | None = None,
        cache_namespace: str | None = None,
    ) -> None:
        opened = open_model(model, backend, threads)  # resolves "auto"
        self.info: ModelInfo = opened.info
        self.runtime: Runtime = opened.runtime
        self._loaded = opened.loaded
        self.backend = self.runtime.name  # "auto" resolved
        self.rule = detect_word_rule(self.info.tokenizer)
        self.encoding = get_encoding(encoding)
        self.default_options = (options or CompressOptions()).validate()
        if batch_fill is None:  # a runtime whose rounding depends on padding batches equal lengths only
            batch_fill = 1.0 if getattr(self.runtime, "padding_changes_results", False) else DEFAULT_MIN_FILL
        self.batching = BatchPolicy(batch_size, max(self.info.max_length, max_batch_tokens), batch_fill)
        self.cache = cache
        self._cache_failed = False
        self._keyspace = (
            _keyspace(self.info.fingerprint, self.backend, cache_namespace) if cache is not None else None
        )
        self._cls, self._sep, self._pad = self.info.cls_id, self.info.sep_id, self.info.pad_id
        self._specials = int(self._cls is not None) + int(self._sep is not None)
        self._tokenizer = copy.deepcopy(self.info.tokenizer)
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._lock = threading.Lock()  # the fast tokenizer and torch modules are shared across threads
        normalizer = self._tokenizer.normalizer
        # tokens of each unit, by budget: the text's own tiktoken tokens; llmlingua's per-word counts
        self._unit_tokens: dict[str, Callable[[str, np.ndarray], np.ndarray]] = {
            "global": partial(unit_tokens, self.encoding),
            "window": partial(
                word_tokens, self.encoding, None if normalizer is None else normalizer.normalize_str
            ),
        }
        self.name = f"{self.method}:{self.info.display_name}"

    @property
    def trained(self) -> bool:
        return self.info.trained_head

    @property
    def loaded(self) -> LoadedModel:
        """The checkpoint as torch and transformers load it; loaded now if this compressor runs from
        the model's ONNX artefact (which needs neither)."""
        if self._loaded is None:
            self._loaded = load_token_classifier(self.info.spec)
        return self._loaded

    # ------------------------------------------------------------------ the pipeline
    def compress(
        self, context: str | Sequence[str], options: CompressOptions | None = None, /, **overrides: Any
    ) -> CompressionResult:
        opts = (options or self.default_options).with_overrides(**overrides)
        contexts = self._prepare(_as_contexts(context), opts)  # token ids, offsets and windows
        probs = self._score(contexts)  # keep probability of each token (cached per window)
        units = self._units(contexts, probs, opts)  # words and forced spans
        tokens = [self._count(u.text) for u in units]
        joined = self._count(SEPARATOR.join(u.text for u in units))
        plan = plan_budget(units, tokens, joined, opts)  # contexts kept, their budgets, the strategy
        masks, texts = self._select(units, plan)  # units kept, rendered
        result = self._result(units, masks, texts, plan, tokens, joined, opts.return_words)
        return self._structure_report(result, contexts, units, masks, plan)

    # ------------------------------------------------------------------ steps
    def _prepare(self, texts: list[str], opts: CompressOptions) -> list[_Context]:
        policy = opts.structure_policy()  # None: structure detection off
        markers = opts.keep_markers
        stripped = [strip_keep_markers(t, markers, literal_ranges(t, markers, policy)) for t in texts]
        protected = [protect(text, keep_spans, policy) for text, keep_spans in stripped]
        with self._lock:
            encodings = self._tokenizer.encode_batch([p.text for p in protected], add_special_tokens=False)
        max_len = self.info.max_length - self._specials
        ctxs = []
        for (original, _), prot, enc in zip(stripped, protected, encodings):
            text = prot.text
            ids = np.asarray(enc.ids, dtype=np.int64)
            offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
            if self.rule.style != "wordpiece":
                offsets = strip_leading_space(text, offsets)
            ends, paragraphs = end_flags(text, offsets, opts.chunk_end_tokens)
            windows = cut_windows(opts.windowing, ids, ends, paragraphs, max_len)
            ctxs.append(_Context(original, prot, ids, list(enc.tokens), offsets, windows))
        return ctxs

    def _score(self, ctxs: list[_Context]) -> list[np.ndarray]:
        """Keep probability of every token of every context (one model call per uncached window)."""
        jobs = [(c, s, e) for c, ctx in enumerate(ctxs) for s, e in ctx.windows]
        out = [np.zeros(len(ctx.ids), dtype=np.float32) for ctx in ctxs]
        window_ids = [ctxs[c].ids[s:e] for c, s, e in jobs]
        probs = self.score_windows(window_ids)
        for (c, s, e), p in zip(jobs, probs):
            out[c][s:e] = p
        return out

    def _units(self, ctxs: list[_Context], probs: list[np.ndarray], opts: CompressOptions) -> list[Units]:
        units = []
        for ctx, token_probs in zip(ctxs, probs):
            token_window = np.zeros(len(ctx.ids), dtype=np.int64)
            for w, (s, e) in enumerate(ctx.windows):
                token_window[s:e] = w
            units.append(
                build_units(
                    ctx.protected.text,
                    ctx.tokens,
                    ctx.offsets,
                    token_probs,
                    token_window,
                    self.rule.starts(ctx.tokens, ctx.offsets, ctx.protected.text),
                    force=find_occurrences(ctx.protected.text, opts.force_tokens),
                    keep_spans=ctx.protected.keep_spans,
                    token_to_word=opts.token_to_word,
                    force_reserve_digit=opts.force_reserve_digit,
                    count=self._unit_tokens[opts.budget],
                    verbatim=ctx.protected.verbatim,
                    banned=ctx.protected.banned,
                    whole=ctx.protected.whole,
                )
            )
        return units

    def _select(self, units: list[Units], plan: Plan) -> tuple[Masks, list[str]]:
        """Keep masks and texts of every context (a dropped context keeps nothing and renders to "")."""
        if plan.selection is None:  # nothing to remove: the input as it is
            return [np.ones(len(u), dtype=bool) for u in units], [u.text for u in units]
        kept = plan.kept(units)
        rendering = Rendering(kept, self._count)
        chosen = ensure_text(kept, plan.selection.select(kept, rendering))  # a text never becomes ""
        masks = plan.restore(chosen, [np.zeros(len(u), dtype=bool) for u in units])
        return masks, plan.restore(rendering.texts(chosen), [""] * len(units))

    def _result(
        self,
        units: list[Units],
        masks: Masks,
        texts: list[str],
        plan: Plan,
        tokens: list[int],
        joined: int,
        return_words: bool,
    ) -> CompressionResult:
        compressed_text = SEPARATOR.join(plan.kept(texts))
        contexts = [
            ContextResult(i, text, n, self._count(text), bool(k), float(score))
            for i, (text, n, k, score) in enumerate(zip(texts, tokens, plan.keep, plan.scores))
        ]
        return CompressionResult(
            compressed_text=compressed_text,
            contexts=contexts,
            original_tokens=joined,
            compressed_tokens=self._count(compressed_text),
            model=self.info.display_name,
            method=self.method,
            words=_decisions(units, masks, plan.keep) if return_words else None,
        )

    def _structure_report(
        self,
        result: CompressionResult,
        ctxs: list[_Context],
        units: list[Units],
        masks: Masks,
        plan: Plan,
    ) -> CompressionResult:
        """The result with its structure figures: tokens kept verbatim per kind, whether what had to
        be kept exceeded the budget, and the original's token counts where an overlong token was cut."""
        kept = plan.kept(units)
        verbatim = verbatim_tokens(kept, plan.kept(masks), plan.kept([c.protected for c in ctxs]))
        over = plan.selection is not None and forced_tokens(kept) > plan.total
        changes: dict[str, Any] = {"verbatim_tokens": verbatim, "over_budget": over}
        if any(c.protected.cut for c in ctxs):  # count what was sent, not what the model saw
            changes["original_tokens"] = self._count(SEPARATOR.join(c.original for c in ctxs))
            changes["contexts"] = [
                replace(r, original_tokens=self._count(c.original)) if c.protected.cut else r
                for r, c in zip(result.contexts, ctxs)
            ]
        return replace(result, **changes)

    # ------------------------------------------------------------------ the model, through the cache
    def score_windows(self, windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Token keep-probabilities for windows of token ids (special tokens are added here).

        With a segment cache, each window's probabilities are looked up first and only the misses
        run through the model (concurrent misses on the same window compute once per process).
        The cached value does not depend on the rate, so any later budget is a cheap threshold.
        """
        cache, keyspace = self.cache, self._keyspace
        if cache is None or keyspace is None or not windows:
            return self._compute(windows)

        keys = [keyspace.key(np.asarray(w, dtype="<i4").tobytes().hex()) for w in windows]

        def compute(indices: list[int]) -> list[dict[str, np.ndarray]]:
            return [
                {"keep": p} for p in self._compute([windows[i] for i in indices])
            ]  # fp32: cached == uncached

        def fits(i: int, value: dict[str, np.ndarray]) -> bool:  # else a miss, recomputed and overwritten
            return value["keep"].shape == (len(windows[i]),)

        try:
            values = get_or_compute(cache, keys, compute, codec=ArrayCodec(required=("keep",)), accept=fits)
        except Exception as exc:  # a failing cache never fails compression
            if not self._cache_failed:
                log.warning("segment cache failed (%s: %s); computing without it", type(exc).__name__, exc)
                self._cache_failed = True
            return self._compute(windows)
        return [np.asarray(v["keep"], dtype=np.float32) for v in values]

    def _compute(self, windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the model over windows in length-sorted batches."""
        results = [np.zeros(0, dtype=np.float32) for _ in windows]
        todo = [i for i, w in enumerate(windows) if len(w)]
        head = int(self._cls is not None)
        for batch in self.batching.batches(todo, [len(w) + self._specials for w in windows]):
            width = max(len(windows[i]) for i in batch) + self._specials
            ids = np.full((len(batch), width), self._pad, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                w = windows[i]
                if self._cls is not None:
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

    def _count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text)) if text else 0


def _keyspace(model_fingerprint: str, backend: str, namespace: str | None) -> KeySpace:
    if namespace is None:  # the environment variable still works for library users
        namespace = os.environ.get("PROMPTPRESS_CACHE_NAMESPACE") or "default"
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


def _decisions(units: list[Units], masks: Masks, keep: np.ndarray) -> list[WordDecision]:
    out = []
    for c, (u, m) in enumerate(zip(units, masks)):
        for (s, e), p, k, f in zip(u.spans.tolist(), u.probs.tolist(), m.tolist(), u.forced.tolist()):
            out.append(WordDecision(u.text[s:e], c, s, e, round(p, 6), bool(k and keep[c]), bool(f)))
    return out

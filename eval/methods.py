"""Compression methods the runner compares, named on the command line.

- `none`: the uncompressed context (the reference every other method is measured against);
- `truncate` (keep the head), `truncate_head_tail`, `random` (seeded word drop): baselines;
- `surprisal` or `surprisal:MODEL`: words ranked by a causal LM's self-information (the token
  classifier's teacher; default LM: the packaged Qwen2.5-Coder-0.5B, slow on a CPU);
- `lexical`: words ranked by the lexical teacher (rarity, numbers, names, spans; no model);
- `classifier` or `classifier:MODEL`: the token-classification compressor (`load_compressor`);
- `classifier_qa[:MODEL][@EMBEDDING]`: the same behind a question-aware budget (paragraphs share the
  context's budget by embedding relevance to the question: `promptpress.compressor.query_aware`);
  EMBEDDING is the relevance model (default the packaged all-MiniLM-L6-v2), e.g.
  `classifier_qa@package:all-mpnet-base-v2`;
- `soft` or `soft:WEIGHTS`: the segment-wise soft compressor (shipped or trained weights); its
  reader is its own decoder fed concept embeddings in place of the context, at rate 1/C;
  `soft_tokens[:WEIGHTS]` is that same decoder reading the whole prompt as tokens, the reference
  soft scores are to be read against (the run's reader may be another build of the model);
- `module:attr` or `NAME=module:attr`: any `Compressor` object, a zero-argument factory returning
  one, or a plain function `fn(context: str, rate: float) -> str`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from promptpress.cache import open_cache
from promptpress.compressor import AssetError, load_compressor
from promptpress.compressor.options import CompressOptions, Compressor
from promptpress.compressor.query_aware import (
    QuestionAwareCompressor,
    load_sentence_model,
    sentence_embedder,
)
from promptpress.compressor.result import CompressionResult, ContextResult
from promptpress.compressor.tokens import count_tokens

from .baselines import (
    LexicalDropCompressor,
    RandomDropCompressor,
    SurprisalDropCompressor,
    TruncationCompressor,
)
from .reader import Reader
from .soft_reader import SoftReader, load_soft

NONE = "none"
BUILTIN = (
    "none",
    "truncate",
    "truncate_head_tail",
    "random",
    "surprisal",
    "lexical",
    "classifier",
    "classifier_qa",
    "soft",
    "soft_tokens",
)
_REGISTRY: dict[str, Callable[[], Compressor]] = {}
_CLASSIFIERS: dict[tuple[str | None, str], Compressor] = {}


@runtime_checkable
class QuestionAware(Protocol):
    """A compressor that compresses a context for one question (`classifier_qa`)."""

    def compress_for_question(self, context: str, question: str, rate: float) -> CompressionResult: ...


class MethodError(ValueError):
    """A method name that cannot be resolved."""


@dataclass(frozen=True)
class Method:
    name: str
    compressor: Compressor | QuestionAware | None  # None: the context is sent as is
    # a method that compresses inside its own reader (the soft compressor feeds a local decoder
    # embeddings): the runner asks it instead of the run's reader, at its own fixed rate
    reader: Reader | None = None
    fixed_rate: float | None = None

    @property
    def question_aware(self) -> bool:
        """It compresses each context for one question (`compress_for_question(context, question, rate)`)."""
        return isinstance(self.compressor, QuestionAware)


class CallableCompressor:
    """Adapts `fn(context, rate) -> compressed text` to the `Compressor` protocol (tiktoken counts)."""

    method = "callable"

    def __init__(self, fn: Callable[[str, float], str], name: str) -> None:
        self.fn = fn
        self.name = name

    def compress(
        self, context: str | Sequence[str], options: CompressOptions | None = None, /, **overrides: Any
    ) -> CompressionResult:
        opts = (options or CompressOptions()).with_overrides(**overrides)
        texts = [context] if isinstance(context, str) else list(context)
        outs = [str(self.fn(t, opts.rate)) for t in texts]
        contexts = [
            ContextResult(i, o, count_tokens(t), count_tokens(o))
            for i, (t, o) in enumerate(zip(texts, outs, strict=True))
        ]
        joined = "\n\n".join(outs)
        return CompressionResult(
            compressed_text=joined,
            contexts=contexts,
            original_tokens=count_tokens("\n\n".join(texts)),
            compressed_tokens=count_tokens(joined),
            model=self.name,
            method=self.method,
        )


def register_method(name: str, factory: Callable[[], Compressor]) -> None:
    """Make `name` usable in `--methods` (e.g. the soft compressor's engineers register "soft")."""
    if not name or any(ch in name for ch in ",:="):
        raise MethodError(f"bad method name {name!r}")
    _REGISTRY[name] = factory


def _from_object(obj: Any, name: str) -> Compressor:
    if isinstance(obj, Compressor) and not inspect.isclass(obj):
        return obj
    if not callable(obj):
        raise MethodError(f"{name}: {obj!r} is neither a Compressor nor callable")
    try:
        params = [
            p
            for p in inspect.signature(obj).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if len(params) >= 2:
        return CallableCompressor(obj, name)
    made = obj()
    if not isinstance(made, Compressor):
        raise MethodError(f"{name}: the factory returned {type(made).__name__}, not a Compressor")
    return made


def _import(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MethodError(f"cannot import {module_name!r} for method {path!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise MethodError(f"{module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    return target


OWN_READER_KINDS = ("soft", "soft_tokens")  # methods that answer with their own decoder


def brings_own_reader(spec: str) -> bool:
    """Whether method `spec` answers with its own reader (known from the name, before any loading)."""
    return spec.strip().partition(":")[0] in OWN_READER_KINDS


def make_method(
    spec: str, *, seed: int = 0, classifier_backend: str = "torch", soft_precision: str = "fp32"
) -> Method:
    """Resolve one method name from the command line."""
    spec = spec.strip()
    if spec == NONE:
        return Method(NONE, None)
    if spec in ("truncate", "truncate_head_tail"):
        return Method(spec, TruncationCompressor("head" if spec == "truncate" else "head_tail"))
    if spec == "random":
        return Method(spec, RandomDropCompressor(seed=seed))
    if spec == "lexical":
        return Method(spec, LexicalDropCompressor())
    if spec == "surprisal" or spec.startswith("surprisal:"):
        return Method(spec, SurprisalDropCompressor(spec.partition(":")[2] or None))
    head, _, model_spec = spec.partition(":")
    if spec.partition("@")[0].partition(":")[0] in ("classifier", "classifier_qa"):
        return classifier_method(spec, classifier_backend)
    if spec in _REGISTRY:
        return Method(spec, _from_object(_REGISTRY[spec], spec))
    if head in OWN_READER_KINDS:
        try:
            return soft_method(head, model_spec or None, precision=soft_precision)
        except (OSError, ValueError, ImportError) as exc:
            raise MethodError(f"{spec}: cannot load the soft compressor: {exc}") from exc
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = spec, spec
    if ":" not in path:
        known = ", ".join([*BUILTIN, *sorted(_REGISTRY)])
        raise MethodError(f"unknown method {spec!r}; known: {known}, or module:attr")
    return Method(name, _from_object(_import(path), name))


def classifier_method(spec: str, backend: str = "torch") -> Method:
    """`classifier[:MODEL]` or `classifier_qa[:MODEL][@EMBEDDING]`."""
    base, at, embedding = spec.partition("@")
    head, _, model_spec = base.partition(":")
    if at and (head != "classifier_qa" or not embedding.strip()):
        raise MethodError(f"{spec!r}: '@EMBEDDING' names the relevance model of classifier_qa only")
    classifier = _classifier(model_spec or None, backend)
    if head == "classifier":
        return Method(spec, classifier)
    if not at:
        return Method(spec, QuestionAwareCompressor(classifier))
    try:  # loaded now: a missing model is a clear error before any work
        load_sentence_model(embedding.strip())
    except (AssetError, ImportError, OSError) as exc:
        raise MethodError(f"{spec}: cannot load the relevance model: {exc}") from exc
    return Method(spec, QuestionAwareCompressor(classifier, sentence_embedder(embedding.strip())))


def _classifier(model: str | None, backend: str) -> Compressor:
    """One classifier per model and backend in this process, with an in-process segment cache: each
    window is scored once whatever the rate, the question or the method using it (`classifier`,
    `classifier_qa` and its relevance models side by side score a context once)."""
    key = (model, backend)
    if key not in _CLASSIFIERS:
        _CLASSIFIERS[key] = load_compressor(model, backend=backend, cache=open_cache("memory://"))
    return _CLASSIFIERS[key]


def soft_method(kind: str, weights: str | None, *, precision: str = "fp32") -> Method:
    """The `soft` / `soft_tokens` method: its own reader (the soft compressor's decoder), a fixed rate."""
    soft = load_soft(weights, precision)
    name = kind if weights is None else f"{kind}:{weights}"
    if kind == "soft_tokens":
        return Method(name, None, reader=SoftReader(soft, compress=False, name=name), fixed_rate=1.0)
    rate = 1.0 / float(soft.encoder.config.rate)
    return Method(name, None, reader=SoftReader(soft, name=name), fixed_rate=rate)


def parse_methods(text: str | Sequence[str], **kwargs: Any) -> list[Method]:
    specs = [s for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not specs:
        raise MethodError("no methods given")
    methods = [make_method(s, **kwargs) for s in specs]
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise MethodError(f"duplicate method names in {names}")
    return methods

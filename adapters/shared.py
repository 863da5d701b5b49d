"""The compressor and cache the adapters use: the caller's, or one process-wide default loaded on first use.

The adapters never copy compression logic: they call the same `Compressor` object (and through it the
same segment cache) the HTTP service uses. Without an explicit compressor they share one
`load_compressor(cache=...)` per cache, loaded lazily, so a hundred adapter instances (LangChain
re-creates configurable runnables on every call) load the model once.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from promptpress.cache import SegmentCache, open_cache
from promptpress.compressor import CompressOptions, Compressor, load_compressor
from promptpress.compressor.query_aware import DEFAULT_EMBEDDING_MODEL

__all__ = [
    "CompressorFields",
    "build_options",
    "check_compressor_args",
    "resolve_compressor",
    "shared_compressor",
]

DEFAULT_CACHE = "memory://?max_bytes=64MiB"
CacheArg = SegmentCache | str | None  # a cache object, a spec such as "redis://host:6379/0", or none

_lock = threading.Lock()
# key -> (cache kept alive, compressor)
_shared: dict[tuple[str, object], tuple[SegmentCache | None, Compressor]] = {}


def _cache_key(cache: CacheArg) -> tuple[str, object]:
    if cache is None:
        return ("none", None)
    if isinstance(cache, str):
        return ("spec", cache.strip())
    return ("object", id(cache))


def shared_compressor(cache: CacheArg = None) -> Compressor:
    """The process-wide default compressor (shipped model, CPU) reading and writing `cache`.

    `cache` is a segment cache object (`promptpress.cache.open_cache(...)`), a cache spec string such
    as ``"redis://127.0.0.1:6379/0"`` (opened once per process), or None: the in-process default
    (`DEFAULT_CACHE`, 64 MiB), so documents seen before (a second question) are not scored again;
    ``"none://"`` for no cache.
    """
    cache = DEFAULT_CACHE if cache is None else cache
    key = _cache_key(cache)
    with _lock:  # loading twice in parallel would double the memory and the start-up time
        entry = _shared.get(key)
        if entry is None:
            opened = open_cache(cache) if isinstance(cache, str) else cache
            entry = (opened, load_compressor(cache=opened))
            _shared[key] = entry
    return entry[1]


def resolve_compressor(compressor: Compressor | None, cache: CacheArg) -> Compressor:
    """`compressor` if given (checked: the adapters' fields take any object), else the shared default
    for `cache`."""
    if compressor is None:
        return shared_compressor(cache)
    if not callable(getattr(compressor, "compress", None)):
        raise TypeError(
            f"compressor must have a compress(contexts, options, **overrides) method "
            f"(e.g. promptpress.compressor.load_compressor()), got {type(compressor).__name__}"
        )
    if cache is not None and getattr(compressor, "cache", None) is not cache:
        raise ValueError(
            "give the cache to the compressor (load_compressor(cache=...)) or give only cache= here, "
            "not a compressor and a different cache"
        )
    return compressor


def check_compressor_args(compressor: Compressor | None, cache: CacheArg) -> None:
    """Fail at construction, not at the first call, on arguments `resolve_compressor` would reject."""
    if compressor is not None:
        resolve_compressor(compressor, cache)
    elif cache is not None and not isinstance(cache, str) and not callable(getattr(cache, "get_many", None)):
        raise TypeError(
            f"cache must be a segment cache (promptpress.cache.open_cache(...)) or a spec string such as "
            f"'redis://host:6379/0', got {type(cache).__name__}"
        )


def build_options(
    options: CompressOptions | None, rate: float | None, target_tokens: int | None
) -> CompressOptions:
    """`options` (default `CompressOptions()`) with `rate`/`target_tokens` applied when given; validated."""
    if options is not None and not isinstance(options, CompressOptions):
        raise TypeError(f"options must be a promptpress CompressOptions, got {type(options).__name__}")
    base = options or CompressOptions()
    overrides: dict[str, Any] = {}
    if rate is not None:
        overrides["rate"] = rate
    if target_tokens is not None:
        overrides["target_tokens"] = target_tokens
    return base.with_overrides(**overrides) if overrides else base.validate()


class CompressorFields(BaseModel):
    """The fields every adapter has: which compressor (and cache) and what budget.

    compressor: a promptpress `Compressor` (e.g. the service's); default: the shared
        `load_compressor(cache=cache)`, loaded on first use.
    cache: segment cache object or spec (``"redis://host:6379/0"``) for the default compressor.
    rate / target_tokens / options: the budget (as in `CompressOptions`; `rate` and `target_tokens`
        override the fields of `options`).
    embedding_model: the relevance model when a question (or query) is known: an asset spec such
        as ``"package:all-mpnet-base-v2"`` or a local sentence-transformers directory; None: the
        default, the packaged all-MiniLM-L6-v2 (`DEFAULT_EMBEDDING_MODEL`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # any object: `check_compressor_args` says what is wrong with a clear TypeError (a typed pydantic
    # field would turn it into a ValidationError)
    compressor: Any = None
    cache: Any = None
    rate: float | None = None
    target_tokens: int | None = None
    options: CompressOptions | None = None
    embedding_model: str | None = None

    @model_validator(mode="after")
    def _check_compressor_fields(self) -> CompressorFields:
        build_options(self.options, self.rate, self.target_tokens)
        check_compressor_args(self.compressor, self.cache)
        if self.embedding_model is not None and not self.embedding_model.strip():
            raise ValueError("embedding_model must be an asset spec or a directory (None: the default)")
        return self

    def _embedding_model(self) -> str:
        return self.embedding_model or DEFAULT_EMBEDDING_MODEL

    def _engine(self) -> Compressor:
        return resolve_compressor(self.compressor, self.cache)

    def _options(self) -> CompressOptions:
        return build_options(self.options, self.rate, self.target_tokens)

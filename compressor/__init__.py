"""promptpress.compressor: compression engines, model loading and training.

>>> from promptpress.compressor import load_compressor
>>> compressor = load_compressor()              # the shipped model, offline, CPU
>>> compressor.compress(text, rate=0.33).compressed_text
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .assets import AssetError, resolve
from .model import DEFAULT_MODEL, ModelError
from .options import CompressOptions, Compressor, OptionsError
from .result import CompressionResult, ContextResult, WordDecision
from .tokens import count_tokens, ensure_tiktoken_offline, get_encoding

if TYPE_CHECKING:  # torch and transformers load only when a model is needed (see __getattr__)
    from promptpress.cache import SegmentCache

    from .token_classifier import TokenClassifierCompressor

__all__ = [
    "DEFAULT_MODEL",
    "AssetError",
    "CompressOptions",
    "CompressionResult",
    "Compressor",
    "ContextResult",
    "ModelError",
    "OptionsError",
    "TokenClassifierCompressor",
    "WordDecision",
    "count_tokens",
    "ensure_tiktoken_offline",
    "get_encoding",
    "load_compressor",
    "resolve",
]


def load_compressor(
    model: str | os.PathLike[str] | None = None,
    *,
    backend: str = "auto",
    cache: SegmentCache | None = None,
    **kwargs: Any,
) -> TokenClassifierCompressor:
    """The token-classifier compressor for `model` (default: the shipped model), ready on CPU.

    `backend` "auto" (default) is bf16 on a CPU with native bf16, else torch fp32; "torch" keeps fp32
    (`promptpress.compressor.runtime`)."""
    from .token_classifier import TokenClassifierCompressor

    return TokenClassifierCompressor(model or DEFAULT_MODEL, backend=backend, cache=cache, **kwargs)


def __getattr__(name: str) -> Any:  # torch and transformers load only when a model is needed
    if name == "TokenClassifierCompressor":
        from .token_classifier import TokenClassifierCompressor

        return TokenClassifierCompressor
    raise AttributeError(name)

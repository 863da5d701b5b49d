"""promptpress.compressor: compression engines, model loading and training."""

from .options import CompressOptions, Compressor, OptionsError
from .result import CompressionResult, ContextResult, WordDecision

__all__ = [
    "CompressOptions",
    "CompressionResult",
    "Compressor",
    "ContextResult",
    "OptionsError",
    "WordDecision",
]

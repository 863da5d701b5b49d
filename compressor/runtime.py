"""Inference back ends: padded token ids in, keep probabilities (label 1) out.

One `Runtime` interface, one implementation per back end; a back end's name is its engine and
precision:

========== ============== ============================================================ ==========
backend    engine         precision                                                    module
========== ============== ============================================================ ==========
torch      torch          fp32, the checkpoint as loaded                               torch_runtime
bf16       torch          Linear layers in bfloat16, the rest fp32                     torch_runtime
int8       torch          dynamic int8 on every Linear layer                           torch_runtime
onnx       ONNX Runtime   fp32, fused graph (no torch once exported)                   onnx_runtime
onnx-int8  ONNX Runtime   dynamic int8 on the feed-forward up-projections              onnx_runtime
========== ============== ============================================================ ==========

``auto`` (`resolve_backend`) picks ``bf16`` on a CPU with native bf16 and ``torch`` elsewhere.
Word decisions and speed of each, against llmlingua: docs/benchmarks.md (`bench_compress.py`).
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

from .extras import require
from .model import LoadedModel
from .onnx_export import ONNX_BACKENDS, export_graph
from .onnx_runtime import OnnxRuntime, OrtSettings
from .torch_runtime import TorchBf16Runtime, TorchInt8Runtime, TorchRuntime, native_bf16

BackendName = Literal["torch", "bf16", "int8", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("torch", "bf16", "int8", "onnx", "onnx-int8")
AUTO = "auto"

__all__ = [
    "AUTO",
    "BACKENDS",
    "OnnxRuntime",
    "OrtSettings",
    "Runtime",
    "check_backend",
    "make_runtime",
    "resolve_backend",
]


class Runtime(Protocol):
    name: str

    def keep_probs(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """[batch, length] int64 ids and 0/1 mask -> [batch, length] float32 P(keep)."""
        ...


def resolve_backend(backend: str) -> str:
    """`backend` itself, or for ``auto`` the fastest back end measured to keep >= 99 % of fp32's word
    decisions on this CPU: ``bf16`` with native bf16, else ``torch``."""
    if backend == AUTO:
        return "bf16" if native_bf16() else "torch"
    return backend


def check_backend(backend: str) -> None:
    """Raise ValueError for an unknown backend, MissingExtra when its libraries are not installed."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join((AUTO, *BACKENDS))}")
    if backend in ONNX_BACKENDS:
        require(f"the {backend} backend", "fast")


def make_runtime(loaded: LoadedModel, backend: str = "torch", threads: int | None = None) -> Runtime:
    """The runtime of `backend` for a loaded checkpoint (an ONNX backend exports it first, once)."""
    check_backend(backend)
    if backend == "torch":
        return TorchRuntime(loaded.model, threads)
    if backend == "bf16":
        return TorchBf16Runtime(loaded.model, threads)
    if backend == "int8":
        return TorchInt8Runtime(loaded.model, threads)
    _, graph = export_graph(loaded, backend)
    return OnnxRuntime(graph, backend, OrtSettings(threads))

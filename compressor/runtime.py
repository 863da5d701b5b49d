"""Inference back ends: padded token ids in, keep probabilities (label 1) out.

- ``torch``: the checkpoint as loaded, fp32.
- ``int8``: torch dynamic quantisation of the Linear layers (weights int8, activations quantised
  on the fly).
- ``onnx`` / ``onnx-int8``: the model exported once to ONNX (`onnx_export`, into the model's
  inference artefact) and run by ONNX Runtime, optionally with dynamically quantised int8 weights.
  `OnnxRuntime` needs only the graph file: no torch, no transformers.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from .extras import require
from .model import LoadedModel
from .onnx_export import ONNX_BACKENDS, export_graph

BackendName = Literal["torch", "int8", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("torch", "int8", "onnx", "onnx-int8")


class Runtime(Protocol):
    name: str

    def keep_probs(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """[batch, length] int64 ids and 0/1 mask -> [batch, length] float32 P(keep)."""
        ...


class TorchRuntime:
    name = "torch"

    def __init__(self, model: Any, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.model = model

    def keep_probs(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            logits = self.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
            return torch.softmax(logits.float(), dim=-1)[..., 1].numpy()


class TorchInt8Runtime(TorchRuntime):
    name = "int8"

    def __init__(self, model: Any, threads: int | None = None) -> None:
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantized = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
            )
        super().__init__(quantized.eval(), threads)


class OnnxRuntime:
    """An exported graph (`onnx_export.export_graph`) run by ONNX Runtime on CPU; its weights file is
    memory-mapped, not copied."""

    def __init__(self, graph: Path, name: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.name = name
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def keep_probs(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = self.session.run(
            ["keep"], {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}
        )
        return np.asarray(out[0], dtype=np.float32)


def check_backend(backend: str) -> None:
    """Raise ValueError for an unknown backend, MissingExtra when its libraries are not installed."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend in ONNX_BACKENDS:
        require(f"the {backend} backend", "fast")


def make_runtime(loaded: LoadedModel, backend: str = "torch", threads: int | None = None) -> Runtime:
    """The runtime of `backend` for a loaded checkpoint (an ONNX backend exports it first, once)."""
    check_backend(backend)
    if backend == "torch":
        return TorchRuntime(loaded.model, threads)
    if backend == "int8":
        return TorchInt8Runtime(loaded.model, threads)
    _, graph = export_graph(loaded, backend)
    return OnnxRuntime(graph, backend, threads)

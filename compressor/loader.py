"""Open a token classifier for inference: what the compressor needs to know of it, and a runtime.

With an ONNX backend whose graph is already in the model's inference artefact (`artefact`), the
model opens with `tokenizers` and ONNX Runtime only: torch and transformers are not imported, and the
weights are memory-mapped. Otherwise the checkpoint is loaded with torch and transformers
(`model.load_token_classifier`); an ONNX backend then exports it into the artefact, so the next
process takes the first path. Both paths give the same `ModelInfo` and the same graph.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import assets
from .artefact import find_artefact
from .model import LoadedModel, ModelInfo, load_token_classifier
from .onnx_export import ONNX_BACKENDS
from .runtime import OnnxRuntime, OrtSettings, Runtime, check_backend, make_runtime, resolve_backend


@dataclass(frozen=True)
class OpenedModel:
    info: ModelInfo
    runtime: Runtime
    loaded: LoadedModel | None  # the torch model, when it had to be loaded (None from the artefact)


def open_model(
    model: str | os.PathLike[str] | LoadedModel, backend: str = "torch", threads: int | None = None
) -> OpenedModel:
    """`model` (a spec, a checkpoint path or a loaded model) ready to run on `backend` (``auto``:
    `runtime.resolve_backend`)."""
    backend = resolve_backend(backend)
    check_backend(backend)
    if isinstance(model, LoadedModel):
        return OpenedModel(model.info(), make_runtime(model, backend, threads), model)
    spec = os.fspath(model)
    if backend in ONNX_BACKENDS:
        opened = open_from_artefact(spec, backend, threads)
        if opened is not None:
            return opened
    loaded = load_token_classifier(spec)
    return OpenedModel(loaded.info(), make_runtime(loaded, backend, threads), loaded)


def open_from_artefact(spec: str, backend: str, threads: int | None = None) -> OpenedModel | None:
    """The model from its cached artefact, without torch, or None when `backend`'s graph is not there."""
    artefact = find_artefact(assets.resolve(spec))
    graph = artefact.graph(backend) if artefact is not None else None
    if artefact is None or graph is None:
        return None
    return OpenedModel(artefact.info(spec), OnnxRuntime(graph, backend, OrtSettings(threads)), None)

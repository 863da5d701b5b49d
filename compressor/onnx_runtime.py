"""ONNX Runtime inference: an exported graph (`onnx_export.export_graph`) run on CPU.

Needs only onnxruntime: no torch, no transformers; the graph's weights file is memory-mapped, not
copied. `OrtSettings` holds the session options that were measured as levers (docs/benchmarks.md):
intra-op threads and whether idle worker threads spin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class OrtSettings:
    """threads: intra-op threads (None: every core). spinning: idle worker threads busy-wait for the
    next operator (ONNX Runtime's default) instead of sleeping; spinning wins only on cores nothing
    else uses (on shared cores the spinning threads take the time other processes need)."""

    threads: int | None = None
    spinning: bool = False

    def __post_init__(self) -> None:
        threads = self.threads
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        if not isinstance(self.spinning, bool):
            raise ValueError(f"spinning must be True or False, got {self.spinning!r}")


class OnnxRuntime:
    """Runs the graph at `graph` under the name `name` (its backend: "onnx", "onnx-int8")."""

    def __init__(self, graph: Path, name: str, settings: OrtSettings | None = None) -> None:
        import onnxruntime as ort

        settings = settings or OrtSettings()
        self.name = name
        self.graph = graph
        self.settings = settings
        options = ort.SessionOptions()
        options.intra_op_num_threads = settings.threads or (os.cpu_count() or 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.spinning else "0")
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def keep_probs(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = self.session.run(
            ["keep"], {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}
        )
        return np.asarray(out[0], dtype=np.float32)

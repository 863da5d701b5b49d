"""Torch inference runtimes: padded token ids in, keep probabilities (label 1) out.

- `TorchRuntime` (``torch``): the checkpoint as loaded, fp32.
- `TorchBf16Runtime` (``bf16``): every Linear layer's weights stored in bfloat16 and its input cast
  to bfloat16 (what ``torch.autocast("cpu", torch.bfloat16)`` computes, without casting the weights
  again on every call); embeddings, layer norms, residual sums and the softmax stay fp32. Fast on
  CPUs with native bf16 (AVX512-BF16, AMX): see `native_bf16`.
- `TorchInt8Runtime` (``int8``): torch dynamic quantisation of every Linear layer (weights int8,
  activations quantised on the fly).
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("promptpress.compressor")

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 flags of native bf16 dot products


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


class TorchBf16Runtime(TorchRuntime):
    name = "bf16"
    # a padded row rounds differently (up to ~0.007 in P(keep)): the compressor then batches only
    # windows of equal length, which score exactly as they do alone
    padding_changes_results = True

    def __init__(self, model: Any, threads: int | None = None) -> None:
        if not native_bf16():
            log.warning(
                "this CPU has no native bf16 (%s): the bf16 backend may be slower than fp32",
                "/".join(BF16_CPU_FLAGS),
            )
        super().__init__(bf16_linears(model), threads)


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


def bf16_linears(model: Any) -> Any:
    """A copy of `model` whose Linear layers hold bfloat16 weights and take bfloat16 inputs (their
    outputs are bfloat16; the next fp32 operand, a residual or a layer norm, promotes them back)."""
    import torch
    import torch.nn.functional as F

    class Bf16Linear(torch.nn.Module):
        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(linear.weight.detach().to(torch.bfloat16), requires_grad=False)
            bias = linear.bias
            self.bias = None if bias is None else torch.nn.Parameter(bias.detach().to(torch.bfloat16), False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x.to(torch.bfloat16), self.weight, self.bias)

    def swap(module: torch.nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, torch.nn.Linear):
                setattr(module, name, Bf16Linear(child))
            else:
                swap(child)

    converted = copy.deepcopy(model)
    swap(converted)
    return converted.eval()


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bf16 dot products natively (read from /proc/cpuinfo; False where
    that file does not exist or says nothing of it)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return any(flag in flags for flag in BF16_CPU_FLAGS)
    return False

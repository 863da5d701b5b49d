"""CPU precision modes for the soft compressor's decoder: fp32, bf16, dynamic int8.

``int8`` applies `torch.ao.quantization.quantize_dynamic` to every ``nn.Linear`` except LoRA's own
adapters (peft reads their ``.weight``), so one decoder still serves as compressor (adapters on) and
reader (adapters off). Measure which is fastest on your CPU with ``benchmarks/bench_soft.py``.
"""

from __future__ import annotations

import torch
from torch import nn

MODES = ("fp32", "bf16", "int8")


def apply_precision(model: nn.Module, mode: str) -> nn.Module:
    """Convert `model` in place for inference in `mode` and return it."""
    if mode not in MODES:
        raise ValueError(f"unknown precision {mode!r}; use one of {MODES}")
    if mode == "fp32":
        return model.float()
    if mode == "bf16":
        return model.to(torch.bfloat16)
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    names = {
        name: default_dynamic_qconfig
        for name, module in model.named_modules()
        if type(module) is nn.Linear and "lora_" not in name and name != "proj"
    }
    model.float()
    return quantize_dynamic(model, names, dtype=torch.qint8, inplace=True)

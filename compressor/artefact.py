"""A token classifier's inference artefact: what running it needs, readable without torch.

Once a checkpoint has been loaded (with torch and transformers) and exported, its artefact sits in the
cache directory under the model's fingerprint::

    <cache dir>/inference/<fingerprint>/
        model.json             format, fingerprint, special token ids, position limit, trained head
        tokenizer.json         the fast tokenizer's definition, exactly as the loaded model used it
        onnx.onnx              ONNX graphs, one per ONNX backend (written by `onnx_export`), their
        onnx.onnx.data         weights in a separate file that ONNX Runtime memory-maps
        onnx-int8.onnx ...
    <cache dir>/inference/sources/<source key>.json   checkpoint directory -> fingerprint

`find_artefact(path)` maps a checkpoint directory to its artefact through the source key (the
directory, and each file's name, size and modification time: a changed checkpoint gets a new key and
is loaded and exported again). It imports only the standard library and `tokenizers`; the
`ModelInfo` it gives is the one `LoadedModel.info` gives for the same checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assets import cache_dir
from .model import MAX_LENGTH, LoadedModel, ModelInfo, warn_untrained

FORMAT = "promptpress-inference-v1"
META = "model.json"
TOKENIZER = "tokenizer.json"


def inference_dir() -> Path:
    return cache_dir() / "inference"


@dataclass(frozen=True)
class Artefact:
    directory: Path
    meta: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    def graph_path(self, backend: str) -> Path:
        """Where the ONNX graph of `backend` ("onnx", "onnx-int8") is, or goes."""
        return self.directory / f"{backend}.onnx"

    def graph(self, backend: str) -> Path | None:
        """The ONNX graph of `backend` when it has been exported (its weights file next to it)."""
        path = self.graph_path(backend)
        return path if path.is_file() else None

    def info(self, spec: str, max_length: int = MAX_LENGTH) -> ModelInfo:
        from tokenizers import Tokenizer

        meta = self.meta
        if not meta["trained_head"]:
            warn_untrained(spec)
        return ModelInfo(
            spec=spec,
            tokenizer=Tokenizer.from_file(str(self.directory / TOKENIZER)),
            cls_id=meta["cls_id"],
            sep_id=meta["sep_id"],
            pad_id=int(meta["pad_id"]),
            trained_head=bool(meta["trained_head"]),
            max_length=min(max_length, int(meta["max_positions"])),
            fingerprint=self.fingerprint,
        )


def source_key(path: Path) -> str | None:
    """A key for the checkpoint directory `path` as it is now (None when it is not a directory)."""
    try:
        stats = [(e.name, e.stat()) for e in os.scandir(path) if e.is_file()]
    except OSError:
        return None
    entries = sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([FORMAT, str(path.resolve()), entries]).encode())
    return digest.hexdigest()


def find_artefact(path: Path) -> Artefact | None:
    """The artefact of the checkpoint directory `path`, if it was loaded before and has not changed."""
    key = source_key(path)
    if key is None:
        return None
    try:
        fingerprint = json.loads((inference_dir() / "sources" / f"{key}.json").read_text())["fingerprint"]
        return read_artefact(str(fingerprint))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_artefact(fingerprint: str) -> Artefact | None:
    directory = inference_dir() / fingerprint
    try:
        meta = json.loads((directory / META).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("fingerprint") != fingerprint:
        return None
    if not (directory / TOKENIZER).is_file():
        return None
    return Artefact(directory, meta)


def save_artefact(loaded: LoadedModel) -> Artefact:
    """Write the tokenizer and metadata of `loaded` (once per fingerprint) and record its checkpoint
    directory as a source of it. The ONNX graphs are added by `onnx_export.export_graph`."""
    found = read_artefact(loaded.fingerprint)
    if found is None:
        directory = inference_dir() / loaded.fingerprint
        directory.mkdir(parents=True, exist_ok=True)
        info = loaded.info()
        meta = {
            "format": FORMAT,
            "fingerprint": loaded.fingerprint,
            "cls_id": info.cls_id,
            "sep_id": info.sep_id,
            "pad_id": info.pad_id,
            "max_positions": loaded.max_positions,
            "trained_head": loaded.trained_head,
        }
        write_atomic(directory / TOKENIZER, info.tokenizer.to_str().encode())
        write_atomic(directory / META, json.dumps(meta, indent=1).encode())  # last: the artefact is there
        found = Artefact(directory, meta)
    key = source_key(loaded.path)
    if key is not None:
        record = json.dumps({"fingerprint": loaded.fingerprint, "path": str(loaded.path)})
        write_atomic(inference_dir() / "sources" / f"{key}.json", record.encode())
    return found


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a process-private temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

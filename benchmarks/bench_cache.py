"""What the segment cache saves: one long context compressed cold, fully cached, and with one
segment changed.

    python benchmarks/bench_cache.py [--tokens 8000] [--cache memory:// | redis://127.0.0.1:6379/0]
                                     [--backend torch] [--repeats 5]

Each phase is timed end to end (``compress`` at rate 0.33 on the packaged MiniLM classifier):
- cold: an empty cache, every window goes through the model;
- cached: the same context again, at another rate (cached probabilities do not depend on it);
- one segment changed: one sentence in the middle edited, so only the windows around it miss.
Prints medians and the cold/cached ratio (target >= 50x for an 8k-token context).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
import warnings

from bench_compress import load_text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=8000)
    parser.add_argument("--cache", default="memory://", help="cache spec (memory://, disk:///p, redis://...)")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import os

    from promptpress.cache import open_cache
    from promptpress.compressor import load_compressor

    os.environ["PROMPTPRESS_CACHE_NAMESPACE"] = "bench-" + uuid.uuid4().hex[:8]  # cold really is cold
    text = load_text(args.tokens)
    cache = open_cache(args.cache)
    compressor = load_compressor(backend=args.backend, cache=cache)
    compressor.compress("warm up the model and tokenizer.", rate=0.5)

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    cold = timed(lambda: compressor.compress(text, rate=0.33))
    result = compressor.compress(text, rate=0.33)
    cached = statistics.median(
        timed(lambda: compressor.compress(text, rate=0.25)) for _ in range(args.repeats)
    )
    middle = len(text) // 2
    cut = text.index(". ", middle) + 2
    changed_times = []
    for i in range(args.repeats):
        edited = text[:cut] + f"This sentence was edited for run {uuid.uuid4().hex} number {i}. " + text[cut:]
        changed_times.append(timed(lambda e=edited: compressor.compress(e, rate=0.33)))
    changed = statistics.median(changed_times)
    windows = len(compressor._prepare([text], compressor.default_options)[0].windows)
    stats = cache.stats()
    print(
        f"context: {result.original_tokens} tokens, {windows} windows; cache {args.cache}; backend {args.backend}"
    )
    print("| phase | median s | vs cold |")
    print("|---|---:|---:|")
    print(f"| cold (empty cache) | {cold:.3f} | 1.0x |")
    print(f"| fully cached (other rate) | {cached:.4f} | {cold / cached:.1f}x |")
    print(f"| one segment changed | {changed:.3f} | {cold / changed:.1f}x |")
    print(f"cache stats: {stats.to_dict()}")
    print(f"fully cached vs cold: {cold / cached:.1f}x (target >= 50x)")


if __name__ == "__main__":
    main()

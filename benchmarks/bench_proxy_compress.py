"""Throughput of the proxy while it compresses: requests/s of `promptpress serve` compressing ~600-token
user messages (real news prose, LongBench multi_news), cold cache (every text is sent once), in front of
the mock upstream, with one worker and with two.

    python benchmarks/bench_proxy_compress.py --requests 60 --workers 1 2

For each worker count it prints requests/s, latency percentiles, the compression outcomes, the time the
compressor spent per request (``X-Promptpress-Compression-Ms``, measured in the worker thread), the
tokens before and after, and the CPU time (user + system, /proc) the proxy's processes spent per request:
the compressor's share of that CPU is where the time goes. Closed-loop clients, `--concurrency` per worker
(default: the service's compressor concurrency, 2); compression timeout raised to 120 s so that an
overloaded proxy shows as latency, not as requests forwarded uncompressed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

from proxy_load import (
    MOCK_UPSTREAM,
    cpu_seconds,
    free_port,
    load,
    loadavg,
    report,
    start_promptpress,
    start_uvicorn,
    stop,
    wait_ready,
)

from promptpress.compressor.tokens import count_tokens

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "longbench" / "multi_news.jsonl"


def texts(path: Path, tokens: int, count: int) -> list[str]:
    """`count` distinct texts of about `tokens` tokens: consecutive paragraphs of the dataset's contexts."""
    out: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            context = json.loads(line)["context"].replace("NEWLINE_CHAR", "\n")
            words: list[str] = []
            for word in context.split(" "):
                words.append(word)
                if len(words) % 40 == 0 and count_tokens(" ".join(words)) >= tokens:
                    out.append(" ".join(words).strip())
                    words = []
                    if len(out) == count:
                        return out
    raise SystemExit(f"{path} holds only {len(out)} texts of {tokens} tokens; {count} needed")


def headers_of(run_headers: list[dict[bytes, bytes]], name: bytes) -> list[str]:
    return [h[name].decode() for h in run_headers if name in h]


def measure(args: argparse.Namespace, workers: int, upstream_url: str, bodies: list[bytes]) -> None:
    threads = args.threads or max(1, (os.cpu_count() or 2) // workers)
    env = {
        "PROMPTPRESS_COMPRESSION_TIMEOUT": "120",
        "PROMPTPRESS_COMPRESSOR_THREADS": str(threads),
        "PROMPTPRESS_CACHE_URL": args.cache_url,
    }
    port = free_port()
    with ExitStack() as stack:
        proxy = start_promptpress(port, upstream_url, workers=workers, env=env)
        stack.callback(stop, proxy)
        wait_ready(f"http://127.0.0.1:{port}/healthz", proxy)
        concurrency = args.concurrency or 2 * workers
        warm = 2 * concurrency  # the first requests of each worker load lazily built pieces
        asyncio.run(load(port, "/v1/chat/completions", concurrency, warm, lambda i: bodies[i], timeout=300))
        before = cpu_seconds(proxy.pid)
        run = asyncio.run(
            load(
                port,
                "/v1/chat/completions",
                concurrency,
                args.requests,
                lambda i: bodies[i],
                first=warm,
                keep_headers=True,
                timeout=300,
            )
        )
        cpu = cpu_seconds(proxy.pid) - before
    n = max(len(run.latencies), 1)
    print(
        f"\nworkers={workers} compressor threads each={threads} concurrency={concurrency} load average {loadavg()}"
    )
    report(f"{workers} worker", run, 10)
    outcomes: dict[str, int] = {}
    for outcome in headers_of(run.headers, b"x-promptpress-compression"):
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    compress_ms = [float(v) for v in headers_of(run.headers, b"x-promptpress-compression-ms")]
    original = [int(v) for v in headers_of(run.headers, b"x-promptpress-original-tokens")]
    compressed = [int(v) for v in headers_of(run.headers, b"x-promptpress-compressed-tokens")]
    sources: dict[str, int] = {}
    for source in headers_of(run.headers, b"x-promptpress-question-source"):
        sources[source] = sources.get(source, 0) + 1
    print(f"  outcomes {outcomes}  question source {sources}")
    if compress_ms:
        print(
            f"  compression in the worker: mean {statistics.fmean(compress_ms):.1f} ms, "
            f"p50 {statistics.median(compress_ms):.1f} ms; tokens {statistics.fmean(original):.0f} -> "
            f"{statistics.fmean(compressed):.0f} per request"
        )
    cpu_ms = cpu / n * 1000
    busy = sum(compress_ms) / 1000 / run.seconds if run.seconds else float("nan")
    print(
        f"  proxy CPU {cpu_ms:.1f} ms per request (all threads, /proc); {len(run.latencies) / run.seconds:.2f} "
        f"req/s; compressions in progress on average {busy:.2f}"
    )


def profile_in_process(sample: list[str], threads: int) -> None:
    """Where a compression's time goes: the service's compressor (default model, default options: rate
    0.5, newlines and '?' kept) on `sample` texts one after another, the model's calls
    (``runtime.keep_probs``) timed apart from the rest (tokenizing, windows, selection, rendering)."""
    import time

    from promptpress.compressor import load_compressor
    from promptpress.service.policy import Policy
    from promptpress.service.settings import Settings

    compressor = load_compressor(threads=threads)
    options = Policy.from_settings(Settings(_env_file=None)).options  # type: ignore[call-arg]
    compressor.compress(sample[0], options)  # warm
    runtime = compressor.runtime  # type: ignore[attr-defined]
    keep_probs, in_model = runtime.keep_probs, [0.0]

    def timed(*args: object, **kw: object) -> object:
        start = time.perf_counter()
        try:
            return keep_probs(*args, **kw)
        finally:
            in_model[0] += time.perf_counter() - start

    runtime.keep_probs = timed
    start, cpu = time.perf_counter(), time.process_time()
    for text in sample[1:]:
        compressor.compress(text, options)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = len(sample) - 1
    print(
        f"\nin process, {threads} thread(s), {n} texts one at a time: {wall / n * 1000:.0f} ms per text "
        f"({cpu / n * 1000:.0f} ms CPU); the model's forward passes {in_model[0] / wall * 100:.1f} % of it, "
        f"everything else {100 - in_model[0] / wall * 100:.1f} %"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60, help="measured requests per worker count")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    parser.add_argument("--tokens", type=int, default=600, help="tokens per user message")
    parser.add_argument("--concurrency", type=int, default=None, help="clients (default 2 per worker)")
    parser.add_argument(
        "--threads", type=int, default=None, help="compressor threads per worker (cores/workers)"
    )
    parser.add_argument(
        "--cache-url", default="memory://?max_bytes=64MiB", help="the service's segment cache"
    )
    parser.add_argument(
        "--data", type=Path, default=DATA, help="LongBench-format jsonl with 'context' fields"
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="also compress this many texts in process, profiled"
    )
    args = parser.parse_args(argv)
    warm_max = 2 * (args.concurrency or 2 * max(args.workers))
    per_run = args.requests + warm_max
    all_texts = texts(args.data, args.tokens, per_run * len(args.workers))
    print(
        f"{len(all_texts)} distinct texts of ~{args.tokens} tokens (mean {statistics.fmean(count_tokens(t) for t in all_texts[:50]):.0f}), "
        f"cpus={os.cpu_count()}, load average {loadavg()}"
    )
    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    with ExitStack() as stack:
        upstream = start_uvicorn(MOCK_UPSTREAM, upstream_port, {})
        stack.callback(stop, upstream)
        wait_ready(f"{upstream_url}/models", upstream)
        for k, workers in enumerate(args.workers):
            chunk = all_texts[k * per_run : (k + 1) * per_run]  # never a text another run has seen
            bodies = [
                json.dumps(
                    {"model": "echo", "messages": [{"role": "user", "content": t}], "max_tokens": 8}
                ).encode()
                for t in chunk
            ]
            measure(args, workers, upstream_url, bodies)
    if args.profile:
        profile_in_process(
            texts(args.data, args.tokens, args.profile + 1), args.threads or os.cpu_count() or 2
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load benchmark: the CPU and latency the promptpress proxy adds in front of a fast upstream, beside its
peers in the same run.

Starts the mock OpenAI upstream (uvicorn) and `promptpress serve` (compression off) as separate
processes on loopback, and the peers asked for: the LiteLLM proxy (when `litellm` is installed, or
named with --litellm), and bare pass-throughs (`floor_proxy.py`: aiohttp, raw, httpx). Then drives N
concurrent keep-alive clients for a bounded number of chat-completion requests against each in turn,
round after round (same request, same upstream, the upstream straight first), and prints latency
percentiles, the added latency (proxy minus direct), errors and the CPU time (user + system, from
/proc) each proxy's processes spent per request: the figure of record, since other load on the
machine moves latencies far more than it moves CPU per request.

    python benchmarks/bench_proxy.py --concurrency 50 --requests 6000
    python benchmarks/bench_proxy.py --peers aiohttp raw litellm --litellm /path/to/venv/bin/litellm

LiteLLM runs with one worker, no database, no master key, no callbacks and its bundled model-cost
map (``pip install 'litellm[proxy]'``; a separate virtualenv is fine: --litellm names its ``litellm``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from proxy_load import (
    MOCK_UPSTREAM,
    Run,
    cpu_seconds,
    free_port,
    loadavg,
    report,
    spawn,
    start_promptpress,
    start_uvicorn,
    stop,
    wait_ready,
)
from proxy_load import load as run_load

BODY = json.dumps(
    {
        "model": "echo",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
    }
).encode()
FLOORS = ("aiohttp", "raw", "httpx")
HERE = Path(__file__).resolve().parent
LITELLM_CONFIG = """model_list:
  - model_name: echo
    litellm_params: {{model: openai/echo, api_base: "{upstream}", api_key: sk-bench}}
litellm_settings: {{telemetry: false}}
"""
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the cost map at start-up (offline)
    "LITELLM_LOG": "ERROR",
    "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",  # no key: like promptpress's default
}


@dataclass
class Target:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    requests: int
    run: Run
    cpu: float = 0.0  # the target's processes, over the measured requests
    upstream_cpu: float = 0.0  # the upstream's, meanwhile


def litellm_command(spec: str) -> tuple[list[str], str] | None:
    """The command that runs the LiteLLM proxy and its version; None when it is not installed."""
    if spec == "auto":
        found = shutil.which("litellm")
        if found is None and importlib.util.find_spec("litellm") is None:
            return None
        spec = found or ""
    python = Path(spec).parent / "python" if spec else Path(sys.executable)
    command = (
        [spec] if spec else [sys.executable, "-c", "import sys, litellm; sys.exit(litellm.run_server())"]
    )
    try:
        version = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
    except OSError:
        version = ""
    return command, version or "?"


def start_litellm(command: list[str], port: int, upstream_url: str, workdir: str) -> subprocess.Popen[bytes]:
    config = Path(workdir) / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(upstream=upstream_url))
    command = [*command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    return spawn([*command, "--num_workers", "1"], LITELLM_ENV, log=str(Path(workdir) / "litellm.log"))


def measure(target: Target, upstream: subprocess.Popen[bytes], concurrency: int, requests: int) -> None:
    before, before_upstream = cpu_seconds(target.process.pid), cpu_seconds(upstream.pid)
    target.run.merge(asyncio.run(run_load(target.port, "/v1/chat/completions", concurrency, requests, _body)))
    target.cpu += cpu_seconds(target.process.pid) - before
    target.upstream_cpu += cpu_seconds(upstream.pid) - before_upstream


def _body(number: int) -> bytes:
    return BODY


def per_request_ms(cpu: float, run: Run) -> float:
    return cpu / max(len(run.latencies), 1) * 1000


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent keep-alive clients")
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests per target")
    parser.add_argument("--rounds", type=int, default=2, help="measure the targets in turn this many times")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured requests per target first")
    parser.add_argument("--proxy-workers", type=int, default=1, help="worker processes of promptpress serve")
    parser.add_argument(
        "--peers",
        nargs="*",
        default=["litellm"],
        choices=[*FLOORS, "litellm"],
        help="measured beside promptpress (default: litellm, when installed): the LiteLLM proxy and "
        "bare pass-throughs of floor_proxy.py (aiohttp, raw: hand-written HTTP/1.1, httpx)",
    )
    parser.add_argument(
        "--litellm", default="auto", help="the litellm command (default: on PATH or importable)"
    )
    parser.add_argument("--peer-requests", type=int, default=None, help="measured requests per peer")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.requests < args.concurrency or args.rounds < 1:
        parser.error("need concurrency >= 1, requests >= concurrency, rounds >= 1")
    return args


def start_targets(args: argparse.Namespace, upstream_url: str, stack: ExitStack) -> list[Target]:
    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-proxy-"))
    peer_requests = args.peer_requests or args.requests
    starts: list[tuple[str, int, Callable[[int], subprocess.Popen[bytes]]]] = [
        (
            "promptpress",
            args.requests,
            lambda port: start_promptpress(
                port, upstream_url, workers=args.proxy_workers, env={"PROMPTPRESS_COMPRESS": "false"}
            ),
        )
    ]
    floor_env = {"PROMPTPRESS_BENCH_UPSTREAM": upstream_url, "PYTHONPATH": str(HERE)}
    for peer in args.peers:
        if peer in FLOORS:
            factory = f"floor_proxy:create_{peer}_proxy"
            starts.append(
                (f"floor-{peer}", peer_requests, lambda port, f=factory: start_uvicorn(f, port, floor_env))
            )
        else:
            found = litellm_command(args.litellm)
            if found is None:
                print(
                    "LiteLLM is not installed: peer skipped (pip install 'litellm[proxy]', or --litellm PATH)"
                )
                continue
            command, version = found
            print(f"LiteLLM {version}: {' '.join(command[:1])}")
            starts.append(
                (
                    f"litellm-{version}",
                    peer_requests,
                    lambda port, c=command: start_litellm(c, port, upstream_url, workdir),
                )
            )
    targets = []
    for name, requests, starter in starts:
        port = free_port()
        process = starter(port)
        stack.callback(stop, process)
        health = "/health/liveliness" if name.startswith("litellm") else "/healthz"
        wait_ready(f"http://127.0.0.1:{port}{health}", process)
        targets.append(Target(name, port, process, requests, Run()))
    return targets


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    with ExitStack() as stack:
        upstream = start_uvicorn(MOCK_UPSTREAM, upstream_port, {})
        stack.callback(stop, upstream)
        wait_ready(f"{upstream_url}/models", upstream)
        direct = Target("direct", upstream_port, upstream, args.requests, Run())
        targets = start_targets(args, upstream_url, stack)
        print(
            f"concurrency={args.concurrency}, requests per target={args.requests} (peers "
            f"{args.peer_requests or args.requests}), {args.rounds} round(s), promptpress workers="
            f"{args.proxy_workers}, cpus={os.cpu_count()}, load average {loadavg()}"
        )
        for target in [direct, *targets]:
            asyncio.run(run_load(target.port, "/v1/chat/completions", args.concurrency, args.warmup, _body))
        for _ in range(args.rounds):
            for target in [direct, *targets]:
                per_round = max(args.concurrency, target.requests // args.rounds)
                if target is direct:
                    before = cpu_seconds(upstream.pid)
                    direct.run.merge(
                        asyncio.run(
                            run_load(
                                upstream_port, "/v1/chat/completions", args.concurrency, per_round, _body
                            )
                        )
                    )
                    direct.upstream_cpu += cpu_seconds(upstream.pid) - before
                else:
                    measure(target, upstream, args.concurrency, per_round)
        width = max(len(t.name) for t in targets) + 1
        base = report("direct", direct.run, width)
        for target in targets:
            row = report(target.name, target.run, width)
            print(f"{'':<{width}} added p50={row[50] - base[50]:+8.2f} ms  p99={row[99] - base[99]:+8.2f} ms")
        ours = per_request_ms(targets[0].cpu, targets[0].run)
        print("CPU ms per request (user+sys, /proc):")
        for target in targets:
            cpu = per_request_ms(target.cpu, target.run)
            ratio = f"  ({cpu / ours:.1f}x promptpress)" if target is not targets[0] and ours else ""
            upstream_cpu = per_request_ms(target.upstream_cpu, target.run)
            print(f"  {target.name:<{width}} {cpu:8.3f}{ratio}   (upstream behind it {upstream_cpu:.3f})")
        print(f"  {'upstream':<{width}} {per_request_ms(direct.upstream_cpu, direct.run):8.3f} (direct)")
        print(f"load average at the end {loadavg()} (other load on the machine inflates the latencies)")
        errors = sum(sum(t.run.errors.values()) for t in [direct, *targets])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

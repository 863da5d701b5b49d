"""Load benchmark: latency and CPU the promptpress proxy adds in front of a fast upstream.

Starts the mock OpenAI upstream (uvicorn) and the proxy (`promptpress serve`, compression off) as
separate processes on loopback, then drives N concurrent keep-alive clients for a bounded number of
chat-completion requests, alternately straight to the upstream and through the proxy (same request,
same upstream), and prints latency percentiles, the added latency (proxy minus direct), the errors,
and the CPU time (user + system, from /proc) the proxy's processes and the upstream spent per request.

    python benchmarks/bench_proxy.py --concurrency 50 --requests 10000
    python benchmarks/bench_proxy.py --floor raw ...   # the same against a bare pass-through

The client is a minimal HTTP/1.1 keep-alive client on asyncio streams so that it measures the
servers, not itself. Everything shares the machine's cores: latencies need a quiet machine; the CPU
time per request is what the proxy costs whatever else runs (it is far less sensitive to other load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field

BODY = json.dumps(
    {
        "model": "echo",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
    }
).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def start(target: str, port: int, env: dict[str, str], workers: int) -> subprocess.Popen[bytes]:
    """uvicorn serving the app factory `target`."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    command += ["--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    return _spawn(command, env)


def start_proxy(port: int, upstream_url: str, log_level: str, workers: int) -> subprocess.Popen[bytes]:
    """`promptpress serve`, as users run it, with compression off."""
    command = [sys.executable, "-c", "import sys; from promptpress.service.cli import main; sys.exit(main())"]
    command += ["serve", "--port", str(port), "--upstream", upstream_url, "--log-level", log_level]
    command += ["--workers", str(workers)]
    return _spawn(command, {"PROMPTPRESS_COMPRESS": "false"})


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def merge(self, other: Run) -> None:
        self.latencies += other.latencies
        self.seconds += other.seconds
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def client(port: int, path: str, count: int, run: Run) -> None:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-bench\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    reader = writer = None
    for _ in range(count):
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            start = time.perf_counter()
            writer.write(request)
            status = await asyncio.wait_for(_read_response(reader), 30)  # type: ignore[arg-type]
            run.latencies.append(time.perf_counter() - start)
            if status != 200:
                run.error(f"http_{status}")
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            run.error(type(exc).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def load(port: int, path: str, concurrency: int, requests: int) -> Run:
    run = Run()
    share = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
    start = time.perf_counter()
    await asyncio.gather(*(client(port, path, n, run) for n in share if n))
    run.seconds = time.perf_counter() - start
    return run


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (uvicorn workers), Linux only."""
    try:
        ticks = sum(int(v) for v in _stat(pid)[11:13])
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = _stat(int(entry))
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    ticks += sum(int(v) for v in fields[11:13])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "?"


def per_request_ms(cpu: float, run: Run) -> str:
    """CPU time per answered request over one phase: robust to other load on the machine (wall-clock
    latencies are not)."""
    return f"{cpu / max(len(run.latencies), 1) * 1000:.3f}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def report(name: str, run: Run) -> dict[str, float]:
    ms = [v * 1000 for v in run.latencies]
    row = {q: percentile(ms, q) for q in (50, 90, 99)}
    rps = len(ms) / run.seconds if run.seconds else 0
    print(
        f"{name:<8} n={len(ms):>6}  p50={row[50]:7.2f} ms  p90={row[90]:7.2f} ms  p99={row[99]:7.2f} ms  "
        f"mean={statistics.fmean(ms) if ms else float('nan'):7.2f} ms  {rps:7.0f} req/s  errors={sum(run.errors.values())} "
        f"{run.errors or ''}"
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent keep-alive clients")
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests per target")
    parser.add_argument("--rounds", type=int, default=2, help="alternate direct/proxy this many times")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured requests per target first")
    parser.add_argument("--proxy-workers", type=int, default=1, help="uvicorn worker processes of the proxy")
    parser.add_argument("--log-level", default="warning", help="proxy log level (info logs every request)")
    parser.add_argument(
        "--floor",
        choices=["httpx", "aiohttp", "raw"],
        default=None,
        help="measure a bare pass-through of benchmarks/floor_proxy.py instead of promptpress serve "
        "(httpx.AsyncClient, aiohttp.ClientSession, or raw: hand-written HTTP/1.1 on asyncio streams)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.requests < args.concurrency or args.rounds < 1:
        parser.error("need concurrency >= 1, requests >= concurrency, rounds >= 1")

    upstream_port, proxy_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    with ExitStack() as stack:
        upstream = start("promptpress.service.mock_upstream:create_mock_upstream", upstream_port, {}, 1)
        stack.callback(upstream.terminate)
        if args.floor:
            here = os.path.dirname(os.path.abspath(__file__))
            env = {"PROMPTPRESS_BENCH_UPSTREAM": upstream_url, "PYTHONPATH": here}
            factory = f"create_{args.floor}_proxy"
            proxy = start(f"floor_proxy:{factory}", proxy_port, env, args.proxy_workers)
        else:
            proxy = start_proxy(proxy_port, upstream_url, args.log_level, args.proxy_workers)
        stack.callback(proxy.terminate)
        wait_ready(f"http://127.0.0.1:{upstream_port}/v1/models", upstream)
        wait_ready(f"http://127.0.0.1:{proxy_port}/healthz", proxy)
        path = "/v1/chat/completions"
        print(
            f"concurrency={args.concurrency} requests={args.requests} per target, {args.rounds} round(s), "
            f"proxy workers={args.proxy_workers}{f' (floor_proxy.py {args.floor})' if args.floor else ''}, "
            f"cpus={os.cpu_count()}, load average {_loadavg()}"
        )
        asyncio.run(load(upstream_port, path, args.concurrency, args.warmup))
        asyncio.run(load(proxy_port, path, args.concurrency, args.warmup))
        direct, proxied = Run(), Run()
        per_round = args.requests // args.rounds
        proxy_cpu = upstream_direct_cpu = upstream_proxied_cpu = 0.0
        for _ in range(args.rounds):
            before = cpu_seconds(upstream.pid)
            direct.merge(asyncio.run(load(upstream_port, path, args.concurrency, per_round)))
            upstream_direct_cpu += cpu_seconds(upstream.pid) - before
            before, before_upstream = cpu_seconds(proxy.pid), cpu_seconds(upstream.pid)
            proxied.merge(asyncio.run(load(proxy_port, path, args.concurrency, per_round)))
            proxy_cpu += cpu_seconds(proxy.pid) - before
            upstream_proxied_cpu += cpu_seconds(upstream.pid) - before_upstream
        d = report("direct", direct)
        p = report("proxy", proxied)
        print(f"added    p50={p[50] - d[50]:+7.2f} ms  p99={p[99] - d[99]:+7.2f} ms  (proxy minus direct)")
        print(
            "CPU ms per request (user+sys, /proc):  "
            f"proxy {per_request_ms(proxy_cpu, proxied)}  |  upstream {per_request_ms(upstream_direct_cpu, direct)}"
            f" direct, {per_request_ms(upstream_proxied_cpu, proxied)} behind the proxy"
        )
        print(f"load average at the end {_loadavg()} (other load on the machine inflates the latencies)")
        errors = sum(direct.errors.values()) + sum(proxied.errors.values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

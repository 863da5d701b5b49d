"""What the proxy benchmarks share: server processes on loopback, a lean keep-alive load client, CPU time
from /proc, and the percentile report.

The client is a minimal HTTP/1.1 keep-alive client on asyncio streams so that it measures the servers,
not itself (Content-Length answers only, which is what the mock upstream, promptpress and LiteLLM send
for non-streaming requests).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

MOCK_UPSTREAM = "promptpress.service.mock_upstream:create_mock_upstream"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(command: list[str], env: dict[str, str], log: str | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=out)


def start_uvicorn(target: str, port: int, env: dict[str, str], workers: int = 1) -> subprocess.Popen[bytes]:
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
    return spawn(command, env)


def start_promptpress(
    port: int,
    upstream_url: str,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log: str | None = None,
) -> subprocess.Popen[bytes]:
    """`promptpress serve`, as users run it (settings in `env`, e.g. ``PROMPTPRESS_COMPRESS``)."""
    command = [sys.executable, "-c", "import sys; from promptpress.service.cli import main; sys.exit(main())"]
    command += ["serve", "--port", str(port), "--upstream", upstream_url, "--workers", str(workers)]
    return spawn(command, env or {}, log)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
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


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    headers: list[dict[bytes, bytes]] = field(default_factory=list)  # when asked to keep them

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def merge(self, other: Run) -> None:
        self.latencies += other.latencies
        self.seconds += other.seconds
        self.headers += other.headers
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get(b"content-length", 0))
    if length:
        await reader.readexactly(length)
    return int(lines[0].split()[1]), headers


Bodies = Callable[[int], bytes]  # the body of the i-th request


async def client(
    port: int, path: str, numbers: list[int], body: Bodies, run: Run, keep_headers: bool, timeout: float
) -> None:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    head += "Authorization: Bearer sk-bench\r\n"
    reader = writer = None
    for number in numbers:
        content = body(number)
        request = f"{head}Content-Length: {len(content)}\r\n\r\n".encode() + content
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            start = time.perf_counter()
            writer.write(request)
            status, headers = await asyncio.wait_for(_read_response(reader), timeout)  # type: ignore[arg-type]
            run.latencies.append(time.perf_counter() - start)
            if keep_headers:
                run.headers.append(headers)
            if status != 200:
                run.error(f"http_{status}")
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            run.error(type(exc).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def load(
    port: int,
    path: str,
    concurrency: int,
    requests: int,
    body: Bodies,
    *,
    first: int = 0,
    keep_headers: bool = False,
    timeout: float = 30,
) -> Run:
    """`requests` requests (numbered from `first`) over `concurrency` keep-alive connections, each
    sending its next request when the previous one is answered."""
    run = Run()
    numbers = [list(range(first + i, first + requests, concurrency)) for i in range(concurrency)]
    start = time.perf_counter()
    await asyncio.gather(*(client(port, path, n, body, run, keep_headers, timeout) for n in numbers if n))
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


def loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "?"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def report(name: str, run: Run, width: int = 8) -> dict[float, float]:
    """Print one line of latency percentiles (ms), throughput and errors; returns the percentiles."""
    ms = [v * 1000 for v in run.latencies]
    row = {q: percentile(ms, q) for q in (50, 90, 99)}
    rps = len(ms) / run.seconds if run.seconds else 0
    mean = statistics.fmean(ms) if ms else float("nan")
    print(
        f"{name:<{width}} n={len(ms):>6}  p50={row[50]:8.2f} ms  p90={row[90]:8.2f} ms  p99={row[99]:8.2f} ms  "
        f"mean={mean:8.2f} ms  {rps:7.1f} req/s  errors={sum(run.errors.values())} {run.errors or ''}"
    )
    return row

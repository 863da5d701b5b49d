"""Redis fixtures (owned by the cache lane): tests start their own redis-server on a free port.

Never the machine's 6379. Fixtures:

- ``redis_server`` (session): one ``redis-server --save '' --appendonly no`` on a free loopback
  port; a :class:`RedisServer` with ``.url``, ``.port``, ``.stop()``, ``.start()`` (same port),
  ``.client()``, ``.flush()``.
- ``redis_url`` (function): the session server, (re)started if a test stopped it, ``FLUSHALL``-ed,
  as a URL. Use this for independent tests.
- ``redis_cluster`` (session): a 3-master Redis Cluster on loopback ports
  (``.url`` is ``redis+cluster://127.0.0.1:<port>``, ``.ports``, ``.client()``, ``.flush()``).

Without the ``redis-server`` binary the tests skip, except under CI (env ``CI=true``), where
they fail: CI must install it (``.ci/run`` does).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.cluster

__all__ = ["RedisCluster", "RedisServer", "free_port", "require_binary"]


def require_binary(name: str) -> str:
    """Path of ``name``; skip the test without it, or fail under CI."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if path:
        return path
    message = f"{name} not found on PATH; install redis-server (Debian: apt-get install redis-server)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} -- required under CI", pytrace=False)
    pytest.skip(message)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(cluster_bus: bool = False) -> int:
    """A free loopback port (and port + 10000 free too when ``cluster_bus``)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port == 6379 or (cluster_bus and (port > 55000 or not _port_free(port + 10000))):
            continue
        return port
    raise RuntimeError("no free port found")


class RedisServer:
    """One redis-server process on a fixed loopback port; can be stopped and restarted."""

    def __init__(self, binary: str, port: int, workdir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.binary, self.port, self.workdir, self.extra_args = binary, port, workdir, extra_args
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        log = self.workdir / "redis.log"
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        args += ["--dir", str(self.workdir), "--logfile", str(log), "--daemonize", "no", *self.extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(
                    f"redis-server on port {self.port} exited ({self.proc.returncode}):\n{tail}"
                )
            try:
                with redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5) as c:
                    if c.ping():
                        return
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within {timeout}s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)  # in case a test paused it
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections hang instead of being refused, like a stuck server."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def flush(self) -> None:
        with self.client() as c:
            c.flushall()


class RedisCluster:
    """Three redis-server masters joined into one cluster with ``redis-cli --cluster create``."""

    def __init__(self, binary: str, cli: str, workdir: Path, masters: int = 3) -> None:
        self.cli = cli
        self.nodes: list[RedisServer] = []
        for i in range(masters):
            port = free_port(cluster_bus=True)
            while port in self.ports:
                port = free_port(cluster_bus=True)
            args = ("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf")
            args += ("--cluster-node-timeout", "5000")
            self.nodes.append(RedisServer(binary, port, workdir / f"node{i}", args))

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        addrs = [f"127.0.0.1:{p}" for p in self.ports]
        done = subprocess.run(
            [self.cli, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}")
        self.wait_ok(timeout)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every node is up and reports ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for port in self.ports:
                try:
                    with redis.Redis(port=port, socket_timeout=1) as c:
                        states.append(c.cluster("info").get("cluster_state"))
                except redis.RedisError:
                    states.append("down")
            if all(s == "ok" for s in states):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"cluster did not reach cluster_state:ok within {timeout}s")

    def client(self) -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster(host="127.0.0.1", port=self.ports[0], socket_timeout=2)

    def flush(self) -> None:
        for node in self.nodes:
            node.flush()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = require_binary("redis-server")
    with tempfile.TemporaryDirectory(prefix="pp-redis-") as tmp:
        server = RedisServer(binary, free_port(), Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.resume()  # a previous test may have paused
    redis_server.start()  # ... or stopped it
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    binary = require_binary("redis-server")
    cli = require_binary("redis-cli")
    with tempfile.TemporaryDirectory(prefix="pp-redis-cluster-") as tmp:
        cluster = RedisCluster(binary, cli, Path(tmp))
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(Exception):
                cluster.stop()

"""`promptpress serve --with-backend` as a child of a benchmark: started in its own process group,
waited for, and stopped with everything it started (the llama.cpp backend included), whatever ends the
benchmark.

- The server runs in a new session (its own process group); the llama.cpp backend it starts stays in
  that group (`LocalBackend` does not start a new session) and stops when its stdin, a pipe from the
  server, closes.
- On Linux the server gets SIGTERM when the benchmark dies, even by SIGKILL (`PR_SET_PDEATHSIG`), so
  it shuts down and stops the backend itself.
- `stop()` asks the server to shut down (SIGTERM: uvicorn's graceful exit, then `LocalBackend.stop()`),
  then SIGTERM and SIGKILL to whatever is left of the group, and returns the pids still alive (none).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def group_members(pgid: int) -> list[int]:
    """Pids of the live processes of process group `pgid` (from /proc; zombies excluded)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


class ServeProcess:
    """One `promptpress serve --with-backend` on 127.0.0.1:`port`."""

    def __init__(
        self,
        port: int,
        *,
        backend_threads: int = 1,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.command = [
            sys.executable,
            "-m",
            "promptpress.service.cli",
            "serve",
            "--with-backend",
            "--port",
            str(port),
            "--backend-threads",
            str(backend_threads),
            *(extra_args or []),
        ]
        self.env = dict(env or {})
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 900.0) -> ServeProcess:
        out: Any = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child holds its own descriptor
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=5) as response:
                data: dict[str, Any] = json.loads(response.read())
                return data
        except (OSError, ValueError):
            return None

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Wait until /healthz answers with a compressor and an upstream (the backend is started before
        the HTTP server listens, so an answer means both are up)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"promptpress serve exited with status {self.process.returncode} (log: {self.log_path})"
                )
            health = self.health()
            if health is not None:
                if not health.get("compressor") or not health.get("upstream"):
                    raise RuntimeError(f"promptpress serve is up but degraded: {health}")
                return health
            time.sleep(1.0)
        raise TimeoutError(f"promptpress serve not ready after {timeout:.0f} s (log: {self.log_path})")

    def stop(self, grace: float = 45.0) -> list[int]:
        """Stop the server and everything in its process group; returns pids that survived (none
        unless SIGKILL itself failed)."""
        process, self.process = self.process, None
        if process is None:
            return []
        pgid = process.pid  # the session leader's pid is the group id
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # uvicorn shuts down, then `LocalBackend.stop()`
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            if not group_members(pgid):
                break
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
        if process.poll() is None:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        return group_members(pgid)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

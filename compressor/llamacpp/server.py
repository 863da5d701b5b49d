"""A local, quantized, OpenAI-compatible LLM: llama.cpp (the ``xllamacpp`` wheel) on a packaged GGUF.

::

    with LocalBackend() as backend:            # Qwen2.5-Coder-0.5B-Instruct Q4_K_M, loopback, free port
        client = openai.OpenAI(base_url=backend.base_url, api_key="-")
        client.chat.completions.create(model=backend.model_name, messages=[...], max_tokens=16)

The server runs in a child process (``python -m promptpress.compressor.llamacpp``): llama.cpp's
threads and memory stay out of the caller's process, a crash cannot take the caller down, and the
child exits when the parent's pipe closes, so it never outlives its parent.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from promptpress.compressor.assets import resolve

DEFAULT_MODEL = "package:qwen2.5-coder-0.5b-instruct-q4_k_m"


class BackendError(RuntimeError):
    """The llama.cpp server could not be started; the message includes the end of its log."""


class LocalBackend:
    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        host: str = "127.0.0.1",
        port: int | None = None,
        ctx_size: int = 8192,
        threads: int | None = None,
        *,
        parallel: int = 1,
        prompt_cache: bool = True,
        alias: str | None = None,
        startup_timeout: float = 180.0,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if ctx_size < 1:
            raise ValueError(f"ctx_size must be positive, got {ctx_size}")
        if parallel < 1:
            raise ValueError(f"parallel must be >= 1, got {parallel}")
        if port is not None and not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self.model = model
        self.host = host
        self.port = port
        self.ctx_size = ctx_size
        self.threads = threads
        self.parallel = parallel
        self.prompt_cache = prompt_cache
        self.alias = alias
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._temporary_log = False
        self._base_url: str | None = None
        self._model_name: str | None = None

    # --- public API ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port/v1`` (valid after `start`)."""
        if self._base_url is None:
            raise BackendError("the backend is not started; call start() first")
        return self._base_url

    @property
    def model_name(self) -> str:
        """The model name the server answers to (its alias; default: the GGUF file's stem)."""
        if self._model_name is None:
            return self.alias or self._default_alias()
        return self._model_name

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> LocalBackend:
        """Start the server and wait until it answers; raises `BackendError` with its log otherwise."""
        if self.running:
            return self
        path = self._resolve()
        alias = self.alias or path.stem
        command = [
            sys.executable,
            "-m",
            "promptpress.compressor.llamacpp",
            "--model",
            str(path),
            "--alias",
            alias,
            "--host",
            self.host,
            "--port",
            str(self.port or 0),
            "--ctx-size",
            str(self.ctx_size),
            "--parallel",
            str(self.parallel),
            "--threads",
            str(self.threads or 0),
            "--ready-timeout",
            str(self.startup_timeout),
        ]
        if not self.prompt_cache:
            command.append("--no-prompt-cache")
        if self.log_path is None:
            self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (kept open for the child's life)
                prefix="promptpress-backend-", suffix=".log", delete=False
            )
            self.log_path = Path(self._log.name)
            self._temporary_log = True
        else:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, start_new_session=False
        )
        ready = self._wait_ready()
        self._base_url = ready["base_url"]
        self._model_name = ready["model"]
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`) and remove its temporary log."""
        self._halt(timeout)
        self._forget_log()

    def _halt(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                process.terminate()
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process is not None:
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._base_url = None

    def _forget_log(self) -> None:
        if self._temporary_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None
            self._temporary_log = False

    def __enter__(self) -> LocalBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._base_url or "not started"
        return f"LocalBackend(model={self.model!r}, {where})"

    # --- internals ------------------------------------------------------------------------------------

    def _resolve(self) -> Path:

        path = Path(resolve(self.model))
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) != 1:
                raise BackendError(f"{path} must hold exactly one .gguf file, found {len(ggufs)}")
            path = ggufs[0]
        if path.suffix != ".gguf":
            raise BackendError(f"the backend needs a GGUF model file, got {path}")
        return path

    def _default_alias(self) -> str:
        return self.model.removeprefix("package:").rsplit("/", 1)[-1].removesuffix(".gguf")

    def _wait_ready(self) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self._process.stdout

        def read() -> None:
            for line in iter(stdout.readline, b""):
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout + 10
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if self._process.poll() is not None:
                    self._fail(f"the llama.cpp server exited with code {self._process.returncode}")
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("ready"):
                return message
        self._fail(f"the llama.cpp server was not ready after {self.startup_timeout:g} s")
        raise AssertionError("unreachable")

    def _fail(self, reason: str) -> None:
        self._halt()
        tail = ""
        if self.log_path and self.log_path.is_file():
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        raise BackendError(f"{reason}; log {self.log_path}:\n{tail}")

"""Running the service: the app as a server process serves it, and uvicorn in a background thread.

`server_app(settings)` is what `promptpress serve` runs; `app_from_environment()` is the same app
built from ``PROMPTPRESS_*`` environment variables and ``.env``: the factory the worker processes of
`promptpress serve --workers N` import (``uvicorn promptpress.service.serving:app_from_environment
--factory`` works too; with ``--workers``, set ``PROMETHEUS_MULTIPROC_DIR`` as serve does).

`ServerThread` runs an ASGI app with uvicorn in a background thread on a (free) loopback port. Used by
the tests, and handy to embed the proxy in another program::

    with ServerThread(create_app(settings)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="-")
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .app import create_app
from .http_protocol import http_protocol
from .metrics import release_process
from .settings import Settings

__all__ = ["ServerProcessApp", "ServerThread", "app_from_environment", "free_port", "server_app"]


class ServerProcessApp:
    """The app as the only one a server process serves: around its lifespan, the process-wide chores.

    - Once startup is complete (the compressor model and its libraries loaded), every live object
      goes into the garbage collector's permanent generation (`gc.freeze`). The loaded
      torch/transformers stack is a few hundred thousand long-lived objects that the cyclic collector
      would otherwise walk on every full collection, about once per few hundred requests on a busy
      proxy: each walk stops the event loop for 0.1-0.3 s (every request in flight waits) and costs
      CPU. Frozen objects are never collected, which is right for what lives as long as the process.
    - At shutdown, a worker's live gauges leave the shared metrics directory (`release_process`).

    Not used by `ServerThread`, which may run inside someone else's program."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:  # `.state`, `.routes`... of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_and_tend(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
            elif message["type"] == "lifespan.shutdown.complete":
                release_process()
            await send(message)

        await self.app(scope, receive, send_and_tend)


def server_app(settings: Settings) -> ASGIApp:
    """The app a server process serves: `create_app(settings)` in a `ServerProcessApp`."""
    return ServerProcessApp(create_app(settings))


def app_from_environment() -> ASGIApp:
    """`server_app` with settings from ``PROMPTPRESS_*`` variables and ``.env`` (the uvicorn factory of
    `promptpress serve --workers N`, which passes its command-line options to the workers that way)."""
    return server_app(Settings())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerThread:
    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        log_level: str = "warning",
        **kw: Any,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        kw.setdefault("http", http_protocol())
        config = uvicorn.Config(app, host=host, port=self.port, log_level=log_level, lifespan="on", **kw)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server on {self.url} failed to start (see its log)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the server on {self.url} did not start within {timeout:g} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The least a Python proxy can do: references for `bench_proxy.py --floor httpx|aiohttp|raw`.

Bare ASGI apps on the same server as `promptpress serve` (uvicorn), with none of its work: no
routing framework, no validation, no compression policy, no metrics, no logs, no disconnect
watcher. Each copies the request body to `$PROMPTPRESS_BENCH_UPSTREAM` + path and the answer back:

- `create_httpx_proxy`: upstream through one pooled `httpx.AsyncClient` (the usual client; httpx is
  not a dependency of the 'serve' extra: `pip install httpx` to run this one);
- `create_aiohttp_proxy`: upstream through one `aiohttp.ClientSession` (C-accelerated parser; the
  client `promptpress serve` uses);
- `create_raw_proxy`: upstream through hand-written HTTP/1.1 on asyncio streams (keep-alive pool,
  Content-Length bodies only): about the least CPU any client in Python can spend.

Whatever CPU per request the raw one needs, no proxy served by uvicorn needs less; the gap to
`promptpress serve` is what promptpress adds. Not a product: benchmarks only (no error mapping, no
streaming, no limits, no chunked bodies).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit


def _app(forward: Any) -> Any:
    """ASGI app: /healthz answers, any other request goes through `forward(path, body)`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, content = await forward(scope["path"].removeprefix("/v1"), body)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return app


def create_httpx_proxy() -> Any:
    import httpx

    upstream = os.environ["PROMPTPRESS_BENCH_UPSTREAM"].rstrip("/")
    client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=256))

    async def forward(path: str, body: bytes) -> tuple[int, bytes]:
        response = await client.post(
            upstream + path, content=body, headers={"content-type": "application/json"}
        )
        return response.status_code, response.content

    return _app(forward)


def create_aiohttp_proxy() -> Any:
    import aiohttp

    upstream = os.environ["PROMPTPRESS_BENCH_UPSTREAM"].rstrip("/")
    session: list[Any] = []

    async def forward(path: str, body: bytes) -> tuple[int, bytes]:
        if not session:
            session.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)))
        headers = {"content-type": "application/json"}
        async with session[0].post(upstream + path, data=body, headers=headers) as response:
            return response.status, await response.read()

    return _app(forward)


def create_raw_proxy() -> Any:
    url = urlsplit(os.environ["PROMPTPRESS_BENCH_UPSTREAM"].rstrip("/"))
    host, port, prefix = url.hostname or "127.0.0.1", url.port or 80, url.path
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def forward(path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = idle.pop() if idle else await asyncio.open_connection(host, port)
        writer.write(
            f"POST {prefix}{path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(
            int(v) for n, _, v in (ln.partition(b":") for ln in lines[1:]) if n.lower() == b"content-length"
        )
        content = await reader.readexactly(length)
        idle.append((reader, writer))
        return int(lines[0].split()[1]), content

    return _app(forward)

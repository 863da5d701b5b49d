"""Relaying the upstream's answer to the client: response header hygiene, upstream errors in OpenAI's
shape, the JSON answer (with promptpress's usage when asked), and an SSE relay that passes chunks
through as they arrive and cancels the upstream when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .disconnect import until_disconnect
from .errors import error_body
from .logs import event
from .metrics import Metrics
from .upstream import UpstreamResponse, is_timeout, read_body

# never passed back to the client (RFC 9110 hop-by-hop, what uvicorn recomputes, the encoding of
# an answer aiohttp decompressed, and the upstream's own server and date)
_RESPONSE_DROP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"host",
    b"content-length",
    b"content-encoding",
    b"accept-encoding",
    b"server",
    b"date",
}


def response_headers(upstream: UpstreamResponse, extra: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers that go on (each as sent: a repeated header stays repeated),
    then `extra`."""
    out = []
    for name, value in upstream.raw_headers:
        name = name.lower()
        if name not in _RESPONSE_DROP:
            out.append((name, value))
    out += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    return out


def _response(content: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> Response:
    response = Response(content, status_code=status)  # its raw headers: the content-length
    response.raw_headers += headers
    return response


def error_response(upstream: UpstreamResponse, content: bytes, extra: Mapping[str, str]) -> Response:
    """An upstream error, passed through when it already has OpenAI's shape, wrapped otherwise."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("error"), (dict, str))):
        text = content.decode("utf-8", "replace").strip()[:500] or (upstream.reason or "")
        data = error_body(
            f"upstream returned HTTP {upstream.status}: {text}", "upstream_error", code="upstream_error"
        )
        content = json.dumps(data).encode()
    headers = [h for h in response_headers(upstream, extra) if h[0] != b"content-type"]
    return _response(content, upstream.status, [*headers, (b"content-type", b"application/json")])


async def json_response(
    upstream: UpstreamResponse, extra: Mapping[str, str], usage: dict[str, Any] | None, metrics: Metrics
) -> Response:
    content = await read_body(upstream, metrics)
    if upstream.status >= 400:
        metrics.upstream_errors.labels(f"http_{upstream.status // 100}xx").inc()
        return error_response(upstream, content, extra)
    if usage is not None:
        content = _with_usage(content, usage)
    return _response(content, upstream.status, response_headers(upstream, extra))


def _with_usage(content: bytes, usage: dict[str, Any]) -> bytes:
    try:
        data = json.loads(content)
    except ValueError:
        return content
    if not isinstance(data, dict):
        return content
    if not isinstance(data.get("usage"), dict):
        data["usage"] = {}
    data["usage"]["promptpress"] = usage
    return json.dumps(data, ensure_ascii=False).encode()


def sse_error(message: str, code: str) -> bytes:
    return b"data: " + json.dumps(error_body(message, "upstream_error", code=code)).encode() + b"\n\n"


class RelayResponse(StreamingResponse):
    """A streaming response that always watches for the client's disconnect (whatever the ASGI spec
    version) and then stops relaying at once; `closing`, when given, runs after it in any case (it
    releases the upstream's connection even when the relay never started)."""

    def __init__(self, content: Any, *, closing: Callable[[], object] | None = None, **kw: Any) -> None:
        super().__init__(content, **kw)
        self.closing = closing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def relay() -> None:
            with contextlib.suppress(OSError):  # the client went away mid-send
                await self.stream_response(send)

        try:
            await until_disconnect(scope, receive, relay)
        finally:
            if self.closing is not None:
                self.closing()


async def relay_chunks(upstream: UpstreamResponse, metrics: Metrics) -> AsyncIterator[bytes]:
    """Upstream bytes as they arrive. A stream cut or stalled mid-way ends with an SSE error event
    (the status line is already sent), which OpenAI clients raise as an APIError."""
    try:
        async for chunk in upstream.content.iter_any():
            yield chunk
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        if is_timeout(exc):
            metrics.upstream_errors.labels("stream_timeout").inc()
            event("upstream_stream_timeout", logging.WARNING)
            yield sse_error("the upstream stream stalled (read timeout)", "upstream_timeout")
        else:
            metrics.upstream_errors.labels("stream_cut").inc()
            event("upstream_stream_cut", logging.WARNING, error=type(exc).__name__)
            yield sse_error(f"the upstream stream was cut: {type(exc).__name__}", "upstream_cut")
    finally:
        upstream.release()  # back to the pool when read to its end, else the connection is closed


async def stream_response(upstream: UpstreamResponse, extra: Mapping[str, str], metrics: Metrics) -> Response:
    if upstream.status >= 400:
        return await json_response(upstream, extra, None, metrics)
    response = RelayResponse(
        relay_chunks(upstream, metrics), status_code=upstream.status, closing=upstream.release
    )
    response.raw_headers += response_headers(upstream, extra)
    return response

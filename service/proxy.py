"""Forwarding to the upstream OpenAI-compatible API: pooled httpx client, header hygiene, error mapping,
and an SSE relay that passes chunks through as they arrive and cancels the upstream when the client
goes away."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import httpx
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .errors import APIError, error_body
from .logs import event
from .metrics import Metrics

# never forwarded in either direction (RFC 9110 hop-by-hop, plus what httpx/uvicorn recompute)
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-encoding",
    "accept-encoding",
}
_RESPONSE_DROP = _HOP | {"server", "date"}
_REQUEST_DROP = _HOP | {"cookie", "authorization"}


# below the common 5 s server-side keep-alive timeout (uvicorn, nginx...): reuse never races a close
_KEEPALIVE_EXPIRY = 4.0


class Upstream:
    """An OpenAI-compatible upstream at `base_url` (which ends in ``/v1`` or equivalent)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        forward_client_auth: bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 300.0,
        write_timeout: float = 30.0,
        max_connections: int = 200,
        pools: int = 16,
    ) -> None:
        if pools < 1:
            raise ValueError(f"pools must be >= 1, got {pools}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.forward_client_auth = forward_client_auth
        # httpx's pool checks every pooled connection on each request (O(pool) work and syscalls), so
        # connections are spread over independent pools picked in turn: each stays small.
        per_pool = max(1, -(-max_connections // pools))
        timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=write_timeout, pool=connect_timeout
        )
        ssl_context = httpx.create_ssl_context()  # one for all pools: each costs ~50 ms
        self.clients = [
            httpx.AsyncClient(
                verify=ssl_context,
                base_url=self.base_url + "/",
                timeout=timeout,
                limits=httpx.Limits(
                    max_connections=per_pool,
                    max_keepalive_connections=per_pool,
                    keepalive_expiry=_KEEPALIVE_EXPIRY,
                ),
                follow_redirects=False,
                trust_env=True,  # HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE as usual
            )
            for _ in range(pools)
        ]
        self._turn = itertools.cycle(self.clients)

    def request_headers(self, client_headers: Mapping[str, str], *, stream: bool) -> dict[str, str]:
        out = {
            k: v
            for k, v in client_headers.items()
            if k.lower() not in _REQUEST_DROP and not k.lower().startswith("x-promptpress-")
        }
        if self.api_key:
            out["authorization"] = f"Bearer {self.api_key}"
        elif self.forward_client_auth and "authorization" in client_headers:
            out["authorization"] = client_headers["authorization"]
        out["content-type"] = "application/json"
        if stream:
            out["accept-encoding"] = "identity"  # relay bytes as they are, never a gzip stream
        return out

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        headers: dict[str, str],
        stream: bool,
        metrics: Metrics,
    ) -> httpx.Response:
        """Send and return the response (headers read; body unread when `stream`). Transport failures
        become 504 (timeouts) or 502 (anything else) in OpenAI's error shape."""
        client = next(self._turn)
        request = client.build_request(method, path.lstrip("/"), content=content, headers=headers)
        try:
            try:
                return await client.send(request, stream=stream)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # A pooled keep-alive connection the upstream had just closed: the request got no
                # answer at all. Send it once more on a fresh connection (as OpenAI's clients do).
                metrics.upstream_errors.labels("retried").inc()
                return await client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise transport_error(
                exc, metrics, "could not reach the upstream", "upstream_unavailable"
            ) from exc

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def transport_error(exc: httpx.HTTPError, metrics: Metrics, what: str, code: str) -> APIError:
    """504 for an upstream timeout, 502 with `what`/`code` for any other transport failure."""
    if isinstance(exc, httpx.TimeoutException):
        metrics.upstream_errors.labels("timeout").inc()
        return APIError(
            504, f"the upstream did not answer in time ({type(exc).__name__})", code="upstream_timeout"
        )
    metrics.upstream_errors.labels(code.removeprefix("upstream_")).inc()
    return APIError(502, f"{what}: {type(exc).__name__}: {exc}".rstrip(": "), code=code)


def response_headers(upstream: httpx.Response, extra: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in upstream.headers.items() if k.lower() not in _RESPONSE_DROP}
    out.update(extra)
    return out


def error_response(upstream: httpx.Response, content: bytes, extra: Mapping[str, str]) -> Response:
    """An upstream error, passed through when it already has OpenAI's shape, wrapped otherwise."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("error"), (dict, str))):
        text = content.decode("utf-8", "replace").strip()[:500] or upstream.reason_phrase
        data = error_body(
            f"upstream returned HTTP {upstream.status_code}: {text}", "upstream_error", code="upstream_error"
        )
        content = json.dumps(data).encode()
    headers = response_headers(upstream, extra)
    headers["content-type"] = "application/json"
    return Response(content, status_code=upstream.status_code, headers=headers)


async def json_response(
    upstream: httpx.Response, extra: Mapping[str, str], usage: dict[str, Any] | None, metrics: Metrics
) -> Response:
    try:
        content = await upstream.aread()
    except httpx.HTTPError as exc:
        raise transport_error(exc, metrics, "the upstream answer was cut", "upstream_cut") from exc
    finally:
        await upstream.aclose()
    if upstream.status_code >= 400:
        metrics.upstream_errors.labels(f"http_{upstream.status_code // 100}xx").inc()
        return error_response(upstream, content, extra)
    if usage is not None:
        content = _with_usage(content, usage)
    return Response(content, status_code=upstream.status_code, headers=response_headers(upstream, extra))


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
    version) and then stops relaying at once, which closes the upstream stream."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def relay() -> None:
                with contextlib.suppress(OSError):  # the client went away mid-send
                    await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(relay)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()


async def relay_chunks(upstream: httpx.Response, metrics: Metrics) -> AsyncIterator[bytes]:
    """Upstream bytes as they arrive. A stream cut or stalled mid-way ends with an SSE error event
    (the status line is already sent), which OpenAI clients raise as an APIError."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.TimeoutException:
        metrics.upstream_errors.labels("stream_timeout").inc()
        event("upstream_stream_timeout", logging.WARNING)
        yield sse_error("the upstream stream stalled (read timeout)", "upstream_timeout")
    except httpx.HTTPError as exc:
        metrics.upstream_errors.labels("stream_cut").inc()
        event("upstream_stream_cut", logging.WARNING, error=type(exc).__name__)
        yield sse_error(f"the upstream stream was cut: {type(exc).__name__}", "upstream_cut")
    finally:
        with anyio.CancelScope(shield=True):
            await upstream.aclose()


async def stream_response(upstream: httpx.Response, extra: Mapping[str, str], metrics: Metrics) -> Response:
    if upstream.status_code >= 400:
        return await json_response(upstream, extra, None, metrics)
    return RelayResponse(
        relay_chunks(upstream, metrics),
        status_code=upstream.status_code,
        headers=response_headers(upstream, extra),
    )

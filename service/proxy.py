"""Forwarding to the upstream OpenAI-compatible API: pooled httpx client, header hygiene, error mapping,
and an SSE relay that passes chunks through as they arrive and cancels the upstream when the client
goes away."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import httpx
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .errors import APIError, error_body
from .logs import event, redact_url
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
T = TypeVar("T")


# below the common 5 s server-side keep-alive timeout (uvicorn, nginx...): reuse never races a close
_KEEPALIVE_EXPIRY = 4.0
# what httpx.AsyncClient would add when the client sent none of these (requests go through the
# transport, below the client: see `Upstream`)
_DEFAULT_HEADERS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "user-agent": f"python-httpx/{httpx.__version__}",
}


def environment_proxy(url: str) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for `url`, None when there is
    none or ``NO_PROXY`` exempts its host (the standard library's reading of these variables)."""
    split = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(split.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(split.netloc):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class Upstream:
    """An OpenAI-compatible upstream at `base_url` (which ends in ``/v1`` or equivalent).

    Requests go straight to pooled httpx transports (`httpx.AsyncHTTPTransport`, one per pool). The
    `httpx.AsyncClient` layer above them (URL merging, cookie jar, auth and redirect flows, default
    headers, hooks) cost 0.1-0.3 ms of CPU per request and did nothing a proxy needs; its cookie jar
    even sent cookies the upstream had set for one client upstream with every other client's
    requests. Responses and errors are httpx's as before; its default request headers are kept, and
    proxies come from the environment (`environment_proxy`)."""

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
        self.display_url = redact_url(self.base_url)  # what may be shown: no userinfo
        self.api_key = api_key
        self.forward_client_auth = forward_client_auth
        self._extensions = {
            "timeout": httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=write_timeout, pool=connect_timeout
            ).as_dict()
        }
        self._urls: dict[str, httpx.URL] = {}
        # httpx's pool checks every pooled connection on each request (O(pool) work and syscalls), so
        # connections are spread over independent pools picked in turn: each stays small.
        per_pool = max(1, -(-max_connections // pools))
        ssl_context = httpx.create_ssl_context()  # one for all pools (each costs ~50 ms); SSL_CERT_FILE
        limits = httpx.Limits(
            max_connections=per_pool, max_keepalive_connections=per_pool, keepalive_expiry=_KEEPALIVE_EXPIRY
        )
        proxy = environment_proxy(self.base_url)
        self.transports = [
            httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits, proxy=proxy) for _ in range(pools)
        ]
        self._turn = itertools.cycle(self.transports)

    def request_headers(self, client_headers: Mapping[str, str], *, stream: bool) -> dict[str, str]:
        out = dict(_DEFAULT_HEADERS)
        for k, v in client_headers.items():
            name = k.lower()
            if name not in _REQUEST_DROP and not name.startswith("x-promptpress-"):
                out[k] = v
        if self.api_key:
            out["authorization"] = f"Bearer {self.api_key}"
        elif self.forward_client_auth and "authorization" in client_headers:
            out["authorization"] = client_headers["authorization"]
        out["content-type"] = "application/json"
        if stream:
            out["accept-encoding"] = "identity"  # relay bytes as they are, never a gzip stream
        return out

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + "/" + path.lstrip("/"))
        return url

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
        transport = next(self._turn)
        request = httpx.Request(
            method, self._url(path), content=content, headers=headers, extensions=self._extensions
        )
        try:
            try:
                return await _send(transport, request, stream)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # A pooled keep-alive connection the upstream had just closed: the request got no
                # answer at all. Send it once more on a fresh connection (as OpenAI's clients do).
                metrics.upstream_errors.labels("retried").inc()
                return await _send(transport, request, stream)
        except httpx.HTTPError as exc:
            raise transport_error(
                exc, metrics, "could not reach the upstream", "upstream_unavailable"
            ) from exc

    async def aclose(self) -> None:
        for transport in self.transports:
            await transport.aclose()


async def _send(transport: httpx.AsyncHTTPTransport, request: httpx.Request, stream: bool) -> httpx.Response:
    response = await transport.handle_async_request(request)
    if not stream:
        try:
            await response.aread()
        finally:
            await response.aclose()
    return response


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


async def until_disconnect(receive: Receive, work: Callable[[], Awaitable[T]]) -> T | None:
    """Run `work` in this task, cancelling it (and so its upstream request) if the client disconnects
    first; then the result is None.

    The disconnect is watched by a plain asyncio task cancelling an anyio cancel scope: the semantics
    of an anyio task group (which the service used before), for ~15 us of CPU instead of ~70-90 us per
    request. Needs asyncio (uvicorn's loop)."""
    with anyio.CancelScope() as scope:

        async def watch() -> None:
            try:
                while (await receive())["type"] != "http.disconnect":
                    pass
            except Exception:  # nothing more to watch; the work goes on
                return
            scope.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            return await work()
        finally:
            watcher.cancel()
    return None


class RelayResponse(StreamingResponse):
    """A streaming response that always watches for the client's disconnect (whatever the ASGI spec
    version) and then stops relaying at once, which closes the upstream stream."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def relay() -> None:
            with contextlib.suppress(OSError):  # the client went away mid-send
                await self.stream_response(send)

        await until_disconnect(receive, relay)


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

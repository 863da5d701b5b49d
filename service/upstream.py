"""The upstream OpenAI-compatible API as a client sees it: one pooled aiohttp session, the headers that
go upstream (hop-by-hop and promptpress's own removed, the key swapped), timeouts, proxies from the
environment, the CA bundle, and transport failures mapped to 502/504 in OpenAI's error shape.

aiohttp rather than httpx: the same request through a bare pass-through costs ~0.17 ms of CPU with
aiohttp's C-accelerated client and ~1.7 ms with httpx's (`benchmarks/bench_proxy.py --floor`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.payload import Payload
from yarl import URL

from .errors import APIError
from .logs import redact_url
from .metrics import Metrics

__all__ = ["Upstream", "UpstreamResponse", "environment_proxy", "read_body", "ssl_context", "transport_error"]

UpstreamResponse = aiohttp.ClientResponse
logger = logging.getLogger("promptpress.service")

# never forwarded upstream (RFC 9110 hop-by-hop, what aiohttp computes itself, the client's cookies
# and key)
_REQUEST_DROP = {
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
    "cookie",
    "authorization",
}
# below the common 5 s server-side keep-alive timeout (uvicorn, nginx...): reuse never races a close
_KEEPALIVE_EXPIRY = 4.0
# bodies up to this size go into the socket's buffer at once (aiohttp drains above 64 KiB): only
# larger ones can stall while being written, and get the write timeout
_UNBLOCKING_BODY = 64 * 1024
_DEFAULT_HEADERS = {"accept": "*/*", "accept-encoding": "gzip, deflate"}
_STREAM_HEADERS = {"accept": "*/*", "accept-encoding": "identity"}  # relay bytes as they are


def environment_proxy(url: str) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for `url`, None when there is
    none or ``NO_PROXY`` exempts its host (the standard library's reading of these variables)."""
    split = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(split.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(split.netloc):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def ssl_context() -> ssl.SSLContext:
    """The CA bundle of ``SSL_CERT_FILE`` (or the directory ``SSL_CERT_DIR``), else certifi's, else
    the system's: what httpx, and so promptpress before aiohttp, verified upstream certificates with."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with the 'serve' extra
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


class TimedBody(Payload):
    """A request body written within `timeout` seconds (aiohttp has no write timeout of its own). An
    overrun is a `TimeoutError`, which aiohttp hands to the response's reader as it is."""

    def __init__(self, value: bytes, timeout: float) -> None:
        super().__init__(value, content_type="application/json")
        self._size = len(value)
        self._timeout = timeout

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        value = self._value if content_length is None else self._value[:content_length]
        try:
            await asyncio.wait_for(writer.write(value), self._timeout)
        except asyncio.TimeoutError:  # Python 3.10's is not the builtin OSError aiohttp passes on
            raise TimeoutError(f"the request body was not sent within {self._timeout:g} s") from None


class Upstream:
    """An OpenAI-compatible upstream at `base_url` (which ends in ``/v1`` or equivalent), reached
    through one `aiohttp.ClientSession` made on first use in the serving event loop: a connection pool
    of `max_connections`, no cookie jar (a cookie set for one client must never reach the upstream
    with another's request), no redirects followed, answers decompressed (the encoding header is then
    not passed on). Userinfo in `base_url` (``https://user:pw@host/v1``) becomes HTTP Basic auth, as
    in curl and httpx, unless `api_key` is set (the key wins; a warning says the userinfo is unused); it
    is never part of the request URL nor shown (`display_url`)."""

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
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self.base_url = base_url.rstrip("/")
        self.display_url = redact_url(self.base_url)  # what may be shown: no userinfo
        self.api_key = api_key
        self.forward_client_auth = forward_client_auth
        self.write_timeout = write_timeout
        self.max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )
        root = URL(self.base_url)
        self._basic_auth: str | None = None
        if root.user is not None:
            if api_key:
                logger.warning(
                    "the upstream URL's userinfo is not used: the upstream API key is sent instead"
                )
            else:
                self._basic_auth = aiohttp.BasicAuth(root.user, root.password or "").encode()
        self._root = root.with_user(None)
        self._urls: dict[str, URL] = {}
        self._ssl = ssl_context()  # made once (~50 ms); SSL_CERT_FILE
        self.proxy = environment_proxy(self.base_url)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The pooled session (made in the running loop on first use)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=_KEEPALIVE_EXPIRY, ssl=self._ssl
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                proxy=self.proxy,
            )
        return self._session

    def request_headers(self, client_headers: Mapping[str, str], *, stream: bool) -> dict[str, str]:
        out = dict(_STREAM_HEADERS if stream else _DEFAULT_HEADERS)
        for k, v in client_headers.items():
            name = k.lower()
            if name not in _REQUEST_DROP and not name.startswith("x-promptpress-"):
                out[name] = v
        if self.api_key:
            out["authorization"] = f"Bearer {self.api_key}"
        elif self._basic_auth:
            out["authorization"] = self._basic_auth
        elif self.forward_client_auth and "authorization" in client_headers:
            out["authorization"] = client_headers["authorization"]
        out["content-type"] = "application/json"
        return out

    def url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(f"{self._root}/{path.lstrip('/')}", encoded=True)
        return url

    async def send(
        self, method: str, path: str, *, content: bytes | None, headers: dict[str, str], metrics: Metrics
    ) -> UpstreamResponse:
        """Send and return the response, its headers read and its body not (`read_body`, or the relays
        of `proxy`). Transport failures become 504 (timeouts) or 502 (anything else)."""
        body: bytes | Payload | None = content
        if content is not None and len(content) > _UNBLOCKING_BODY:
            body = TimedBody(content, self.write_timeout)
        try:
            try:
                return await self._send(method, path, body, headers)
            except aiohttp.ClientConnectorError:
                raise
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                # A pooled keep-alive connection the upstream had just closed: the request got no
                # answer at all. Send it once more on a fresh connection (as OpenAI's clients do).
                metrics.upstream_errors.labels("retried").inc()
                return await self._send(method, path, body, headers)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise transport_error(
                exc, metrics, "could not reach the upstream", "upstream_unavailable"
            ) from exc

    async def _send(
        self, method: str, path: str, body: bytes | Payload | None, headers: dict[str, str]
    ) -> UpstreamResponse:
        return await self.session().request(
            method, self.url(path), data=body, headers=headers, allow_redirects=False
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def read_body(response: UpstreamResponse, metrics: Metrics) -> bytes:
    """The whole body of `response`, its connection then released (to the pool, or closed when the
    body was cut); a transport failure while reading is a 502 (or 504) `APIError`."""
    try:
        return await response.read()
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise transport_error(exc, metrics, "the upstream answer was cut", "upstream_cut") from exc
    finally:
        response.release()


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (asyncio.TimeoutError, TimeoutError))


def transport_error(exc: BaseException, metrics: Metrics, what: str, code: str) -> APIError:
    """504 for an upstream timeout, 502 with `what`/`code` for any other transport failure."""
    if is_timeout(exc):
        metrics.upstream_errors.labels("timeout").inc()
        return APIError(
            504, f"the upstream did not answer in time ({type(exc).__name__})", code="upstream_timeout"
        )
    metrics.upstream_errors.labels(code.removeprefix("upstream_")).inc()
    return APIError(502, f"{what}: {type(exc).__name__}: {exc}".rstrip(": "), code=code)

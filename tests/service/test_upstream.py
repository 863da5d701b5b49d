"""The upstream client (aiohttp) keeps httpx's behaviour where aiohttp differs: a write timeout, the CA
bundle of SSL_CERT_FILE, the URL's userinfo as Basic auth (never in the URL sent), repeated
response headers kept apart."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from promptpress.service.serving import ServerThread
from promptpress.service.upstream import TimedBody, ssl_context

CHAT = "/v1/chat/completions"


class _StalledWriter:
    async def write(self, data: bytes) -> None:
        await asyncio.sleep(60)


async def test_a_body_not_sent_in_time_is_a_timeout_error():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"not sent within 0\.2 s"):
        await TimedBody(b"x" * 100, 0.2).write_with_length(_StalledWriter(), None)
    assert time.monotonic() - start < 2


@pytest.fixture
def unread_upstream() -> Iterator[str]:
    """An upstream that accepts connections and never reads from them (a tiny receive buffer)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    for sock in [*held, server]:
        sock.close()


def test_an_upstream_that_does_not_take_the_request_in_time_is_a_504(make_proxy, unread_upstream):
    proxy = make_proxy(
        upstream_url=unread_upstream, upstream_write_timeout=0.5, max_body_bytes=16_000_000, compress=False
    )
    text = "word " * 2_400_000  # 12 MB: more than the socket buffers take in
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    start = time.monotonic()
    response = httpx.post(proxy.url + CHAT, json=body, timeout=60)
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - start < 8  # the read timeout is 10 s in these tests


def test_ssl_cert_file_names_the_ca_bundle(monkeypatch, tmp_path):
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    bundle = Path(certifi.where()).read_text(encoding="ascii")
    assert len(ssl_context().get_ca_certs()) > 10  # certifi's
    end = "-----END CERTIFICATE-----"
    one = tmp_path / "one.pem"
    one.write_text(bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(end) + len(end)] + "\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(one))
    assert len(ssl_context().get_ca_certs()) == 1
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(OSError):
        ssl_context()


@pytest.fixture
def header_upstream() -> Iterator[tuple[ServerThread, list[dict[str, str]]]]:
    """An upstream that records the request headers and answers with two Set-Cookie headers."""
    seen: list[dict[str, str]] = []

    async def chat(request: Request) -> Response:
        seen.append(dict(request.headers))
        response = Response(json.dumps({"id": "c", "choices": []}), media_type="application/json")
        response.raw_headers += [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"x-up", b"yes")]
        return response

    with ServerThread(Starlette(routes=[Route(CHAT, chat, methods=["POST"])]), log_level="critical") as up:
        yield up, seen


def test_headers_both_ways(make_proxy, header_upstream):
    upstream, seen = header_upstream
    url = upstream.url.replace("http://", "http://user:s3cret@") + "/v1"
    proxy = make_proxy(upstream_url=url, upstream_api_key="sk-upstream")
    response = httpx.post(
        proxy.url + CHAT,
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer sk-client", "X-Custom": "kept", "Cookie": "c=1", "TE": "trailers"},
    )
    assert response.status_code == 200, response.text
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"] and response.headers["x-up"] == "yes"
    (sent,) = seen
    assert sent["authorization"] == "Bearer sk-upstream"  # never the client's, nor the URL's userinfo
    assert sent["x-custom"] == "kept" and "cookie" not in sent and "te" not in sent
    assert sent["content-type"] == "application/json" and sent["accept-encoding"] == "gzip, deflate"


def test_upstream_userinfo_becomes_basic_auth(make_proxy, header_upstream):
    """``https://user:pw@host/v1`` authenticates as curl and httpx do; the URL sent has no userinfo."""
    upstream, seen = header_upstream
    url = upstream.url.replace("http://", "http://al%40ice:p%3Ass@") + "/v1"
    proxy = make_proxy(upstream_url=url)
    response = httpx.post(
        proxy.url + CHAT,
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer sk-client"},
    )
    assert response.status_code == 200, response.text
    (sent,) = seen
    user, _, password = base64.b64decode(sent["authorization"].removeprefix("Basic ")).decode().partition(":")
    assert (user, password) == ("al@ice", "p:ss")  # percent-decoded; the operator's, not the client's
    assert "@" not in sent["host"]

"""A client that goes away cancels its request's work: told by promptpress's httptools protocol (no
watcher task), or found by a watcher reading receive() under any other server (here uvicorn's h11)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from service_helpers import settings_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from promptpress.service import http_protocol
from promptpress.service.app import create_app
from promptpress.service.disconnect import EXTENSION, Disconnect
from promptpress.service.serving import ServerThread

CHAT = "/v1/chat/completions"
PROTOCOLS = ["JSONErrorsHttpToolsProtocol", "JSONErrorsH11Protocol"]


def _wait_for(events: list[Any], event: Any, timeout: float = 4.0) -> bool:
    deadline = time.monotonic() + timeout
    while event not in events and time.monotonic() < deadline:
        time.sleep(0.05)
    return event in events


def test_the_httptools_protocol_tells_each_request():
    async def extensions(request: Request) -> JSONResponse:
        told = request.scope.get("extensions", {}).get(EXTENSION)
        return JSONResponse({"told": isinstance(told, Disconnect), "lost": getattr(told, "lost", None)})

    app = Starlette(routes=[Route("/", extensions)])
    with ServerThread(app, http=http_protocol.JSONErrorsHttpToolsProtocol) as server:
        assert httpx.get(server.url + "/").json() == {"told": True, "lost": False}
    with ServerThread(app, http=http_protocol.JSONErrorsH11Protocol) as server:
        assert httpx.get(server.url + "/").json() == {"told": False, "lost": None}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("stream", [False, True])
def test_a_client_gone_cancels_the_upstream_request(compressor, upstream, upstream_events, protocol, stream):
    app = create_app(settings_for(upstream.url + "/v1"), compressor=compressor)
    body = {"model": "slow-5", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    with ServerThread(app, http=getattr(http_protocol, protocol)) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url + CHAT, json=body, timeout=0.5)
        assert _wait_for(upstream_events, ("request_cancelled", "slow-5"))
        # and the proxy still answers
        ok = httpx.post(server.url + CHAT, json={**body, "model": "echo", "stream": False}, timeout=30)
        assert ok.status_code == 200


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_gone_mid_stream_cancels_the_upstream_stream(
    compressor, upstream, upstream_events, protocol
):
    app = create_app(settings_for(upstream.url + "/v1"), compressor=compressor)
    body = {"model": "drip-0.05", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with ServerThread(app, http=getattr(http_protocol, protocol)) as server:
        with httpx.stream("POST", server.url + CHAT, json=body, timeout=10) as response:
            next(response.iter_raw())
        assert _wait_for(upstream_events, ("stream_cancelled", "drip-0.05"))

"""Faults of issue 19 against the real server: lone surrogates, huge texts on the event loop, clients
that go away before the upstream answers or while their request is compressed."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time
from typing import Any

import httpx
import pytest
from service_helpers import LONG_TEXT
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from promptpress.service.serving import ServerThread

CHAT = "/v1/chat/completions"
JSON_TYPE = {"content-type": "application/json"}
SURROGATE = '"hi \\ud800"'  # the JSON text of a lone surrogate


@pytest.fixture
def recording_upstream() -> Any:
    """An upstream that keeps the raw bytes it received (the mock's echo cannot hold a surrogate)."""
    received: list[bytes] = []

    async def answer(request: Request) -> JSONResponse:
        received.append(await request.body())
        return JSONResponse({"id": "x", "object": "chat.completion", "choices": [], "model": "m"})

    app = Starlette(
        routes=[Route(f"/v1/{p}", answer, methods=["POST"]) for p in ("chat/completions", "completions")]
    )
    with ServerThread(app, log_level="critical") as server:
        server.received = received  # type: ignore[attr-defined]
        yield server


def _post(server: ServerThread, path: str, content: str) -> httpx.Response:
    return httpx.post(server.url + path, content=content.encode(), headers=JSON_TYPE, timeout=60)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            CHAT,
            '{"model": "m", "messages": [{"role": "user", "content": %s}], "promptpress": {"compress": false}}',
        ),
        (CHAT, '{"model": "m", "messages": [{"role": "user", "content": %s}]}'),
        ("/v1/completions", '{"model": "m", "prompt": %s, "promptpress": {"rate": 0.5}}'),
        (
            CHAT,
            '{"model": "m", "messages": [{"role": "system", "content": %s}, {"role": "user", "content": '
            + json.dumps(LONG_TEXT)
            + "}]}",
        ),
    ],
)
def test_a_lone_surrogate_that_is_not_compressed_is_forwarded_losslessly(
    make_proxy, recording_upstream, path, body
):
    proxy = make_proxy(upstream_url=recording_upstream.url + "/v1")
    response = _post(proxy, path, body % SURROGATE)
    assert response.status_code == 200, response.text
    sent = json.loads(recording_upstream.received[-1])
    texts = [m["content"] for m in sent.get("messages", [])] + [sent.get("prompt")]
    assert "hi \ud800" in texts


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (CHAT, '{"model": "m", "messages": [{"role": "user", "content": %s}]}', "messages[0].content"),
        (
            CHAT,
            '{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": %s}]}]}',
            "messages[0].content[0].text",
        ),
        ("/v1/completions", '{"model": "m", "prompt": ["x", %s]}', "prompt[1]"),
        ("/v1/compress", '{"text": %s}', "text"),
        ("/v1/compress", '{"contexts": ["fine", %s]}', "contexts[1]"),
    ],
)
def test_a_lone_surrogate_in_a_text_to_compress_is_a_400_naming_it(
    make_proxy, recording_upstream, path, body, param
):
    proxy = make_proxy(upstream_url=recording_upstream.url + "/v1")
    text = json.dumps(LONG_TEXT)[:-1] + ' \\ud800"'  # long enough to be compressed
    response = _post(proxy, path, body % text)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["code"] == "invalid_text" and "surrogate" in error["message"]
    assert not recording_upstream.received


def test_counting_a_huge_text_does_not_stall_the_event_loop(make_proxy):
    text = "a" * 3_000_000  # one 3 MB word: counting its tokens takes seconds
    proxy = make_proxy(min_tokens=10_000_000, max_body_bytes=8_000_000)  # counted, then too short
    body = json.dumps({"model": "echo", "messages": [{"role": "user", "content": text}]})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        big = pool.submit(_post, proxy, CHAT, body)
        worst = 0.0
        while not big.done():
            start = time.monotonic()
            assert httpx.get(proxy.url + "/healthz", timeout=30).status_code == 200
            worst = max(worst, time.monotonic() - start)
            time.sleep(0.05)
        assert big.result().status_code == 200
    assert worst < 0.5, worst


def _gone_after(url: str, body: dict[str, Any], seconds: float) -> None:
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", url + CHAT, json=body, timeout=seconds) as response,
    ):
        response.read()


def _wait_for(events: list[Any], event: Any, timeout: float = 4.0) -> bool:
    deadline = time.monotonic() + timeout
    while event not in events and time.monotonic() < deadline:
        time.sleep(0.05)
    return event in events


@pytest.fixture
def access_log() -> Any:
    lines: list[dict[str, Any]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "request":
                lines.append(dict(getattr(record, "fields", {})))

    handler = Keep()
    logger = logging.getLogger("promptpress.service")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_a_stream_is_cancelled_before_the_upstream_sends_headers(make_proxy, upstream_events, access_log):
    proxy = make_proxy(log_level="info")
    body = {"model": "slow-3", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    start = time.monotonic()
    _gone_after(proxy.url, body, 0.3)
    assert _wait_for(upstream_events, ("request_cancelled", "slow-3"))
    logged = [line for line in access_log if line.get("path") == CHAT]
    assert logged and logged[-1]["status"] == 499 and logged[-1]["duration_ms"] < 2000
    assert time.monotonic() - start < 3


class _SlowCompressor:
    """The real compressor, three seconds slower."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.started = threading.Event()
        self.finished = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def compress(self, *args: Any, **kw: Any) -> Any:
        self.started.set()
        time.sleep(3.0)
        try:
            return self.inner.compress(*args, **kw)
        finally:
            self.finished.set()


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_gone_during_compression_is_never_sent_upstream(
    make_proxy, compressor, upstream_events, access_log, stream
):
    slow = _SlowCompressor(compressor)
    proxy = make_proxy(compressor_override=slow, log_level="info")
    body = {"model": "echo", "messages": [{"role": "user", "content": LONG_TEXT}], "stream": stream}
    # the client leaves 1.5 s in: within the 3 s compression even when the proxy is slow to start
    # it (a 0.3 s client once left before compression began on a busy CI machine)
    _gone_after(proxy.url, body, 1.5)
    assert slow.started.is_set()
    assert slow.finished.wait(10)
    time.sleep(0.5)  # time to send upstream, were it going to
    assert ("request", "echo") not in upstream_events
    logged = [line for line in access_log if line.get("path") == CHAT]
    assert logged and logged[-1]["status"] == 499

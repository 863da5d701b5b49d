"""A tiny OpenAI-compatible upstream for tests, benchmarks and trying the proxy without an LLM.

The requested ``model`` picks the behaviour:

- anything else (e.g. ``echo``): 200; the answer's text is ``ok`` and the response carries an ``echo``
  field with the JSON body and the headers the upstream received (what the proxy really sent);
- ``error-500``: HTTP 500 with a plain-text body; ``error-429``: 429 in OpenAI's error shape;
- ``slow-<seconds>``: answers after sleeping (for timeouts);
- ``cut``: streams two chunks, then drops the connection without ending the stream;
- ``drip-<seconds>``: streams one chunk every <seconds> for a long time (for client disconnects).

Streaming (``"stream": true``) sends ``max_tokens`` chunks (default 5) then ``data: [DONE]``.
``app.state.events`` records what happened (``request``, ``stream_done``, ``stream_cancelled``,
``request_cancelled`` when a slow request's client went away).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

_ECHO_HEADERS = ("authorization", "x-custom", "accept-encoding", "content-type")


def _param(model: str, prefix: str) -> float | None:
    if model.startswith(prefix):
        try:
            return float(model[len(prefix) :])
        except ValueError:
            return None
    return None


def _chunk(kind: str, model: str, text: str, finish: str | None = None) -> bytes:
    if kind == "chat":
        choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish}
        obj = "text_completion"
    data = {"id": "mock-1", "object": obj, "created": int(time.time()), "model": model, "choices": [choice]}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


async def _stream(request: Request, kind: str, model: str, count: int, delay: float) -> AsyncIterator[bytes]:
    events: list[Any] = request.app.state.events
    try:
        for i in range(count):
            if delay:
                await asyncio.sleep(delay)
            yield _chunk(kind, model, f"tok{i} ")
            if model == "cut" and i == 1:
                raise ConnectionAbortedError("mock upstream cuts the stream")
        yield _chunk(kind, model, "", "length")
        yield b"data: [DONE]\n\n"
        events.append(("stream_done", model))
    except (asyncio.CancelledError, GeneratorExit):
        events.append(("stream_cancelled", model))
        raise


async def _complete(request: Request, kind: str) -> Response:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        return JSONResponse({"error": {"message": "bad json", "type": "invalid_request_error"}}, 400)
    if not isinstance(body, dict):
        return JSONResponse(
            {"error": {"message": "body must be an object", "type": "invalid_request_error"}}, 400
        )
    model = str(body.get("model", ""))
    request.app.state.events.append(("request", model))
    if model == "error-500":
        return PlainTextResponse("boom: mock upstream failure", 500)
    if model == "error-429":
        error = {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit"}
        return JSONResponse({"error": error}, 429)
    if (seconds := _param(model, "slow-")) is not None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            if await request.is_disconnected():  # the proxy gave up on us
                request.app.state.events.append(("request_cancelled", model))
                return Response(status_code=499)
    count = body.get("max_tokens") or 5
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        error = {"message": "max_tokens must be a positive integer", "type": "invalid_request_error"}
        return JSONResponse({"error": {**error, "param": "max_tokens", "code": None}}, 400)
    if body.get("stream"):
        delay = _param(model, "drip-") or 0.0
        if delay:
            count = 10_000
        return StreamingResponse(_stream(request, kind, model, count, delay), media_type="text/event-stream")
    text = "ok"
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    if kind == "chat":
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    echo = {"body": body, "headers": {k: v for k, v in request.headers.items() if k in _ECHO_HEADERS}}
    return JSONResponse(
        {
            "id": "mock-1",
            "object": "chat.completion" if kind == "chat" else "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            "echo": echo,
        },
        headers={"x-request-id": "mock-request"},
    )


async def chat(request: Request) -> Response:
    return await _complete(request, "chat")


async def completions(request: Request) -> Response:
    return await _complete(request, "text")


async def models(request: Request) -> Response:
    names = ["echo", "error-500", "error-429", "cut"]
    return JSONResponse(
        {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "mock"} for n in names]}
    )


def create_mock_upstream() -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )
    app.state.events = []
    return app

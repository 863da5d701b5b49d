"""Pure ASGI middleware (safe for streaming): request-body size limit, and request ids + metrics +
access logs."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BodyTooLarge, error_body
from .logs import event, log
from .metrics import Metrics

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_LOGGED_HEADERS = {
    b"x-promptpress-compression",
    b"x-promptpress-original-tokens",
    b"x-promptpress-compressed-tokens",
}


async def _send_json(
    send: Send, status: int, body: dict[str, object], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """413 for bodies over `limit` bytes: at once from Content-Length, or as soon as the streamed
    body passes the limit (chunked uploads), without reading the rest."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body is larger than the limit of {self.limit} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    await _send_json(
                        send, 400, error_body("invalid Content-Length header", "invalid_request_error")
                    )
                    return
                if too_big:
                    await _send_json(
                        send,
                        413,
                        error_body(message, "invalid_request_error", code="body_too_large"),
                        [(b"connection", b"close")],
                    )
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_json(send, 413, error_body(message, "invalid_request_error", code="body_too_large"))


class ObservabilityMiddleware:
    """Gives each request an id (``X-Promptpress-Request-Id``, the client's if it sent a sane one),
    counts it, times it to the last body byte, and writes one access-log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                request_id = given if _SAFE_ID.match(given) else ""
        request_id = request_id or os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-promptpress-request-id", request_id.encode())
        start = time.perf_counter()
        status = 500
        response_headers: list[tuple[bytes, bytes]] = []

        async def observed_send(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = [*message.get("headers", ()), id_header]
                message = {**message, "headers": response_headers}
            await send(message)

        self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            self.metrics.inflight.dec()
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(route, scope["method"], status, elapsed)
            if log.isEnabledFor(logging.INFO):
                _access_log(scope, request_id, status, elapsed, response_headers)


def _access_log(
    scope: Scope, request_id: str, status: int, elapsed: float, headers: list[tuple[bytes, bytes]]
) -> None:
    found = {k.lower(): v for k, v in headers if k.lower() in _LOGGED_HEADERS}
    event(
        "request",
        request_id=request_id,
        method=scope["method"],
        path=scope["path"],
        status=status,
        duration_ms=round(elapsed * 1000, 2),
        compression=found.get(b"x-promptpress-compression", b"").decode() or None,
        original_tokens=_int(found.get(b"x-promptpress-original-tokens")),
        compressed_tokens=_int(found.get(b"x-promptpress-compressed-tokens")),
    )


def _int(value: bytes | None) -> int | None:
    return int(value) if value and value.isdigit() else None

"""uvicorn's HTTP protocol, with its own 400s (a request it cannot parse: a bad ``Content-Length``, a
malformed request line or header) in OpenAI's error shape instead of uvicorn's ``text/plain``; with
httptools, each request is also told when its client's connection is lost (`disconnect.Disconnect`,
so no watcher task runs per request)."""

from __future__ import annotations

import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .disconnect import EXTENSION, Disconnect, disconnect_of
from .errors import error_body

__all__ = ["http_protocol"]


def _json_400(message: str) -> bytes:
    body = error_body(
        f"invalid HTTP request: {message}", "invalid_request_error", code="invalid_http_request"
    )
    return json.dumps(body).encode()


class JSONErrorsH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        payload = _json_400(msg)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),
        ]
        self.transport.write(
            self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request"))
        )
        self.transport.write(self.conn.send(h11.Data(data=payload)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    _HTTPTOOLS = True
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    HttpToolsProtocol = H11Protocol  # type: ignore[misc,assignment]
    _HTTPTOOLS = False


class JSONErrorsHttpToolsProtocol(HttpToolsProtocol):  # module level: workers unpickle it by name
    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not previous:  # a request (not an upgrade)
            extensions: dict[str, Any] = self.cycle.scope.setdefault("extensions", {})
            extensions[EXTENSION] = Disconnect()

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None and cycle.disconnected:
            told = disconnect_of(cycle.scope)  # type: ignore[arg-type]
            if told is not None:
                told.connection_lost()

    def send_400_response(self, msg: str) -> None:
        payload = _json_400(msg)
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(payload)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + payload)
        self.transport.close()


def http_protocol() -> type[Any]:
    """The protocol class uvicorn's ``http="auto"`` would pick (httptools when installed, else h11),
    answering its own 400s in OpenAI's error shape."""
    return JSONErrorsHttpToolsProtocol if _HTTPTOOLS else JSONErrorsH11Protocol

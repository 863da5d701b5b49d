"""A request's work, cancelled when its client goes away.

`until_disconnect(scope, receive, work)` runs `work` in an anyio cancel scope and cancels it (the
compression wait, the upstream request, a stream's relay) as soon as the client's connection is lost.
The server can say so itself: promptpress's uvicorn protocol (`http_protocol`) gives each request a
`Disconnect` in ``scope["extensions"]["promptpress.disconnect"]`` and calls it when the connection is
lost before the response is complete, so nothing else runs per request. Under any other server, a
watcher task reads ``receive()`` until it says ``http.disconnect``: a task created and cancelled per
request, which cost more CPU than all the rest of promptpress's own work on a proxied request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from starlette.types import Receive, Scope

__all__ = ["EXTENSION", "Disconnect", "until_disconnect"]

EXTENSION = "promptpress.disconnect"
T = TypeVar("T")


class Disconnect:
    """What the server tells a request about its client's connection: `lost`, and the callbacks that
    `connection_lost` calls once."""

    __slots__ = ("_callbacks", "lost")

    def __init__(self) -> None:
        self.lost = False
        self._callbacks: list[Callable[[], object]] = []

    def add(self, callback: Callable[[], object]) -> None:
        self._callbacks.append(callback)

    def discard(self, callback: Callable[[], object]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def connection_lost(self) -> None:
        """Called by the server (in the event loop) when the client went away mid-request."""
        self.lost = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


def disconnect_of(scope: Scope) -> Disconnect | None:
    """The request's `Disconnect` when the server gives one."""
    extensions = scope.get("extensions")
    told = extensions.get(EXTENSION) if extensions else None
    return told if isinstance(told, Disconnect) else None


async def until_disconnect(scope: Scope, receive: Receive, work: Callable[[], Awaitable[T]]) -> T | None:
    """Run `work` in this task, cancelling it (and so its upstream request) if the client disconnects
    first; then the result is None."""
    told = disconnect_of(scope)
    if told is None:
        return await _watching(receive, work)
    if told.lost:
        return None
    with anyio.CancelScope() as cancel_scope:
        cancel = cancel_scope.cancel
        told.add(cancel)
        try:
            return await work()
        finally:
            told.discard(cancel)
    return None


async def _watching(receive: Receive, work: Callable[[], Awaitable[T]]) -> T | None:
    """`until_disconnect` with a watcher task: a plain asyncio task cancelling an anyio cancel scope
    (the semantics of an anyio task group, for less CPU)."""
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

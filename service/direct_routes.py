"""Routes answered straight from ASGI, past FastAPI's router, dependency injection and exception
middleware.

On a proxied request with compression off that machinery cost more CPU than everything promptpress
itself does (`benchmarks/bench_proxy.py`, docs/benchmarks.md). `DirectRoutes` is the app's innermost
middleware: a request whose method and exact path are those of one of its routes goes to that
route's endpoint, an ``async def endpoint(request: Request) -> Response`` that reads its own body,
and an exception it raises gets the app's own handler, as FastAPI would give it. Any other request
goes on to FastAPI. The routes stay registered with FastAPI, which documents them (OpenAPI) and
answers their other methods (405).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DirectRoutes"]

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Any]


class DirectRoutes:
    def __init__(
        self, app: ASGIApp, routes: Iterable[APIRoute], exception_handlers: Mapping[Any, Handler]
    ) -> None:
        self.app = app
        self.routes = {(method, route.path): route for route in routes for method in route.methods or ()}
        # the app's handlers (this very mapping, so handlers registered later count); the catch-all
        # ones (Exception, 500) are left to the server-error middleware, as FastAPI leaves them
        self.handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # what the access log and the metrics name the request by
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None

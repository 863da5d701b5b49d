"""``GET /v1/models``: the upstream's model list, passed through; with local models registered (the soft
model), the upstream's list (when there is one and it answers) followed by theirs."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from .errors import APIError
from .local_models import LocalModels
from .logs import event
from .proxy import json_response
from .state import ServiceState
from .upstream import read_body


class ModelsServing:
    def __init__(self, state: ServiceState, local_models: LocalModels) -> None:
        self.state = state
        self.local_models = local_models

    async def list_models(self, request: Request) -> Response:
        if self.local_models:
            return await self._with_local_models(request)
        upstream = self.state.require_upstream()
        headers = upstream.request_headers(request.headers, stream=False)
        metrics = self.state.metrics
        response = await upstream.send("GET", "models", content=None, headers=headers, metrics=metrics)
        return await json_response(response, {}, None, metrics)

    async def _with_local_models(self, request: Request) -> Response:
        listed: list[Any] = []
        headers: dict[str, str] = {}
        if self.state.upstream is not None:
            try:
                listed = await self._upstream_models(request)
            except (APIError, ValueError, KeyError, TypeError) as exc:
                event("upstream_models_unavailable", logging.WARNING, error=str(exc))
                headers["x-promptpress-upstream-models"] = "unavailable"
        local = self.local_models.names()  # (compared with ==: an upstream id may be anything)
        listed = [m for m in listed if not (isinstance(m, dict) and m.get("id") in local)]
        return JSONResponse(
            {"object": "list", "data": [*listed, *self.local_models.cards()]}, headers=headers
        )

    async def _upstream_models(self, request: Request) -> list[Any]:
        upstream = self.state.require_upstream()
        metrics = self.state.metrics
        headers = upstream.request_headers(request.headers, stream=False)
        response = await upstream.send("GET", "models", content=None, headers=headers, metrics=metrics)
        content = await read_body(response, metrics)
        data = json.loads(content)["data"] if response.status == 200 else None
        if not isinstance(data, list):
            raise ValueError(f"HTTP {response.status}")
        return data

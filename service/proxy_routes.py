"""The OpenAI-compatible routes: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``.

Each route hands its request to its serving class (`serving_chat`, `serving_completion`,
`serving_models`), which `app.create_app` keeps in ``app.state``. A proxied request is cancelled as a
whole when its client disconnects (compression, the upstream request, waiting for its headers: a 499 in
the log); a streamed answer's relay then watches for the disconnect itself. The POST routes read their body
themselves (`request_body.read_json`: the bytes once, decoded once), so the serving classes can
forward those bytes as they are when nothing changes; they are answered straight from ASGI
(`direct_routes`), FastAPI documents them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from .errors import error_responses
from .openai_models import ChatCompletionRequest, CompletionRequest
from .request_body import openapi_body
from .serving_chat import ChatCompletionsProxy
from .serving_completion import CompletionsProxy
from .serving_models import ModelsServing
from .serving_proxy import answer_until_disconnect
from .state import authorized_body, require_key

__all__ = ["BODY_MODELS", "DIRECT", "router"]

router = APIRouter(tags=["openai"])
_Route = TypeVar("_Route", bound=Callable[..., Awaitable[Response]])

# the models of the bodies these routes read themselves (filled by `_post`), whose schemas
# `app.create_app` adds to the OpenAPI document (`request_body.add_schemas`)
BODY_MODELS: list[type[BaseModel]] = []

_ERRORS = error_responses(
    (400, "Invalid request (or the upstream's 4xx, passed through)"),
    (401, "Missing or invalid API key"),
    (404, "Unknown model"),
    (413, "Body too large"),
    (502, "Upstream unreachable or its answer cut"),
    (503, "No upstream configured, or compression failed while failing closed"),
    (504, "Upstream timeout"),
)


def _post(path: str, body_model: type[BaseModel]) -> Callable[[_Route], _Route]:
    """A POST route reading a `body_model` body itself (documented as FastAPI would document it)."""
    BODY_MODELS.append(body_model)
    return router.post(path, responses=_ERRORS, response_model=None, openapi_extra=openapi_body(body_model))


@_post("/v1/chat/completions", ChatCompletionRequest)
async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions: the selected messages are compressed, then forwarded (or answered by
    the soft model when `model` names it)."""
    body = await authorized_body(request)  # the key checked before the body is read
    chat: ChatCompletionsProxy = request.app.state.serving_chat
    return await answer_until_disconnect(request, partial(chat.create, request, body))


@_post("/v1/completions", CompletionRequest)
async def completions(request: Request) -> Response:
    """OpenAI (legacy) completions: a text prompt is compressed, token-id prompts are forwarded as is."""
    body = await authorized_body(request)
    serving: CompletionsProxy = request.app.state.serving_completion
    return await answer_until_disconnect(request, partial(serving.create, request, body))


# answered by `direct_routes.DirectRoutes` ahead of FastAPI (their endpoints take the request alone)
DIRECT = (chat_completions, completions)


@router.get("/v1/models", responses=_ERRORS, response_model=None, dependencies=[Depends(require_key)])
async def models(request: Request) -> Response:
    """The upstream's model list, passed through (plus the soft model when it is served)."""
    serving: ModelsServing = request.app.state.serving_models
    return await serving.list_models(request)

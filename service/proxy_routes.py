"""The OpenAI-compatible routes: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``.

Each request is validated (only the fields promptpress reads), its policy resolved, the selected texts
compressed, and the client's own JSON forwarded with just those texts replaced (byte for byte when
nothing changed). Streaming answers are relayed chunk by chunk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from .compression import Report
from .errors import APIError, error_responses
from .openai_models import ChatCompletionRequest, CompletionRequest
from .policy import Policy, Slot, apply_chat, apply_prompt, chat_slots, prompt_slots, resolve_policy
from .proxy import Upstream, json_response, stream_response, until_disconnect
from .soft_routes import list_models, soft_chat_completion
from .state import ServiceState, get_state, request_id, require_key

router = APIRouter(dependencies=[Depends(require_key)], tags=["openai"])

_ERRORS = error_responses(
    (400, "Invalid request (or the upstream's 4xx, passed through)"),
    (401, "Missing or invalid API key"),
    (404, "Unknown model"),
    (413, "Body too large"),
    (502, "Upstream unreachable or its answer cut"),
    (503, "No upstream configured, or compression failed while failing closed"),
    (504, "Upstream timeout"),
)
_DISCONNECTED = 499  # nginx's "client closed request": logged, never seen by anyone


def _upstream(state: ServiceState) -> Upstream:
    if state.upstream is None:
        raise APIError(
            503,
            "no upstream is configured: set PROMPTPRESS_UPSTREAM_BASE_URL or run `promptpress serve --with-backend`",
            code="no_upstream",
        )
    return state.upstream


def _check_model(state: ServiceState, model: str) -> None:
    allowed = state.settings.allowed_models
    if allowed and model not in allowed:
        raise APIError(
            404,
            f"the model {model!r} does not exist or you do not have access to it; available: {', '.join(allowed)}",
            param="model",
            code="model_not_found",
        )


async def _until_disconnect(request: Request, work: Callable[[], Awaitable[Response]]) -> Response:
    """Run `work`, cancelling it (and so the upstream request) if the client disconnects first."""
    response = await until_disconnect(request.receive, work)
    return Response(status_code=_DISCONNECTED) if response is None else response


async def _forward(
    request: Request,
    state: ServiceState,
    path: str,
    raw: dict[str, Any],
    changed: bool,
    stream: bool,
    report: Report,
) -> Response:
    upstream = _upstream(state)
    content = json.dumps(raw, ensure_ascii=False).encode() if changed else await request.body()
    headers = upstream.request_headers(request.headers, stream=stream)
    extra = report.headers()
    route = "/v1/" + path

    async def send() -> Any:
        start = time.perf_counter()
        response = await upstream.send(
            "POST", path, content=content, headers=headers, stream=True, metrics=state.metrics
        )
        state.metrics.upstream_latency.labels(route).observe(time.perf_counter() - start)
        return response

    if stream:
        return await stream_response(await send(), extra, state.metrics)
    usage = report.usage() if state.settings.usage_in_body else None

    async def complete() -> Response:
        return await json_response(await send(), extra, usage, state.metrics)

    return await _until_disconnect(request, complete)


async def _compress_and_forward(
    request: Request,
    body: ChatCompletionRequest | CompletionRequest,
    path: str,
    find: Callable[[dict[str, Any], Policy], list[Slot]],
    apply: Callable[[dict[str, Any], list[Slot], list[str]], None],
) -> Response:
    state = get_state(request)
    _upstream(state)
    _check_model(state, body.model)
    policy = resolve_policy(state.policy, request.headers, body.promptpress)
    raw: dict[str, Any] = await request.json()  # the client's own JSON (parsed once, by FastAPI)
    changed = "promptpress" in raw
    raw.pop("promptpress", None)
    slots = find(raw, policy) if policy.enabled else []
    texts, report = await state.request_compressor().compress(slots, policy, request_id(request))
    if texts is not None:
        apply(raw, slots, texts)
        changed = True
    return await _forward(request, state, path, raw, changed, body.stream is True, report)


@router.post("/v1/chat/completions", responses=_ERRORS, response_model=None)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """OpenAI chat completions: the selected messages are compressed, then forwarded (or answered by
    the soft model when `model` names it)."""
    soft = get_state(request).soft
    if soft is not None and body.model == soft.name:
        return await _until_disconnect(request, lambda: soft_chat_completion(request, body))
    return await _compress_and_forward(
        request,
        body,
        "chat/completions",
        lambda raw, policy: chat_slots(raw["messages"], policy),
        lambda raw, slots, texts: apply_chat(raw["messages"], slots, texts),
    )


@router.post("/v1/completions", responses=_ERRORS, response_model=None)
async def completions(body: CompletionRequest, request: Request) -> Response:
    """OpenAI (legacy) completions: a text prompt is compressed, token-id prompts are forwarded as is."""
    return await _compress_and_forward(
        request, body, "completions", lambda raw, policy: prompt_slots(raw["prompt"], policy), apply_prompt
    )


@router.get("/v1/models", responses=_ERRORS, response_model=None)
async def models(request: Request) -> Response:
    """The upstream's model list, passed through (plus the soft model when it is served)."""
    state = get_state(request)
    if state.soft is not None:
        return await list_models(request, state)
    upstream = _upstream(state)
    headers = upstream.request_headers(request.headers, stream=False)
    response = await upstream.send(
        "GET", "models", content=None, headers=headers, stream=True, metrics=state.metrics
    )
    return await json_response(response, {}, None, state.metrics)

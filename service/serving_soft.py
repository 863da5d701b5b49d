"""The soft compressor served as an OpenAI model: its chat completions, answered locally.

`SoftChatServing` is the `LocalModel` that `app.create_app` registers under `Settings.soft_model_name`;
the chat-completions serving class hands it the requests naming that model. The answer is OpenAI's
``chat.completion`` (or ``chat.completion.chunk`` events ending in ``data: [DONE]`` when ``stream`` is
true; text is sent as it is generated). ``usage.prompt_tokens`` counts the positions the decoder
really read (concept embeddings + tokens); the ``X-Promptpress-*`` headers give the original and
compressed counts as for proxied requests (``compression: applied`` when a block was read as concept
embeddings, ``skipped`` when none was long enough, ``disabled`` when the request turned compression
off with ``X-Promptpress-Compress: off`` or ``promptpress.compress: false``: every block is then read
as tokens). Decoding is greedy: ``temperature``, ``top_p``, ``seed``... are ignored
(``X-Promptpress-Sampling: greedy``). ``n > 1``, tools and non-text content parts are rejected (400).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from .compression import Report
from .errors import APIError, error_body, from_validation
from .logs import event
from .openai_models import ChatCompletionRequest, GenerationParams
from .policy import resolve_policy
from .proxy import RelayResponse
from .request_body import JSONBody
from .soft_model import Finished, Prepared, SoftModel, SoftModelUnavailable, SoftRequestError
from .state import ServiceState, request_id

__all__ = ["SoftChatServing"]


def _messages(body: ChatCompletionRequest) -> list[dict[str, str]]:
    out = []
    for i, message in enumerate(body.messages):
        content = message.content
        if isinstance(content, list):
            if any(part.type != "text" for part in content):
                raise APIError(
                    400, "the soft model reads text only", param=f"messages.{i}.content", code="unsupported"
                )
            content = "\n\n".join(part.text or "" for part in content)
        out.append({"role": message.role, "content": content or ""})
    return out


def _params(raw: dict[str, Any], model: SoftModel) -> tuple[GenerationParams, int]:
    try:
        params = GenerationParams.model_validate(raw)
    except ValidationError as exc:
        raise from_validation(exc) from None
    if (params.n or 1) > 1:
        raise APIError(400, "the soft model returns one choice (greedy): n must be 1", param="n")
    for field in ("tools", "functions"):
        if raw.get(field):
            raise APIError(400, f"the soft model does not support {field}", param=field, code="unsupported")
    max_tokens = params.max_completion_tokens or params.max_tokens or model.max_tokens
    if max_tokens > model.max_tokens:
        raise APIError(
            400,
            f"max_tokens is at most {model.max_tokens} for {model.name} (PROMPTPRESS_SOFT_MAX_TOKENS)",
            param="max_tokens",
        )
    return params, max_tokens


def _report(prepared: Prepared, compress: bool) -> Report:
    outcome = "disabled" if not compress else "applied" if prepared.segments else "skipped"
    return Report(outcome, prepared.original_positions, prepared.prompt_positions, prepared.seconds)


def _headers(report: Report, prepared: Prepared) -> dict[str, str]:
    return {
        **report.headers(),
        "x-promptpress-segments": str(prepared.segments),
        "x-promptpress-segment-cache-hits": str(prepared.cache_hits),
        "x-promptpress-sampling": "greedy",
    }


def _usage(prepared: Prepared, finished: Finished) -> dict[str, int]:
    return {
        "prompt_tokens": prepared.prompt_positions,
        "completion_tokens": finished.completion_tokens,
        "total_tokens": prepared.prompt_positions + finished.completion_tokens,
    }


def _failure(exc: Exception, model: SoftModel, rid: str) -> APIError:
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, SoftRequestError):
        return APIError(400, str(exc), param="messages", code="invalid_request")
    if isinstance(exc, SoftModelUnavailable):
        return APIError(503, f"{model.name} is unavailable: {exc}", code="soft_model_unavailable")
    event("soft_model_failed", logging.ERROR, request_id=rid, error=f"{type(exc).__name__}: {exc}")
    return APIError(500, f"{model.name} failed: {type(exc).__name__}: {exc}", code="soft_model_error")


class SoftChatServing:
    """The soft model as a `LocalModel`: chat completions answered with `model` (errors in OpenAI's
    shape; the service stays up)."""

    def __init__(self, state: ServiceState, model: SoftModel) -> None:
        self.state = state
        self.model = model

    @property
    def name(self) -> str:
        return self.model.name

    def card(self) -> dict[str, Any]:
        return {
            "id": self.model.name,
            "object": "model",
            "created": self.model.created,
            "owned_by": "promptpress",
        }

    async def create_chat_completion(
        self, request: Request, body: JSONBody, chat: ChatCompletionRequest
    ) -> Response:
        state, model = self.state, self.model
        rid = request_id(request)
        params, max_tokens = _params(body.data, model)
        # only a per-request opt-out turns soft compression off (`compress` configures the proxy's classifier)
        compress = resolve_policy(
            replace(state.policy, enabled=True), request.headers, chat.promptpress
        ).enabled
        events = model.answer(_messages(chat), max_tokens=max_tokens, stop=params.stops(), compress=compress)
        try:
            prepared = await anext(events)
            if not isinstance(prepared, Prepared):
                raise RuntimeError(f"the soft model answered {type(prepared).__name__} before its prompt")
            report = _report(prepared, compress)
            state.metrics.count_compression(report.outcome)
            state.metrics.record_tokens(report.original_tokens, report.compressed_tokens)
            if chat.stream:
                include_usage = bool(params.stream_options and params.stream_options.include_usage)
                chunks = _sse(events, model, prepared, include_usage, rid)
                return RelayResponse(
                    chunks, media_type="text/event-stream", headers=_headers(report, prepared)
                )
            text, finished = await _collect(events)
        except Exception as exc:
            await events.aclose()
            raise _failure(exc, model, rid) from exc
        completion = self._completion(text, prepared, finished, report)
        return JSONResponse(completion, headers=_headers(report, prepared))

    def _completion(
        self, text: str, prepared: Prepared, finished: Finished, report: Report
    ) -> dict[str, Any]:
        usage: dict[str, Any] = _usage(prepared, finished)
        if self.state.settings.usage_in_body:
            usage["promptpress"] = report.usage()
        return {
            **_envelope(self.model, "chat.completion"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": finished.finish_reason,
                }
            ],
            "usage": usage,
        }


async def _collect(events: AsyncGenerator[Prepared | str | Finished, None]) -> tuple[str, Finished]:
    text: list[str] = []
    async for item in events:
        if isinstance(item, Finished):
            return "".join(text), item
        if isinstance(item, str):
            text.append(item)
    raise RuntimeError("the soft model's answer ended without finishing")


def _envelope(model: SoftModel, obj: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": obj,
        "created": int(time.time()),
        "model": model.name,
    }


def _chunk(base: dict[str, Any], delta: dict[str, str], finish: str | None = None) -> bytes:
    data = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


async def _sse(
    events: AsyncGenerator[Prepared | str | Finished, None],
    model: SoftModel,
    prepared: Prepared,
    include_usage: bool,
    rid: str,
) -> AsyncIterator[bytes]:
    base = _envelope(model, "chat.completion.chunk")
    yield _chunk(base, {"role": "assistant", "content": ""})
    try:
        async for item in events:
            if isinstance(item, str):
                yield _chunk(base, {"content": item})
            elif isinstance(item, Finished):
                yield _chunk(base, {}, item.finish_reason)
                if include_usage:
                    usage = {**base, "choices": [], "usage": _usage(prepared, item)}
                    yield b"data: " + json.dumps(usage).encode() + b"\n\n"
    except Exception as exc:  # the status line is sent: the error goes in the stream
        error = _failure(exc, model, rid)
        yield (
            b"data: " + json.dumps(error_body(error.message, error.type, code=error.code)).encode() + b"\n\n"
        )
        return
    yield b"data: [DONE]\n\n"

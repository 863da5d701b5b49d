"""What the proxied OpenAI endpoints share: find the texts the policy selects, compress them, write
them back into the client's own JSON, and forward it.

A request is validated (only the fields promptpress reads), its policy resolved, the selected texts
compressed, and the client's JSON forwarded with just those texts replaced and the ``promptpress``
field removed (its original bytes, byte for byte, when nothing changed). Streaming answers are relayed
chunk by chunk. The route runs `create` under `answer_until_disconnect`, once for the whole request:
a client that goes away cancels it at any point, upstream request included.
`ChatCompletionsProxy` (`serving_chat`) and `CompletionsProxy` (`serving_completion`) say where the
texts sit in their request.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar

import anyio
from fastapi import Request
from fastapi.responses import Response

from .compression import Report
from .disconnect import until_disconnect
from .errors import APIError
from .openai_models import ChatCompletionRequest, CompletionRequest
from .policy import Policy, Slot, resolve_policy
from .proxy import json_response, stream_response
from .question import Question, explicit_question, split_question
from .request_body import JSONBody, check_text, forwardable
from .state import ServiceState, request_id
from .upstream import Upstream

RequestT = TypeVar("RequestT", ChatCompletionRequest, CompletionRequest)

_DISCONNECTED = 499  # nginx's "client closed request": logged, never seen by anyone
_OFF_LOOP_BYTES = 16 * 1024  # bodies larger than this have their texts found and counted in a thread


async def answer_until_disconnect(request: Request, work: Callable[[], Awaitable[Response]]) -> Response:
    """`work`'s response; if the client disconnects first, `work` (and so its upstream request) is
    cancelled and the answer is a 499."""
    response = await until_disconnect(request.scope, request.receive, work)
    return Response(status_code=_DISCONNECTED) if response is None else response


class ProxyServing(ABC, Generic[RequestT]):
    """One proxied endpoint: ``POST /v1/<path>`` upstream, its body a `request_model`."""

    path: str
    request_model: type[RequestT]

    def __init__(self, state: ServiceState) -> None:
        self.state = state

    @abstractmethod
    def find_slots(self, data: dict[str, Any], policy: Policy) -> list[Slot]:
        """The texts of the client's JSON that `policy` selects."""

    @abstractmethod
    def apply_texts(self, data: dict[str, Any], slots: list[Slot], texts: list[str]) -> None:
        """Write the compressed `texts` into the client's JSON, where `slots` found them."""

    async def create(self, request: Request, body: JSONBody) -> Response:
        """Answer one request."""
        return await self.proxy(request, body, body.validate(self.request_model))

    async def proxy(self, request: Request, body: JSONBody, parsed: RequestT) -> Response:
        """Compress the texts of `body` (`parsed` is its validated model) and forward it upstream."""
        state = self.state
        upstream = state.require_upstream()
        self._check_model(parsed.model)
        policy = resolve_policy(state.policy, request.headers, parsed.promptpress)
        data: dict[str, Any] = body.data
        changed = "promptpress" in data  # removed before forwarding
        data.pop("promptpress", None)
        slots = await self._find_slots(body, data, policy) if policy.enabled else []
        question = self._question(data, slots, policy)
        slots, heads, tails = split_question(slots, question)
        texts, report = await state.request_compressor().compress(
            slots, policy, request_id(request), question.text
        )
        report = replace(report, question_source=question.source)
        if texts is not None:
            self.apply_texts(data, slots, [h + text + t for h, text, t in zip(heads, texts, tails)])
            changed = True
        content = forwardable(data) if changed else body.content
        return await self._forward(request, upstream, content, parsed.stream is True, report)

    @abstractmethod
    def find_question(self, data: dict[str, Any], slots: list[Slot]) -> Question:
        """The request's question by the automatic rules (`service/question.py`)."""

    def _question(self, data: dict[str, Any], slots: list[Slot], policy: Policy) -> Question:
        if not slots:
            return Question(None, "none")
        explicit = explicit_question(policy.question)
        if explicit is not None:
            return explicit
        return self.find_question(data, slots)

    async def _find_slots(self, body: JSONBody, data: dict[str, Any], policy: Policy) -> list[Slot]:
        """`find_slots`, in a worker thread for a large body (counting its tokens costs up to ~0.7 s
        per MB, which would stall every other request, /healthz included); a selected text that
        cannot be compressed (a lone surrogate) is a 400 naming where it is."""
        if len(body.content) > _OFF_LOOP_BYTES:
            slots = await anyio.to_thread.run_sync(self.find_slots, data, policy)
        else:
            slots = self.find_slots(data, policy)
        for slot in slots:
            check_text(slot.text, self._where(slot))
        return slots

    def _where(self, slot: Slot) -> str:
        """The request field `slot` is: ``messages[1].content[0].text``, ``prompt[2]``..."""
        if self.path == "chat/completions":
            part = f"[{slot.path[1]}].text" if len(slot.path) > 1 else ""
            return f"messages[{slot.path[0]}].content{part}"
        return "prompt" + "".join(f"[{i}]" for i in slot.path)

    def _check_model(self, model: str) -> None:
        allowed = self.state.settings.allowed_models
        if allowed and model not in allowed:
            raise APIError(
                404,
                f"the model {model!r} does not exist or you do not have access to it; "
                f"available: {', '.join(allowed)}",
                param="model",
                code="model_not_found",
            )

    async def _forward(
        self, request: Request, upstream: Upstream, content: bytes, stream: bool, report: Report
    ) -> Response:
        metrics = self.state.metrics
        headers = upstream.request_headers(request.headers, stream=stream)
        extra = report.headers()
        route = "/v1/" + self.path

        start = time.perf_counter()
        response = await upstream.send("POST", self.path, content=content, headers=headers, metrics=metrics)
        metrics.upstream_latency_of(route).observe(time.perf_counter() - start)
        if stream:
            return await stream_response(response, extra, metrics)
        usage = report.usage() if self.state.settings.usage_in_body else None
        return await json_response(response, extra, usage, metrics)

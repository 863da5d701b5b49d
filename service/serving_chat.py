"""``POST /v1/chat/completions``: a model registered in `LocalModels` (the soft model) answers its own
requests; any other is proxied, the text of the selected roles' messages compressed (strings and text
content parts; other parts are never touched)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from .local_models import LocalModels
from .openai_models import ChatCompletionRequest
from .policy import Policy, Slot, apply_chat, chat_slots
from .question import Question, chat_question
from .request_body import JSONBody
from .serving_proxy import ProxyServing
from .state import ServiceState


class ChatCompletionsProxy(ProxyServing[ChatCompletionRequest]):
    path = "chat/completions"
    request_model = ChatCompletionRequest

    def __init__(self, state: ServiceState, local_models: LocalModels) -> None:
        super().__init__(state)
        self.local_models = local_models

    async def create(self, request: Request, body: JSONBody) -> Response:
        chat = body.validate(ChatCompletionRequest)
        local = self.local_models.get(chat.model)
        if local is not None:
            return await local.create_chat_completion(request, body, chat)
        return await self.proxy(request, body, chat)

    def find_slots(self, data: dict[str, Any], policy: Policy) -> list[Slot]:
        return chat_slots(data["messages"], policy)

    def apply_texts(self, data: dict[str, Any], slots: list[Slot], texts: list[str]) -> None:
        apply_chat(data["messages"], slots, texts)

    def find_question(self, data: dict[str, Any], slots: list[Slot]) -> Question:
        return chat_question(data["messages"], [s.path for s in slots], [s.text for s in slots])

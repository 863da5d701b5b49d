"""Models the service answers itself instead of proxying, registered by name.

The chat-completions serving class (`serving_chat`) looks each request's model up here before
proxying it, and the model list (`serving_models`) shows these models after the upstream's. The soft
compressor is one (`serving_soft.SoftChatServing`, registered by `app.create_app` under
``PROMPTPRESS_SOFT_MODEL_NAME``).
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import Response

from .openai_models import ChatCompletionRequest
from .request_body import JSONBody


class LocalModel(Protocol):
    @property
    def name(self) -> str: ...

    def card(self) -> dict[str, Any]:
        """Its entry in ``GET /v1/models``."""
        ...

    async def create_chat_completion(
        self, request: Request, body: JSONBody, chat: ChatCompletionRequest
    ) -> Response:
        """Answer a chat completion naming it (`chat` is `body` validated)."""
        ...


class LocalModels:
    """The registry: one `LocalModel` per name."""

    def __init__(self) -> None:
        self._by_name: dict[str, LocalModel] = {}

    def register(self, model: LocalModel) -> None:
        if model.name in self._by_name:
            raise ValueError(f"a local model named {model.name!r} is already registered")
        self._by_name[model.name] = model

    def get(self, name: str) -> LocalModel | None:
        return self._by_name.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def cards(self) -> list[dict[str, Any]]:
        return [model.card() for model in self._by_name.values()]

    def __bool__(self) -> bool:
        return bool(self._by_name)

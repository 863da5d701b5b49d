"""``POST /v1/completions`` (OpenAI's legacy completions), proxied: a prompt given as text (or a list
of texts) is compressed; token-id prompts are forwarded as they are."""

from __future__ import annotations

from typing import Any

from .openai_models import CompletionRequest
from .policy import Policy, Slot, apply_prompt, prompt_slots
from .question import Question, text_question
from .serving_proxy import ProxyServing


class CompletionsProxy(ProxyServing[CompletionRequest]):
    path = "completions"
    request_model = CompletionRequest

    def find_slots(self, data: dict[str, Any], policy: Policy) -> list[Slot]:
        return prompt_slots(data["prompt"], policy)

    def apply_texts(self, data: dict[str, Any], slots: list[Slot], texts: list[str]) -> None:
        apply_prompt(data, slots, texts)

    def find_question(self, data: dict[str, Any], slots: list[Slot]) -> Question:
        # one prompt: its trailing question; a batch of prompts has no one question
        return text_question(slots[0].text, 0) if len(slots) == 1 else Question(None, "none")

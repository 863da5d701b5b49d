"""`PromptCompressorRunnable`: an LCEL step that compresses chosen texts of a prompt.

::

    chain = prompt | PromptCompressorRunnable(rate=0.5) | llm

Input and output have the same kind: a `ChatPromptValue`, a `StringPromptValue`, a list of messages
(message-likes such as ``("human", "...")`` are converted), a string, or a dict of prompt variables
(placed before the prompt template; then `variables` names the values to compress). What gets
compressed in messages is described in `promptpress.adapters.messages`. All the selected texts of one
input are compressed in one call and share its budget; `batch` compresses each input separately.
Each compression sends the custom event ``"promptpress_compression"`` (texts, original_tokens,
compressed_tokens, rate) to the run's callbacks and to `astream_events`.

`rate`, `target_tokens`, `min_tokens`, `roles`... are pydantic fields, so they can be made
configurable per call::

    compress = PromptCompressorRunnable().configurable_fields(
        rate=ConfigurableField(id="rate", name="compression rate"))
    chain = prompt | compress | llm
    chain.invoke(inputs, config={"configurable": {"rate": 0.3}})
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any, Union

from langchain_core.callbacks import dispatch_custom_event
from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import Field, field_validator, model_validator

from promptpress.compressor import count_tokens
from promptpress.compressor.query_aware import question_aware

from .messages import find_pieces, normalize_roles, rebuild, segments_to_compress
from .shared import CompressorFields

__all__ = ["EVENT", "PromptCompressorRunnable", "PromptInput"]

log = logging.getLogger("promptpress.adapters")

EVENT = "promptpress_compression"

PromptInput = Union[PromptValue, Sequence[Any], str, dict]  # noqa: UP007 (pydantic/LangChain generics)


class PromptCompressorRunnable(CompressorFields, RunnableSerializable[PromptInput, PromptInput]):
    """Compress the selected texts of a prompt with the promptpress compressor.

    compressor / cache / rate / target_tokens / options: see `CompressorFields`; the budget is that
        of the selected texts of one input.
    roles: message roles compressed whole (default human messages; ``user``/``assistant`` accepted).
        Tool and function messages can never be selected; system prompts only if listed here.
    markers: (open, close) tags marking spans to compress in any non-tool message; None disables.
    min_tokens: texts or spans shorter than this (tiktoken tokens) are left as they are.
    variables: with a dict input (prompt variables), the keys whose string values are compressed.
    question_variable: with a dict input, the key holding the question: the compressed variables'
        sentence groups then share the budget by relevance to it. With messages,
        when `markers` spans are used, the unmarked text of the last human message holding markers
        is the question (``question_from_unmarked=False`` turns that off). The question itself is
        never compressed. `embedding_model` (see `CompressorFields`) is the relevance model.
    """

    roles: tuple[str, ...] = ("human",)
    markers: tuple[str, str] | None = ("<compress>", "</compress>")
    min_tokens: int = Field(default=200, ge=0)
    variables: tuple[str, ...] = ()
    question_variable: str | None = None
    question_from_unmarked: bool = True

    @field_validator("roles", "variables", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> PromptCompressorRunnable:
        normalize_roles(self.roles)
        if self.markers is not None and (not all(self.markers) or self.markers[0] == self.markers[1]):
            raise ValueError("markers must be two different non-empty strings (open, close) or None")
        return self

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return False  # holds a live compressor object

    # ------------------------------------------------------------------ Runnable
    def invoke(self, input: PromptInput, config: RunnableConfig | None = None, **kwargs: Any) -> PromptInput:
        return self._call_with_config(self._transform_prompt, input, config, run_type="prompt")

    async def ainvoke(
        self, input: PromptInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> PromptInput:
        return await self._acall_with_config(self._atransform_prompt, input, config, run_type="prompt")

    async def _atransform_prompt(self, value: PromptInput) -> PromptInput:
        # the compressor is CPU-bound: a worker thread runs it, the event loop keeps serving
        return await asyncio.to_thread(self._transform_prompt, value)

    # ------------------------------------------------------------------ work
    def _transform_prompt(self, value: PromptInput) -> PromptInput:
        if isinstance(value, ChatPromptValue):
            return ChatPromptValue(messages=self._messages(list(value.messages)))
        if isinstance(value, StringPromptValue):
            return StringPromptValue(text=self._texts([value.text])[0])
        if isinstance(value, str):
            return self._texts([value])[0]
        if isinstance(value, dict):
            return self._variables(value)
        if isinstance(value, PromptValue):
            return ChatPromptValue(messages=self._messages(value.to_messages()))
        if isinstance(value, Sequence):
            return self._messages(convert_to_messages(value))
        raise TypeError(
            "PromptCompressorRunnable takes a PromptValue, a list of messages, a string or a dict of "
            f"prompt variables, got {type(value).__name__}"
        )

    def _messages(
        self, messages: list[BaseMessage], roles: frozenset[str] | None = None
    ) -> list[BaseMessage]:
        roles = normalize_roles(self.roles) if roles is None else roles
        pieces = find_pieces(messages, roles, self.markers, self.min_tokens, self._count)
        if not pieces:
            return list(messages)
        question = self._unmarked_question(messages)
        return rebuild(messages, pieces, self._compress(segments_to_compress(pieces), question))

    def _unmarked_question(self, messages: list[BaseMessage]) -> str | None:
        """The text outside the compression spans of the last human message that has some."""
        if self.markers is None or not self.question_from_unmarked:
            return None
        opening, closing = self.markers
        for message in reversed(messages):
            text = message.content if isinstance(message.content, str) else ""
            if message.type == "human" and opening in text and closing in text:
                pattern = re.escape(opening) + ".*?" + re.escape(closing)
                rest = re.sub(pattern, " ", text, flags=re.S).strip()
                return rest or None
        return None

    def _texts(self, texts: list[str]) -> list[str]:
        """Plain texts (no roles): compressed whole, or only their marked spans if they have some."""
        out = self._messages([HumanMessage(content=t) for t in texts], frozenset({"human"}))
        return [str(m.content) for m in out]

    def _variables(self, values: dict) -> dict:
        if not self.variables:
            raise ValueError(
                "got a dict of prompt variables: set variables=[...] to name the ones to compress, "
                "or place the compressor after the prompt template"
            )
        missing = [k for k in self.variables if k not in values]
        if missing:
            raise KeyError(f"variable(s) {', '.join(missing)} not in the input (keys: {', '.join(values)})")
        chosen = [k for k in self.variables if isinstance(values[k], str)]
        if len(chosen) != len(self.variables):
            bad = [f"{k}: {type(values[k]).__name__}" for k in self.variables if k not in chosen]
            raise TypeError(f"variables to compress must be strings, got {', '.join(bad)}")
        texts = [values[k] for k in chosen]
        keep = [bool(t.strip()) and self._count(t) >= self.min_tokens for t in texts]
        question = self._question_variable(values)
        compressed = iter(self._compress([t for t, k in zip(texts, keep) if k], question))
        return {**values, **{k: next(compressed) for k, kept in zip(chosen, keep) if kept}}

    def _question_variable(self, values: dict) -> str | None:
        name = self.question_variable
        if name is None:
            return None
        if name in self.variables:
            raise ValueError(
                f"question_variable {name!r} is also in variables: the question is never compressed"
            )
        question = values.get(name)
        if not isinstance(question, str):
            raise TypeError(
                f"question_variable {name!r} must name a string variable, got {type(question).__name__}"
            )
        return question

    def _compress(self, texts: list[str], question: str | None = None) -> list[str]:
        if not texts:
            return []
        engine, options = self._engine(), self._options()
        if question and question.strip():
            result = question_aware(engine, self._embedding_model()).compress_for_question(
                texts, question, options.rate, options=options
            )
        else:
            result = engine.compress(texts, options)
        stats = {
            "texts": len(texts),
            "original_tokens": result.original_tokens,
            "compressed_tokens": result.compressed_tokens,
            "rate": round(result.rate, 4),
        }
        log.debug("compressed %(texts)d text(s): %(original_tokens)d -> %(compressed_tokens)d tokens", stats)
        dispatch_custom_event(EVENT, stats)  # on_custom_event handlers and astream_events see the figures
        by_index = {c.index: (c.text if c.kept else "") for c in result.contexts}
        return [by_index.get(i, "") for i in range(len(texts))]

    @staticmethod
    def _count(text: str) -> int:
        return count_tokens(text)

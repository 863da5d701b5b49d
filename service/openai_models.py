"""Pydantic models of the OpenAI API parts the proxy reads, and of promptpress's own endpoints.

The OpenAI models are permissive (``extra="allow"``): they validate only what promptpress touches
(model, messages, prompt, stream) and let every other field through. The proxy forwards the client's
own JSON, not a re-serialisation of these models, so unknown fields reach the upstream untouched.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

MAX_TARGET_TOKENS = 10_000_000  # a budget above any context window: surely a mistake


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    """One part of a message's content: ``{"type": "text", "text": ...}`` or a non-text part
    (``image_url``, ``input_audio``, ``file``...), which promptpress never touches."""

    type: StrictStr
    text: StrictStr | None = None

    @model_validator(mode="after")
    def _text_parts_have_text(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a content part of type 'text' needs a string field 'text'")
        return self


class ChatMessage(_Open):
    role: StrictStr = Field(min_length=1)
    content: StrictStr | list[ContentPart] | None = None
    name: StrictStr | None = None


class PromptpressOptions(BaseModel):
    """The ``promptpress`` body field: per-request policy. Removed before the request goes upstream."""

    model_config = ConfigDict(extra="forbid")

    compress: StrictBool | None = Field(default=None, description="false: forward this request uncompressed.")
    rate: float | None = Field(
        default=None, gt=0, le=1, allow_inf_nan=False, description="Fraction of tokens kept, in (0, 1]."
    )
    target_tokens: StrictInt | None = Field(
        default=None, ge=1, le=MAX_TARGET_TOKENS, description="Token budget (overrides rate)."
    )
    min_tokens: StrictInt | None = Field(default=None, ge=0, description="Texts shorter than this are kept.")
    roles: list[StrictStr] | None = Field(default=None, description="Chat roles whose text is compressed.")
    force_tokens: list[StrictStr] | None = Field(default=None, description="Strings always kept.")
    structure: StrictStr | dict[StrictStr, StrictStr] | None = Field(
        default=None,
        description='Structure-safe compression: per-kind policies, e.g. {"code": "compress", "url": "drop"} '
        '(kinds: code, json, table, url, email, path, number, long; keep|compress|drop|whole), or "off".',
    )
    question: StrictStr | None = Field(
        default=None,
        description="The question the texts are compressed for (sent upstream verbatim); 'auto' (default): "
        "found in the request; 'off': question-blind.",
    )


class ChatCompletionRequest(_Open):
    model: StrictStr = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool | None = False
    promptpress: PromptpressOptions | None = None


class StreamOptions(_Open):
    include_usage: StrictBool | None = None


class GenerationParams(_Open):
    """The generation fields of a chat completion that a locally served model reads (the soft model
    decodes greedily: `temperature`, `top_p`, `seed`... are accepted and ignored)."""

    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    stop: StrictStr | list[StrictStr] | None = Field(default=None, description="Up to 4 stop strings.")
    n: StrictInt | None = Field(default=None, ge=1)
    stream_options: StreamOptions | None = None

    @model_validator(mode="after")
    def _few_stops(self) -> GenerationParams:
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop: at most 4 stop strings")
        return self

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


Prompt = StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]


class CompletionRequest(_Open):
    model: StrictStr = Field(min_length=1)
    prompt: Prompt = Field(description="Text, texts, or token ids (token ids are never compressed).")
    stream: StrictBool | None = False
    promptpress: PromptpressOptions | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> CompletionRequest:
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt must not be an empty list")
        return self


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorDetail


# --- promptpress's own compression endpoint ------------------------------------------------------


class CompressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr | None = Field(default=None, description="One text to compress (or use `contexts`).")
    contexts: list[StrictStr] | None = Field(
        default=None, min_length=1, description="Several contexts compressed together under one budget."
    )
    question: StrictStr | None = Field(
        default=None,
        description="Compress for this question: the texts' paragraphs (or sentence groups) share the budget "
        "by relevance to it. Kept verbatim and appended to `prompt` after the compressed contexts.",
    )
    rate: float | None = Field(
        default=None, gt=0, le=1, allow_inf_nan=False, description="Fraction of tokens kept, in (0, 1]."
    )
    target_tokens: StrictInt | None = Field(
        default=None, ge=1, le=MAX_TARGET_TOKENS, description="Token budget (overrides rate)."
    )
    force_tokens: list[StrictStr] | None = Field(default=None, description="Strings always kept verbatim.")
    method: StrictStr | None = Field(
        default=None, description="Compression method; must match the loaded one."
    )
    model: StrictStr | None = Field(default=None, description="Compressor model; must match the loaded one.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Other `CompressOptions` fields (budget, windowing, ...)."
    )
    return_words: StrictBool = Field(default=False, description="Include per-word keep decisions.")

    @model_validator(mode="after")
    def _one_input(self) -> CompressRequest:
        if (self.text is None) == (self.contexts is None):
            raise ValueError("give exactly one of 'text' or 'contexts'")
        return self

    def inputs(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.contexts or [])


class ContextOut(BaseModel):
    index: int
    text: str
    original_tokens: int
    compressed_tokens: int
    kept: bool = True
    probability: float | None = None
    relevance: float | None = Field(
        default=None,
        description="With a question: relevance to it (the cosine similarity of their embeddings, in [-1, 1], "
        "plus the weighted lexical match: at most 1 + the lexical weight, 0.2 by default).",
    )


class WordOut(BaseModel):
    text: str
    context: int
    start: int
    end: int
    probability: float
    keep: bool
    forced: bool = False


class CompressResponse(BaseModel):
    compressed_text: str
    prompt: str = Field(description="The compressed contexts followed by the question, if any.")
    contexts: list[ContextOut]
    original_tokens: int
    compressed_tokens: int
    ratio: float | None
    rate: float
    model: str
    method: str
    words: list[WordOut] | None = None
    verbatim_tokens: dict[str, int] = Field(
        default_factory=dict, description="Tokens of structure spans kept verbatim, per kind (code, json...)."
    )
    over_budget: bool = Field(
        default=False, description="What had to be kept verbatim alone exceeded the budget."
    )


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    compressor: str | None
    compressor_error: str | None = None
    upstream: str | None
    cache: bool

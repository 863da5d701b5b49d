"""Helpers shared by the service tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any

import openai

from promptpress.service.serving import ServerThread
from promptpress.service.settings import Settings

# ~90 tiktoken tokens of real prose (the project's own brief), used where compression must happen.
LONG_TEXT = (
    "promptpress is open-source prompt and context compression middleware in Python. Long prompts cost "
    "money and latency; promptpress shrinks them before they reach an LLM. A token classifier labels each "
    "word keep or drop, a segment-wise soft compressor turns segments into concept embeddings, compressed "
    "segments are cached in Redis and reused across queries, and an OpenAI-compatible HTTP proxy sits in "
    "front of any LLM API, including a quantized local backend."
)


def settings_for(upstream_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "upstream_base_url": upstream_url,
        "min_tokens": 20,
        "compression_timeout": 120.0,
        "upstream_read_timeout": 10.0,
        "log_level": "warning",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def openai_client(server: ServerThread, **kw: Any) -> openai.OpenAI:
    kw.setdefault("api_key", "sk-test")
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 60)
    return openai.OpenAI(base_url=server.url + "/v1", **kw)

"""The reader: any OpenAI-compatible endpoint that answers the (compressed) prompts.

Chat prompts go to `/chat/completions` as one user message, LongBench's no-chat datasets to
`/completions` as raw text. With `stream=True` the time to the first token is measured too.
`prompt_cache` is llama.cpp's `cache_prompt` request field: True reuses the KV cache of a shared
prompt prefix (quality runs), False makes every request prefill from scratch (latency runs), None
leaves the field out (servers that reject unknown fields, e.g. OpenAI's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .longbench import Prompt


class ReaderError(RuntimeError):
    """The reader failed to answer (after retries)."""


@dataclass(frozen=True)
class Generation:
    text: str
    generation_ms: float  # request sent -> last byte received
    ttft_ms: float | None = None  # request sent -> first content chunk (streaming only)
    prompt_tokens: int | None = None  # in the reader's tokens, when the server says
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # prompt tokens served from the server's prompt cache
    # a reader that compresses the prompt itself (the soft compressor): positions the prompt would
    # have taken as tokens; `prompt_tokens` is then the positions it was given
    uncompressed_prompt_tokens: int | None = None


class Reader(Protocol):
    """What the runner asks for an answer: `OpenAIReader`, or a method's own reader (soft)."""

    model: str
    prompt_cache: bool | None

    def generate(self, prompt: Prompt) -> Generation: ...


class OpenAIReader:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        prompt_cache: bool | None = None,
        stream: bool = True,
        timeout: float = 900.0,
        retries: int = 2,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.prompt_cache = prompt_cache
        self.stream = stream
        self.retries = retries
        self.extra_body = dict(extra_body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=30.0), headers=headers)
        self._closed = False

    def close(self) -> None:
        self._closed = True  # a request still in flight (a stopped run) fails without retrying
        self._client.close()

    def __enter__(self) -> OpenAIReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _body(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": prompt.max_new_tokens,
            "temperature": 0.0,
            "stream": self.stream,
        }
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        if self.prompt_cache is not None:
            body["cache_prompt"] = self.prompt_cache
        body.update(self.extra_body)
        if prompt.chat:
            body["messages"] = [{"role": "user", "content": prompt.text}]
            return f"{self.base_url}/chat/completions", body
        body["prompt"] = prompt.text
        return f"{self.base_url}/completions", body

    def generate(self, prompt: Prompt) -> Generation:
        url, body = self._body(prompt)
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                return (
                    self._stream(url, body, prompt.chat)
                    if self.stream
                    else self._plain(url, body, prompt.chat)
                )
            except httpx.HTTPStatusError as exc:
                last = exc
                if exc.response.status_code < 500 and exc.response.status_code != 429:
                    raise ReaderError(
                        f"{url}: HTTP {exc.response.status_code}: {exc.response.text[:500]}"
                    ) from exc
            except (httpx.TransportError, json.JSONDecodeError) as exc:
                last = exc
            if self._closed:
                break
            time.sleep(min(2**attempt, 10))
        raise ReaderError(f"{url}: failed after {self.retries + 1} attempts: {last!r}") from last

    def _plain(self, url: str, body: dict[str, Any], chat: bool) -> Generation:
        start = time.perf_counter()
        response = self._client.post(url, json=body)
        response.raise_for_status()
        elapsed = (time.perf_counter() - start) * 1000
        data = response.json()
        choice = data["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        return Generation(text=text or "", generation_ms=elapsed, **_usage(data))

    def _stream(self, url: str, body: dict[str, Any], chat: bool) -> Generation:
        start = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        usage: dict[str, int | None] = {}
        with self._client.stream("POST", url, json=body) as response:
            if response.is_error:
                response.read()
                response.raise_for_status()
            for event in _sse_events(response.iter_lines()):
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                    if piece:
                        if ttft is None:
                            ttft = (time.perf_counter() - start) * 1000
                        parts.append(piece)
                usage = {**usage, **{k: v for k, v in _usage(event).items() if v is not None}}
        elapsed = (time.perf_counter() - start) * 1000
        return Generation(text="".join(parts), generation_ms=elapsed, ttft_ms=ttft, **usage)

    def tokenizer(self) -> LlamaCppTokenizer | None:
        """The server's own tokenizer when it exposes llama.cpp's /tokenize, else None."""
        candidate = LlamaCppTokenizer(self.base_url, self._client)
        try:
            if candidate.decode(candidate.encode("Hello world")) == "Hello world":
                return candidate
        except (httpx.HTTPError, KeyError, ValueError, TypeError):
            return None
        return None


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        if payload:
            event = json.loads(payload)
            if "error" in event:
                raise ReaderError(f"server error in stream: {event['error']}")
            yield event


def _usage(data: dict[str, Any]) -> dict[str, int | None]:
    usage = data.get("usage") or {}
    timings = data.get("timings") or {}  # llama.cpp
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens", timings.get("cache_n"))
    return {
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "cached_tokens": cached,
    }


class LlamaCppTokenizer:
    """The reader's exact tokenizer through llama.cpp's `/tokenize` and `/detokenize`."""

    def __init__(self, base_url: str, client: httpx.Client | None = None) -> None:
        root = base_url.rstrip("/")
        self.root = root[: -len("/v1")] if root.endswith("/v1") else root
        self._client = client or httpx.Client(timeout=120)
        self.name = f"llama.cpp:{self.root}/tokenize"

    def encode(self, text: str) -> list[int]:
        response = self._client.post(f"{self.root}/tokenize", json={"content": text, "add_special": False})
        response.raise_for_status()
        return [int(t) for t in response.json()["tokens"]]

    def decode(self, ids: Sequence[int]) -> str:
        response = self._client.post(f"{self.root}/detokenize", json={"tokens": list(ids)})
        response.raise_for_status()
        return str(response.json()["content"])

"""LLM teacher: any OpenAI-compatible chat endpoint compresses a window by deleting words.

The instruction is LLMLingua-2's (its Figure 1). The answer is split into words with the same
encoder word rule as the original and aligned back onto it (`align`); the window's quality
(variation rate, alignment gap) travels with the labels so bad windows can be filtered.
Works with OpenAI (``--teacher-url https://api.openai.com/v1 --teacher-model gpt-4o``, key in
``OPENAI_API_KEY``) or the local llama.cpp server (`promptpress.compressor.llamacpp.LocalBackend`).
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import numpy as np

from .align import align
from .teachers import WordLabels
from .wordsplit import EncodedWords, WordSplitter

SYSTEM = (
    "You are an excellent linguist and very good at compressing passages into short expressions "
    "by removing unimportant words, while retaining as much information as possible."
)
INSTRUCTION = (
    "Compress the given text to short expressions, and such that you can reconstruct it as close as "
    "possible to the original. Unlike the usual text compression, I need you to comply with the 5 "
    "conditions below:\n1. You can ONLY remove unimportant words.\n2. Do not reorder the original words.\n"
    "3. Do not change the original words.\n4. Do not use abbreviations or emojis.\n"
    "5. Do not add new words or symbols.\nCompress the origin aggressively by removing words only. "
    "Compress the origin as short as you can, while retaining as much information as possible. "
    "If you understand, please compress the following text: {text}\nThe compressed text is:"
)


class TeacherError(RuntimeError):
    """The teacher endpoint failed (after retries) or answered nothing usable."""


class LLMTeacher:
    def __init__(
        self,
        base_url: str,
        model: str,
        splitter: WordSplitter,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        max_tokens: int = 1024,
        timeout: float = 600.0,
        retries: int = 2,
        align_window: int = 150,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise ValueError("the LLM teacher needs --teacher-url (an OpenAI-compatible /v1 base URL)")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.splitter = splitter
        self.max_tokens = max_tokens
        self.retries = retries
        self.align_window = align_window
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=30.0), headers=headers, transport=transport
        )
        self.name = f"llm:{model}"

    def compress(self, text: str) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": INSTRUCTION.format(text=text)},
            ],
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        error: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(self.url, json=body)
                response.raise_for_status()
                content = response.json()["choices"][0]["message"]["content"]
                if not isinstance(content, str):
                    raise TeacherError(f"the teacher answered no text: {content!r}")
                return content.strip()
            except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
                error = exc
                time.sleep(min(2**attempt, 10))
        raise TeacherError(f"teacher {self.url} failed after {self.retries + 1} attempts: {error}") from error

    def label(self, words: EncodedWords, question: str | None = None) -> WordLabels:
        compressed = self.compress(words.text)
        comp_words = self.splitter.encode(compressed).words()
        result = align(words.words(), comp_words, self.align_window)
        quality = result.quality()
        quality["compressed_rate"] = round(len(comp_words) / max(words.n_words, 1), 6)
        return WordLabels(result.keep, result.keep.astype(np.float32), quality)

    def close(self) -> None:
        self._client.close()

"""The soft compressor as an evaluation method: a reader that compresses inside itself.

Soft compression does not produce text: the context becomes concept embeddings that only its own
decoder can read. So `--methods soft` brings its own reader (`SoftReader`): the run's prompt is cut
into blocks exactly as the HTTP service does it (`promptpress.compressor.soft.prompt`: blocks of at
least ``min_block_tokens`` decoder tokens become concept embeddings, the instruction and the
question stay tokens), the frozen decoder answers greedily, and the row records the positions it
was fed against the positions the prompt takes as tokens. Encoding the context happens inside
the reader, so its rows show 0 compression ms: the generate ms and TTFT include it.

`soft_tokens` is the same decoder, same precision, reading the whole prompt as tokens: the fair
reference for `soft`, since the run's reader (llama.cpp on the GGUF) is another build of the model.
Both names share one loaded model per (weights, precision). A run of only these two needs no
server: `tokenizer()` gives the decoder's own tokenizer for prompt truncation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from promptpress.cache import open_cache
from promptpress.compressor.soft.engine import SoftCompressor
from promptpress.compressor.soft.prompt import chat_pieces, text_pieces

from .longbench import Prompt
from .reader import Generation, ReaderError

_LOADED: dict[tuple[str | None, str], Any] = {}
_LOAD_LOCK = threading.Lock()


def load_soft(weights: str | None, precision: str) -> SoftCompressor:
    """One `SoftCompressor` per (weights, precision) in this process (the decoder is ~2 GB in fp32)."""
    with _LOAD_LOCK:
        key = (weights, precision)
        if key not in _LOADED:
            _LOADED[key] = SoftCompressor.from_pretrained(
                weights, precision=precision, cache=open_cache("memory://")
            )
        return _LOADED[key]


class SoftReader:
    """Answers a run's prompts with the soft compressor's decoder (`compress=False`: all tokens)."""

    prompt_cache: bool | None = None  # no server, no prompt-cache field

    def __init__(self, soft: Any, *, compress: bool = True, min_block_tokens: int = 64, name: str = "soft"):
        self.soft = soft
        self.compress = compress
        self.min_block_tokens = min_block_tokens
        config = soft.encoder.config
        self.model: str = f"{name}:{config.decoder}"
        self._lock = threading.Lock()  # one generation at a time (one decoder)

    def tokenizer(self) -> DecoderTokenizer:
        """The decoder's own tokenizer (what prompt truncation counts in when no server is started)."""
        return DecoderTokenizer(self.soft.tokenizer, self.model)

    def pieces(self, prompt: Prompt) -> list[Any]:
        minimum = self.min_block_tokens if self.compress else None
        if prompt.chat:
            return chat_pieces(self.soft.tokenizer, [{"role": "user", "content": prompt.text}], minimum)
        return text_pieces(self.soft.tokenizer, prompt.text, minimum)  # a completion prompt

    def generate(self, prompt: Prompt) -> Generation:
        with self._lock:
            start = time.perf_counter()
            first: list[float] = []

            def on_token(_token: int) -> bool:
                if not first:
                    first.append(time.perf_counter())
                return False

            try:
                soft_prompt = self.soft.prompt_pieces(self.pieces(prompt))
                out = self.soft.generate_prompt(soft_prompt, prompt.max_new_tokens, on_token)
            except (ValueError, RuntimeError) as exc:  # e.g. a prompt longer than the decoder's context
                raise ReaderError(f"{self.model}: {exc}") from exc
            end = time.perf_counter()
        return Generation(
            text=out.text,
            generation_ms=(end - start) * 1000,
            ttft_ms=(first[0] - start) * 1000 if first else None,
            prompt_tokens=out.prompt_positions,
            completion_tokens=len(out.token_ids),
            uncompressed_prompt_tokens=out.original_positions,
        )


class DecoderTokenizer:
    """A Hugging Face tokenizer behind the runner's `Tokenizer` protocol (no special tokens added)."""

    def __init__(self, tokenizer: Any, model: str) -> None:
        self._tokenizer = tokenizer
        self.name = f"{model} (the decoder's tokenizer)"

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids)))

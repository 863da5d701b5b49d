"""The soft compressor behind a model name: lazy loading, one generation at a time off the event loop,
and its answer as a stream of events.

`SoftModel.answer(messages, ...)` yields, in order: one `Prepared` (the decoder input is built: how
many positions it has and would have had as tokens), text deltas (`str`) as tokens are generated,
and one `Finished`. Which text becomes concept embeddings is `promptpress.compressor.soft.prompt`'s
rule (blocks of at least ``min_block_tokens`` tokens). Work runs in a one-thread pool; the slot is
given back only when the worker is done, so a client that goes away stops generation at the next
token and never lets two generations overlap.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from promptpress.cache import SegmentCache
from promptpress.compressor.soft.engine import SoftCompressor, SoftPrompt
from promptpress.compressor.soft.prompt import chat_pieces

from .logs import event
from .settings import Settings

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class SoftModelUnavailable(RuntimeError):
    """The soft model could not be loaded."""


class SoftRequestError(ValueError):
    """The request cannot be answered by the soft model (a client error)."""


@dataclass(frozen=True)
class Prepared:
    prompt_positions: int  # positions fed to the decoder (concept embeddings + tokens)
    original_positions: int  # positions had every block been read as tokens
    segments: int
    cache_hits: int
    seconds: float


@dataclass(frozen=True)
class Finished:
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    seconds: float


_Event = Prepared | str | Future[Finished]  # what the worker passes to `SoftModel.answer`


class TextStream:
    """Incremental detokenization with stop strings: `push` returns only text that is final (no
    half of a UTF-8 character, nothing that could still turn into a stop string)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop: Sequence[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.ids: list[int] = []
        self.sent = 0
        self.stopped = False

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = str(self.tokenizer.decode(self.ids, skip_special_tokens=True))
        hits = [i for i in (text.find(s, max(self.sent - len(s), 0)) for s in self.stop) if i >= 0]
        if hits:
            self.stopped = True
            return self._emit(text[: min(hits)])
        full = len(text.rstrip("\ufffd"))  # a character still incomplete is not sent
        end = full
        for s in self.stop:  # hold back a tail that may be the start of a stop string
            for k in range(min(len(s) - 1, full), 0, -1):
                if text.endswith(s[:k], 0, full):
                    end = min(end, full - k)
                    break
        return self._emit(text[:end])

    def finish(self) -> str:
        """The text held back, once generation has ended."""
        if self.stopped:
            return ""
        return self._emit(str(self.tokenizer.decode(self.ids, skip_special_tokens=True)))

    def _emit(self, text: str) -> str:
        delta = text[self.sent :] if len(text) > self.sent else ""
        self.sent = max(self.sent, len(text))
        return delta


class SoftModel:
    """A `SoftCompressor` served under `name`; `load` makes one (called once, in the worker)."""

    def __init__(
        self, name: str, load: Callable[[], SoftCompressor], *, min_block_tokens: int, max_tokens: int
    ) -> None:
        self.name = name
        self.min_block_tokens = min_block_tokens
        self.max_tokens = max_tokens
        self.created = int(time.time())
        self.error: str | None = None
        self._load = load
        self._soft: SoftCompressor | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptpress-soft")
        self._slot = asyncio.Semaphore(1)
        self._loading = asyncio.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        get_cache: Callable[[], SegmentCache | None],
        soft: SoftCompressor | None = None,
    ) -> SoftModel:
        """The model `settings` ask for, served from `soft` (a ready `SoftCompressor`) when given,
        else loaded when first needed from the settings' weights/decoder/precision with the cache
        `get_cache()` returns then."""
        if not settings.soft_model_name:
            raise ValueError("soft_model_name is not set")

        def load() -> SoftCompressor:
            return SoftCompressor.from_pretrained(
                settings.soft_weights,
                decoder=settings.soft_decoder,
                precision=settings.soft_precision,
                cache=get_cache(),
                namespace=settings.cache_namespace,
            )

        model = cls(
            settings.soft_model_name,
            load,
            min_block_tokens=settings.soft_min_block_tokens,
            max_tokens=settings.soft_max_tokens,
        )
        model._soft = soft
        return model

    @property
    def loaded(self) -> bool:
        return self._soft is not None

    async def compressor(self) -> SoftCompressor:
        """The loaded `SoftCompressor` (loading it now if needed; a failed load is retried next time)."""
        async with self._loading:
            if self._soft is None:
                start = time.perf_counter()
                try:
                    self._soft = await asyncio.wrap_future(self._pool.submit(self._load))
                except Exception as exc:
                    self.error = f"{type(exc).__name__}: {exc}"
                    event("soft_model_unavailable", logging.ERROR, model=self.name, error=self.error)
                    raise SoftModelUnavailable(self.error) from exc
                self.error = None
                event("soft_model_loaded", model=self.name, load_s=round(time.perf_counter() - start, 2))
        return self._soft

    async def answer(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        compress: bool = True,
    ) -> AsyncGenerator[Prepared | str | Finished, None]:
        """Events of one answer (see the module docstring). Raises `SoftRequestError` for a request the
        model cannot take and lets any other failure of the model propagate."""
        soft = await self.compressor()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Event] = asyncio.Queue()
        cancelled = threading.Event()

        def put(item: Prepared | str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        min_block_tokens = self.min_block_tokens if compress else None
        work = partial(_generate, soft, messages, min_block_tokens, max_tokens, stop, put, cancelled)
        await self._slot.acquire()
        try:
            future: Future[Finished] = self._pool.submit(work)
        except BaseException:
            self._slot.release()
            raise
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._done, f, queue))
        try:
            while True:
                item = await queue.get()
                if isinstance(item, Future):
                    yield item.result()
                    return
                yield item
        finally:
            cancelled.set()  # the worker stops at its next token if nobody reads any more

    def _done(self, future: Future[Finished], queue: asyncio.Queue[_Event]) -> None:
        self._slot.release()
        queue.put_nowait(future)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _prompt(
    soft: SoftCompressor, messages: Sequence[Mapping[str, str]], min_block_tokens: int | None, max_tokens: int
) -> SoftPrompt:
    """The decoder input for `messages` (blocks of `min_block_tokens` tokens or more as concept
    embeddings; None: every block as tokens), checked against the model's context."""
    try:
        prompt = soft.prompt_pieces(chat_pieces(soft.tokenizer, messages, min_block_tokens))
    except ValueError as exc:
        raise SoftRequestError(str(exc)) from exc
    limit = getattr(soft.encoder.causal_lm.config, "max_position_embeddings", None)
    if limit and prompt.embeds.shape[0] + max_tokens > limit:
        raise SoftRequestError(
            f"the prompt ({prompt.embeds.shape[0]} positions) plus max_tokens ({max_tokens}) "
            f"exceeds the model's context of {limit} positions"
        )
    return prompt


def _generate(
    soft: SoftCompressor,
    messages: Sequence[Mapping[str, str]],
    min_block_tokens: int | None,
    max_tokens: int,
    stop: Sequence[str],
    put: Callable[[Prepared | str], None],
    cancelled: threading.Event,
) -> Finished:
    """One answer, in the worker thread: `put` gets the `Prepared`, then the text as it is final;
    generation stops at a stop string, at `max_tokens` or once `cancelled` is set."""
    prompt = _prompt(soft, messages, min_block_tokens, max_tokens)
    put(
        Prepared(
            int(prompt.embeds.shape[0]),
            prompt.original_positions,
            prompt.segments,
            prompt.cache_hits,
            prompt.compress_seconds,
        )
    )
    text = TextStream(soft.tokenizer, stop)

    def on_token(token: int) -> bool:
        delta = text.push(token)
        if delta:
            put(delta)
        return text.stopped or cancelled.is_set()

    out = soft.generate_prompt(prompt, max_tokens, on_token)
    tail = text.finish()
    if tail:
        put(tail)
    ended = text.stopped or (bool(out.token_ids) and out.token_ids[-1] in soft.eos_token_ids())
    return Finished(len(out.token_ids), "stop" if ended else "length", out.timings["generate_s"])

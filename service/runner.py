"""Run the CPU-bound compressor off the event loop: a bounded worker pool with a deadline.

`CompressionRunner.run` waits at most `timeout` seconds for a free worker and the compression
together. A compression that overruns keeps its worker until it finishes (threads cannot be killed),
and its slot is only given back then, so the number of compressions really running never exceeds
`concurrency` even under timeouts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from promptpress.compressor import CompressionResult, CompressOptions, Compressor
from promptpress.compressor.query_aware import DEFAULT_EMBEDDING_MODEL, question_aware


class CompressionTimeout(TimeoutError):
    """Compression did not finish (including waiting for a worker) within the deadline."""


@dataclass(frozen=True)
class Timed:
    result: CompressionResult
    seconds: float  # time spent compressing in the worker (not waiting for it)


class CompressionRunner:
    def __init__(
        self,
        compressor: Compressor,
        *,
        concurrency: int = 2,
        timeout: float = 10.0,
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.compressor = compressor
        self.concurrency = concurrency
        self.timeout = timeout
        self.embedding_model = embedding_model  # the relevance model of question-aware compression
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="promptpress-compress")
        self._slots: asyncio.Semaphore | None = None
        self._running = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        """Compressions currently executing in the pool (including ones whose caller timed out)."""
        return self._running

    async def run(
        self, contexts: Sequence[str], options: CompressOptions, question: str | None = None
    ) -> Timed:
        """Compress `contexts` under `options`; for `question` when one is given (its units share the
        budget by relevance under `embedding_model`: `QuestionAwareCompressor`)."""
        try:
            return await asyncio.wait_for(self._run(list(contexts), options, question), self.timeout)
        except asyncio.TimeoutError as exc:
            raise CompressionTimeout(f"compression took longer than {self.timeout:g} s") from exc

    async def _run(self, contexts: list[str], options: CompressOptions, question: str | None) -> Timed:
        loop = asyncio.get_running_loop()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        slots = self._slots
        await slots.acquire()
        try:
            future: Future[Timed] = self._pool.submit(self._compress, contexts, options, question)
        except BaseException:
            slots.release()
            raise
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(slots.release))
        return await asyncio.wrap_future(future)

    def _compress(self, contexts: list[str], options: CompressOptions, question: str | None) -> Timed:
        with self._lock:
            self._running += 1
        start = time.perf_counter()
        try:
            if question is not None:
                result = question_aware(self.compressor, self.embedding_model).compress_for_question(
                    contexts, question, options.rate, options=options
                )
            else:
                result = self.compressor.compress(contexts, options)
        finally:
            with self._lock:
                self._running -= 1
        return Timed(result, time.perf_counter() - start)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

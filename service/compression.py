"""Compress the selected texts of one request, fail-open or fail-closed, and report what happened.

Outcomes (header ``X-Promptpress-Compression``): ``applied``; ``skipped`` (no text long enough in the
selected roles); ``disabled`` (turned off for the request or by configuration); and, when failing
open, ``failed``, ``timeout`` or ``unavailable`` (no compressor loaded) — the original text went
upstream. Failing closed, those three are a 503 instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .errors import APIError
from .logs import event
from .metrics import Metrics
from .policy import Policy, Slot
from .runner import CompressionRunner, CompressionTimeout


@dataclass(frozen=True)
class Report:
    outcome: str
    original_tokens: int = 0
    compressed_tokens: int = 0
    seconds: float = 0.0
    question_source: str = "none"  # which rule found the question (service/question.py), or none/off

    def headers(self) -> dict[str, str]:
        return {
            "x-promptpress-compression": self.outcome,
            "x-promptpress-question-source": self.question_source,
            "x-promptpress-original-tokens": str(self.original_tokens),
            "x-promptpress-compressed-tokens": str(self.compressed_tokens),
            "x-promptpress-compression-ms": f"{self.seconds * 1000:.1f}",
        }

    def usage(self) -> dict[str, object]:
        return {
            "compression": self.outcome,
            "original_tokens": self.original_tokens,
            "compressed_tokens": self.compressed_tokens,
            "saved_tokens": self.original_tokens - self.compressed_tokens,
        }


class RequestCompressor:
    """Compresses the slots of a request with the runner; never raises for a compressor failure when
    failing open."""

    def __init__(
        self,
        runner: CompressionRunner | None,
        metrics: Metrics,
        *,
        fail_open: bool = True,
        log_prompts: bool = False,
        unavailable_reason: str = "no compressor is loaded",
    ) -> None:
        self.runner = runner
        self.metrics = metrics
        self.fail_open = fail_open
        self.log_prompts = log_prompts
        self.unavailable_reason = unavailable_reason

    async def compress(
        self, slots: list[Slot], policy: Policy, request_id: str, question: str | None = None
    ) -> tuple[list[str] | None, Report]:
        """The compressed texts (None when the originals must be used) and the report; with a
        `question`, the texts are compressed for it."""
        original = sum(s.tokens for s in slots)
        if not policy.enabled:
            return None, self._count(Report("disabled"))
        if not slots:
            return None, self._count(Report("skipped"))
        if self.runner is None:
            return None, self._fail("unavailable", self.unavailable_reason, original, request_id)
        try:
            timed = await self.runner.run([s.text for s in slots], policy.options, question)
        except CompressionTimeout as exc:
            return None, self._fail("timeout", str(exc), original, request_id)
        except Exception as exc:
            return None, self._fail("failed", f"{type(exc).__name__}: {exc}", original, request_id)
        texts = [""] * len(slots)
        for context in timed.result.contexts:
            if 0 <= context.index < len(slots) and context.kept:
                texts[context.index] = context.text
        compressed = timed.result.compressed_tokens
        report = Report("applied", timed.result.original_tokens, compressed, timed.seconds)
        self.metrics.compression_seconds.observe(timed.seconds)
        self.metrics.record_tokens(report.original_tokens, compressed)
        fields: dict[str, object] = {}
        if self.log_prompts:
            fields = {"original_text": [s.text for s in slots], "compressed_text": texts}
        event(
            "compressed",
            request_id=request_id,
            texts=len(slots),
            original_tokens=report.original_tokens,
            compressed_tokens=compressed,
            compression_ms=round(timed.seconds * 1000, 1),
            **fields,
        )
        return texts, self._count(report)

    def _count(self, report: Report) -> Report:
        self.metrics.count_compression(report.outcome)
        return report

    def _fail(self, outcome: str, reason: str, original: int, request_id: str) -> Report:
        event(
            "compression_" + outcome,
            logging.WARNING,
            request_id=request_id,
            reason=reason,
            fail_open=self.fail_open,
        )
        self.metrics.count_compression(outcome)
        if not self.fail_open:
            code = "compression_timeout" if outcome == "timeout" else "compression_failed"
            raise APIError(503, f"compression {outcome} and the service fails closed: {reason}", code=code)
        return Report(outcome, original, original)

"""``POST /v1/compress``: promptpress's own compression API, on the loaded compressor.

A text, or a list of contexts compressed together under one budget. With a question, the texts'
sentence groups share the budget by relevance to it (`QuestionAwareCompressor`),
each context reports its relevance, and the question is kept verbatim and appended to ``prompt``. The budget and options are the service's defaults overridden by
the request (`policy.budget_overrides`: a rate given without a target beats the default target).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from promptpress.compressor import CompressOptions, Compressor, OptionsError

from .errors import APIError
from .logs import event
from .openai_models import CompressRequest
from .policy import budget_overrides
from .runner import CompressionRunner, CompressionTimeout, Timed
from .state import ServiceState, request_id


class CompressServing:
    def __init__(self, state: ServiceState) -> None:
        self.state = state

    async def create(self, request: Request, body: CompressRequest) -> dict[str, Any]:
        """The compression result (`CompressResponse`'s fields)."""
        runner = self._runner()
        _check_compressor(runner.compressor, body)
        options = self._options(body)
        try:
            timed = await runner.run(body.inputs(), options, body.question or None)
        except CompressionTimeout as exc:
            raise APIError(503, str(exc), code="compression_timeout") from exc
        except (OptionsError, ValueError, TypeError) as exc:
            raise APIError(400, f"the compressor rejected the input: {exc}", code="invalid_input") from exc
        self._record(timed, request_id(request))
        result = timed.result
        data = result.to_dict(include_words=body.return_words)
        data["prompt"] = result.compressed_text + (f"\n\n{body.question}" if body.question else "")
        return data

    def _runner(self) -> CompressionRunner:
        if self.state.runner is None:
            raise APIError(
                503, f"compressor unavailable: {self.state.compressor_error}", code="compressor_unavailable"
            )
        return self.state.runner

    def _options(self, body: CompressRequest) -> CompressOptions:
        overrides = budget_overrides(body.rate, body.target_tokens, body.options)
        if body.force_tokens is not None:
            overrides["force_tokens"] = tuple(body.force_tokens)
        overrides["return_words"] = body.return_words
        try:
            return self.state.policy.options.with_overrides(**overrides)
        except (OptionsError, TypeError, ValueError) as exc:
            raise APIError(
                400, f"invalid option: {exc}", param="options", code="invalid_compression_option"
            ) from exc

    def _record(self, timed: Timed, rid: str) -> None:
        result = timed.result
        self.state.metrics.compression_seconds.observe(timed.seconds)
        self.state.metrics.record_tokens(result.original_tokens, result.compressed_tokens)
        event(
            "compress",
            request_id=rid,
            contexts=len(result.contexts),
            original_tokens=result.original_tokens,
            compressed_tokens=result.compressed_tokens,
            compression_ms=round(timed.seconds * 1000, 1),
        )


def _check_compressor(compressor: Compressor, body: CompressRequest) -> None:
    """400 unless the request's `model` and `method`, when given, are the loaded compressor's."""
    if body.model is not None and body.model != compressor.name:
        raise APIError(
            400,
            f"unknown compressor model {body.model!r}; loaded: {compressor.name!r}",
            param="model",
            code="model_not_found",
        )
    method = getattr(compressor, "method", "token_classifier")  # not every Compressor names its method
    if body.method is not None and body.method != method:
        raise APIError(400, f"unknown method {body.method!r}; this service runs {method!r}", param="method")

"""promptpress's own endpoints: ``POST /v1/compress``, ``GET /healthz``, ``GET /metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from promptpress.compressor import OptionsError

from .errors import APIError, error_responses
from .logs import event
from .openai_models import CompressRequest, CompressResponse, HealthResponse
from .policy import budget_overrides
from .runner import CompressionTimeout
from .state import get_state, request_id, require_key

router = APIRouter()

_ERRORS = error_responses(
    (400, "Invalid request"),
    (401, "Missing or invalid API key"),
    (413, "Body too large"),
    (503, "Compressor unavailable or timed out"),
)


@router.get("/healthz", response_model=HealthResponse, tags=["ops"])
async def healthz(request: Request) -> HealthResponse:
    """Liveness and what is degraded (always 200 while the process serves)."""
    state = get_state(request)
    return HealthResponse(
        status="ok" if state.runner is not None else "degraded",
        compressor=getattr(state.compressor, "name", None),
        compressor_error=state.compressor_error,
        upstream=state.upstream.base_url if state.upstream else None,
        cache=state.cache is not None,
    )


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    return Response(
        get_state(request).metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


def _options(request: Request, body: CompressRequest) -> Any:
    state = get_state(request)
    overrides = budget_overrides(body.rate, body.target_tokens, body.options)
    if body.force_tokens is not None:
        overrides["force_tokens"] = tuple(body.force_tokens)
    overrides["return_words"] = body.return_words
    try:
        return state.policy.options.with_overrides(**overrides)
    except (OptionsError, TypeError, ValueError) as exc:
        raise APIError(
            400, f"invalid option: {exc}", param="options", code="invalid_compression_option"
        ) from exc


@router.post(
    "/v1/compress",
    response_model=CompressResponse,
    response_model_exclude_unset=True,
    responses=_ERRORS,
    tags=["compression"],
    dependencies=[Depends(require_key)],
)
async def compress(body: CompressRequest, request: Request) -> dict[str, Any]:
    """Compress a text or a list of contexts with the loaded compressor; the question (if any) is kept
    verbatim and appended to `prompt`."""
    state = get_state(request)
    if state.runner is None:
        raise APIError(
            503, f"compressor unavailable: {state.compressor_error}", code="compressor_unavailable"
        )
    name = getattr(state.compressor, "name", "")
    if body.model is not None and body.model != name:
        raise APIError(
            400,
            f"unknown compressor model {body.model!r}; loaded: {name!r}",
            param="model",
            code="model_not_found",
        )
    method = getattr(state.compressor, "method", "token_classifier")
    if body.method is not None and body.method != method:
        raise APIError(400, f"unknown method {body.method!r}; this service runs {method!r}", param="method")
    options = _options(request, body)
    try:
        timed = await state.runner.run(body.inputs(), options)
    except CompressionTimeout as exc:
        raise APIError(503, str(exc), code="compression_timeout") from exc
    except (OptionsError, ValueError, TypeError) as exc:
        raise APIError(400, f"the compressor rejected the input: {exc}", code="invalid_input") from exc
    result = timed.result
    state.metrics.compression_seconds.observe(timed.seconds)
    state.metrics.record_tokens(result.original_tokens, result.compressed_tokens)
    event(
        "compress",
        request_id=request_id(request),
        contexts=len(result.contexts),
        original_tokens=result.original_tokens,
        compressed_tokens=result.compressed_tokens,
        compression_ms=round(timed.seconds * 1000, 1),
    )
    data = result.to_dict(include_words=body.return_words)
    data["prompt"] = result.compressed_text + (f"\n\n{body.question}" if body.question else "")
    return data

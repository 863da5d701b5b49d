"""promptpress's own endpoints: ``POST /v1/compress`` (its serving class: `serving_compress`, which
`app.create_app` keeps in ``app.state``), ``GET /healthz``, ``GET /metrics``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from .errors import error_responses
from .openai_models import CompressRequest, CompressResponse, HealthResponse
from .request_body import JSONBody, check_text, openapi_body
from .serving_compress import CompressServing
from .state import authorized_body, get_state

router = APIRouter()
# the models of the bodies these routes read themselves (`request_body.add_schemas`)
BODY_MODELS: list[type[BaseModel]] = [CompressRequest]

_ERRORS = error_responses(
    (400, "Invalid request"),
    (401, "Missing or invalid API key"),
    (413, "Body too large"),
    (503, "Compressor unavailable or timed out"),
)


@router.get("/healthz", response_model=HealthResponse, tags=["ops"])
async def healthz(request: Request) -> HealthResponse:
    """Liveness and what is degraded (always 200 while the process serves)."""
    return get_state(request).health()


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    return Response(
        get_state(request).metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


@router.post(
    "/v1/compress",
    response_model=CompressResponse,
    response_model_exclude_unset=True,
    responses=_ERRORS,
    tags=["compression"],
    openapi_extra=openapi_body(CompressRequest),
)
async def compress(request: Request, body: Annotated[JSONBody, Depends(authorized_body)]) -> dict[str, Any]:
    """Compress a text or a list of contexts with the loaded compressor; the question (if any) is kept
    verbatim and appended to `prompt`."""
    serving: CompressServing = request.app.state.serving_compress
    parsed = body.validate(CompressRequest)
    for i, text in enumerate(parsed.contexts or [parsed.text or ""]):
        check_text(text, f"contexts[{i}]" if parsed.contexts else "text")
    check_text(parsed.question or "", "question")
    return await serving.create(request, parsed)

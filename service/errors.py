"""Errors in OpenAI's shape, and the handlers that make every failure one.

Every error the service returns is ``{"error": {"message", "type", "param", "code"}}`` with a 4xx/5xx
status, so the official clients raise their usual exceptions (``BadRequestError``...).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from .openai_models import ErrorBody

log = logging.getLogger("promptpress.service")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class APIError(Exception):
    """An error answered to the client in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPES.get(status, "api_error")
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, code=self.code, param=self.param)

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers={**self.headers, **(headers or {})})


UNPARSABLE_BODY = "could not parse the request body: it must be UTF-8 encoded JSON"


def invalid_json_message(detail: str, at: object) -> str:
    return f"request body is not valid JSON: {detail} (at character {at})"


def error_body(message: str, type: str, *, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_responses(*statuses: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting error statuses with OpenAI's error body."""
    return {status: {"model": ErrorBody, "description": text} for status, text in statuses}


class BodyTooLarge(HTTPException):
    """Raised while reading a body that exceeds the limit (an HTTPException so FastAPI re-raises it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")
        self.limit = limit


def _is_type_tag(part: object) -> bool:
    """pydantic names union members in error locations ('str', 'list[ContentPart]'...): not fields."""
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def validation_message(
    errors: list[dict[str, Any]], content_type: str | None = None
) -> tuple[str, str | None]:
    """A one-line message and the offending parameter from pydantic/FastAPI validation errors."""
    if not errors:
        return "invalid request", None
    first = max(errors, key=lambda e: len(e.get("loc", ())))  # the most specific (unions report each member)
    loc = [str(p) for p in first.get("loc", ()) if p != "body" and not _is_type_tag(p)]
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return invalid_json_message(detail, loc[0] if loc else "?"), None
    if not loc and first.get("type") in ("model_attributes_type", "dict_type", "model_type"):
        if content_type and "json" not in content_type:
            return f"request body must be JSON (Content-Type: application/json), got {content_type}", None
        return "request body must be a JSON object", None
    param = ".".join(loc) if loc else None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        message = "field required"
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    return (f"{param}: {message}{more}" if param else f"{message}{more}"), param


def from_validation(
    exc: ValidationError | RequestValidationError, content_type: str | None = None
) -> APIError:
    message, param = validation_message([dict(e) for e in exc.errors()], content_type)
    return APIError(400, message, param=param, code="invalid_request")


def install_handlers(app: FastAPI) -> None:
    """Register handlers so no error leaves the app in another shape (and nothing leaks a traceback)."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return from_validation(exc, request.headers.get("content-type")).response()

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = UNPARSABLE_BODY
        elif exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        code = {413: "body_too_large", 404: "not_found"}.get(exc.status_code)
        return APIError(exc.status_code, message, code=code, headers=dict(exc.headers or {})).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return APIError(500, "internal error; see the server log", type="api_error").response()

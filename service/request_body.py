"""A JSON request body read once: its bytes (forwarded as they are when nothing changes), the JSON they
decode to, and the pydantic model validated from that JSON (`JSONBody.validate`, no second parse).

The errors are those FastAPI gives when it parses a body itself: a body that cannot be read or decoded
is a 400 (or the body limit's 413, or a 408 when it does not arrive in time) from `read_json`; a body that
is empty, not sent as JSON or not of the model's shape is a 400 from `validate`. A route that reads its
body this way documents it with `openapi_body` (and its schemas are added by `add_schemas`).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import anyio
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import OpenAPI
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from .errors import UNPARSABLE_BODY, APIError, from_validation, invalid_json_message, validation_message

M = TypeVar("M", bound=BaseModel)

# asyncio's own deadline where there is one (Python 3.11+): a few us, anyio's ~15 us per request
_deadline: Callable[[float | None], AbstractAsyncContextManager[Any]]
if sys.version_info >= (3, 11):
    _deadline = asyncio.timeout
else:  # pragma: no cover - Python 3.10

    @asynccontextmanager
    async def _deadline(timeout: float | None) -> AsyncIterator[None]:
        with anyio.fail_after(timeout):
            yield


_SCHEMA_REF = "#/components/schemas/{model}"
_MISSING = [{"type": "missing", "loc": ("body",), "msg": "Field required"}]


@dataclass(frozen=True)
class JSONBody:
    content: bytes  # the body as the client sent it
    data: Any  # the JSON it decodes to; the bytes themselves when not sent as JSON; None when empty
    content_type: str | None

    def validate(self, model: type[M]) -> M:
        """`model` validated from the decoded JSON (a 400 in OpenAI's shape when it does not fit)."""
        if not self.content:
            message, param = validation_message(_MISSING)
            raise APIError(400, message, param=param, code="invalid_request")
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise from_validation(exc, self.content_type) from None


_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads pairs valid ones: what is left is lone


def check_text(text: str, param: str) -> None:
    """400 naming `param` when `text` holds a lone UTF-16 surrogate (valid JSON, ``"\\ud800"``, but
    no Unicode text: it cannot be tokenized, compressed or encoded as UTF-8)."""
    found = _SURROGATE.search(text)
    if found is not None:
        raise APIError(
            400,
            f"{param} holds a lone UTF-16 surrogate (U+{ord(found.group()):04X} at character "
            f"{found.start()}), which is not text that can be compressed",
            param=param,
            code="invalid_text",
        )


def forwardable(data: Any) -> bytes:
    """`data` as JSON bytes for the upstream: UTF-8 as is, or with non-ASCII escaped when it holds lone
    surrogates (which UTF-8 cannot encode; the escapes carry them losslessly)."""
    try:
        return json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(data).encode()


def _sent_as_json(content_type: str | None) -> bool:
    if not content_type:  # the app is not strict about it: a body without a Content-Type is JSON
        return True
    maintype, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


async def read_json(request: Request, timeout: float | None = None) -> JSONBody:
    """Read the body and decode it as JSON, once. A body not received within `timeout` seconds (a
    client that sent less than its Content-Length, or stalls) is a 408."""
    content_type = request.headers.get("content-type")
    try:
        async with _deadline(timeout):
            content = await request.body()
    except TimeoutError:
        raise APIError(
            408,
            f"the request body was not received within {timeout:g} s (is Content-Length right?)",
            code="body_timeout",
            headers={"connection": "close"},
        ) from None
    except HTTPException:  # the body limit's 413
        raise
    except Exception as exc:  # the client gone mid-body
        raise APIError(400, UNPARSABLE_BODY) from exc
    try:
        data = json.loads(content) if content and _sent_as_json(content_type) else (content or None)
    except json.JSONDecodeError as exc:
        raise APIError(400, invalid_json_message(exc.msg, exc.pos), code="invalid_request") from None
    except Exception as exc:  # not UTF-8, nested too deep
        raise APIError(400, UNPARSABLE_BODY) from exc
    return JSONBody(content, data, content_type)


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads a `model` body with `read_json`: the request body
    FastAPI would document for a `model` parameter."""
    schema = {"$ref": _SCHEMA_REF.format(model=model.__name__)}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


def add_schemas(openapi: dict[str, Any], models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    """An OpenAPI document with the JSON schemas of `models` (and of the models they use) in its
    components, where `openapi_body` refers to them; normalised as FastAPI normalises its own."""
    schemas: dict[str, Any] = dict(openapi.get("components", {}).get("schemas", {}))
    for model in models:
        schema = model.model_json_schema(ref_template=_SCHEMA_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    components = {**openapi.get("components", {}), "schemas": dict(sorted(schemas.items()))}
    document = OpenAPI.model_validate({**openapi, "components": components})
    return cast(dict[str, Any], jsonable_encoder(document, by_alias=True, exclude_none=True))

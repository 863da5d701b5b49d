"""What the serving classes share: settings, policy, metrics, the upstream, the compressor and its
runner, the cache and the soft model; and the API key check of the routes."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from fastapi import Request

from promptpress.cache import SegmentCache
from promptpress.compressor import Compressor

from .compression import RequestCompressor
from .errors import APIError
from .metrics import Metrics, cache_down
from .openai_models import HealthResponse
from .policy import Policy
from .request_body import JSONBody, read_json
from .runner import CompressionRunner
from .settings import Settings
from .soft_model import SoftModel
from .upstream import Upstream


@dataclass
class ServiceState:
    settings: Settings
    policy: Policy
    metrics: Metrics
    upstream: Upstream | None = None
    compressor: Compressor | None = None
    compressor_error: str | None = None
    runner: CompressionRunner | None = None
    cache: SegmentCache | None = None
    soft: SoftModel | None = None  # the soft compressor served as a model (`soft_model_name`)
    _keys: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._keys = [k.get_secret_value().encode() for k in self.settings.api_keys]

    def request_compressor(self) -> RequestCompressor:
        return RequestCompressor(
            self.runner,
            self.metrics,
            fail_open=self.settings.fail_open,
            log_prompts=self.settings.log_prompts,
            unavailable_reason=self.compressor_error or "no compressor is loaded",
        )

    def health(self) -> HealthResponse:
        """Liveness and what is degraded: no compressor, or a cache whose store is unreachable
        (``cache`` false then: requests are served without it)."""
        cache_ok = self.cache is not None and not cache_down(self.cache)
        degraded = self.runner is None or (self.cache is not None and not cache_ok)
        return HealthResponse(
            status="degraded" if degraded else "ok",
            compressor=self.compressor.name if self.compressor is not None else None,
            compressor_error=self.compressor_error,
            upstream=self.upstream.display_url if self.upstream else None,
            cache=cache_ok,
        )

    def require_upstream(self) -> Upstream:
        """The upstream (a 503 when none is configured)."""
        if self.upstream is None:
            raise APIError(
                503,
                "no upstream is configured: set PROMPTPRESS_UPSTREAM_BASE_URL or run `promptpress serve --with-backend`",
                code="no_upstream",
            )
        return self.upstream

    def check_key(self, authorization: str | None) -> None:
        """401 unless the bearer token matches one of the keys (constant time, every key compared)."""
        if not self._keys:
            return
        token = b""
        if authorization and authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip().encode()
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(token, key)
        if not ok:
            raise APIError(
                401,
                "missing or invalid API key: send 'Authorization: Bearer <key>'",
                code="invalid_api_key",
                headers={"www-authenticate": "Bearer"},
            )


def get_state(request: Request) -> ServiceState:
    return request.app.state.promptpress


async def require_key(request: Request) -> None:
    """FastAPI dependency of every /v1 route (async: a sync one would hop to a thread per request)."""
    get_state(request).check_key(request.headers.get("authorization"))


async def authorized_body(request: Request) -> JSONBody:
    """FastAPI dependency of the routes that read their JSON body themselves: the API key checked
    (401 before anything is read), then the body read (within ``body_read_timeout``) and decoded."""
    state = get_state(request)
    state.check_key(request.headers.get("authorization"))
    return await read_json(request, state.settings.body_read_timeout)


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))

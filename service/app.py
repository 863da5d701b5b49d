"""The FastAPI application factory.

``create_app(settings, compressor=None, cache=None, soft_compressor=None)`` wires settings, metrics,
the upstream client, the compressor worker pool, the soft model, the routes, the error handlers and
the middleware. Given no compressor, it loads ``load_compressor(settings.model,
backend=settings.compressor_backend, cache=...)`` at startup in a worker thread; if that fails the
service still proxies (fail-open: requests go upstream uncompressed, ``X-Promptpress-Compression:
unavailable``) and /healthz says ``degraded``. With ``settings.soft_model_name`` set, the soft
compressor is served under that name (`soft_model`): `soft_compressor` when given (a ready
`SoftCompressor`), else loaded on first use, or at startup with ``soft_preload``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.routing import APIRoute

from promptpress.cache import SegmentCache
from promptpress.cache.factory import open_cache
from promptpress.compressor import Compressor, load_compressor
from promptpress.compressor.query_aware import load_sentence_model
from promptpress.compressor.soft.engine import SoftCompressor

from . import logs
from .direct_routes import DirectRoutes
from .errors import install_handlers
from .local_models import LocalModels
from .metrics import Metrics
from .middleware import BodyLimitMiddleware, ObservabilityMiddleware
from .ops_routes import BODY_MODELS as OPS_BODY_MODELS
from .ops_routes import router as ops_router
from .policy import Policy
from .proxy_routes import BODY_MODELS, DIRECT
from .proxy_routes import router as proxy_router
from .request_body import add_schemas
from .runner import CompressionRunner
from .serving_chat import ChatCompletionsProxy
from .serving_completion import CompletionsProxy
from .serving_compress import CompressServing
from .serving_models import ModelsServing
from .serving_soft import SoftChatServing
from .settings import Settings
from .soft_model import SoftModel, SoftModelUnavailable
from .state import ServiceState
from .upstream import Upstream

__all__ = ["create_app"]


def _load_compressor(settings: Settings, cache: SegmentCache | None) -> Compressor:
    extra = {"threads": settings.compressor_threads} if settings.compressor_threads else {}
    return load_compressor(
        settings.model,
        backend=settings.compressor_backend,
        cache=cache,
        cache_namespace=settings.cache_namespace,
        **extra,
    )


class _ServiceApp(FastAPI):
    """FastAPI, with the schemas of the bodies the proxy routes read themselves in its OpenAPI
    document."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = add_schemas(super().openapi(), [*BODY_MODELS, *OPS_BODY_MODELS])
        return self.openapi_schema


def _upstream(settings: Settings) -> Upstream | None:
    if not settings.upstream_base_url:
        return None
    return Upstream(
        settings.upstream_base_url,
        api_key=settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None,
        forward_client_auth=not settings.api_keys,
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        write_timeout=settings.upstream_write_timeout,
        max_connections=settings.upstream_max_connections,
    )


async def _load_relevance_model(spec: str) -> None:
    """Load the question-aware relevance model now, so the first question does not wait for it (a
    first use may also extract it: seconds). A failure is logged; question-aware requests then fail
    open like any compression failure."""
    try:
        await anyio.to_thread.run_sync(load_sentence_model, spec)
        logs.event("embedding_model_loaded", model=spec)
    except Exception as exc:
        logs.event(
            "embedding_model_unavailable", logging.ERROR, model=spec, error=f"{type(exc).__name__}: {exc}"
        )


def _set_compressor(state: ServiceState, compressor: Compressor) -> None:
    state.compressor = compressor
    state.runner = CompressionRunner(
        compressor,
        concurrency=state.settings.compressor_concurrency,
        timeout=state.settings.compression_timeout,
        embedding_model=state.settings.embedding_model,
    )


def _install_serving(app: FastAPI, state: ServiceState) -> None:
    """The state, and the serving class of each endpoint, in ``app.state`` where the routes find them."""
    local_models = LocalModels()
    if state.soft is not None:
        local_models.register(SoftChatServing(state, state.soft))
    app.state.promptpress = state
    app.state.serving_chat = ChatCompletionsProxy(state, local_models)
    app.state.serving_completion = CompletionsProxy(state)
    app.state.serving_models = ModelsServing(state, local_models)
    app.state.serving_compress = CompressServing(state)


async def _startup(state: ServiceState, load: bool) -> list[SegmentCache]:
    """Open the cache and load the compressor when not given; returns what shutdown must close."""
    owned: list[SegmentCache] = []
    settings = state.settings
    if state.cache is None and settings.cache_url:
        try:
            secret = settings.cache_secret.get_secret_value() if settings.cache_secret else None
            state.cache = open_cache(settings.cache_url, secret=secret)
            owned.append(state.cache)
        except Exception as exc:  # the service runs without a cache rather than not at all
            logs.event("cache_unavailable", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
    if load:
        try:
            compressor = await anyio.to_thread.run_sync(_load_compressor, settings, state.cache)
            _set_compressor(state, compressor)
            logs.event("compressor_loaded", name=compressor.name)
        except Exception as exc:
            state.compressor_error = f"{type(exc).__name__}: {exc}"
            logs.event("compressor_unavailable", logging.ERROR, error=state.compressor_error)
        if state.runner is not None and settings.question != "off":
            await _load_relevance_model(settings.embedding_model)
    if state.soft is not None and settings.soft_preload:
        try:
            await state.soft.compressor()
        except SoftModelUnavailable:  # logged; requests naming it get 503 and retry the load
            pass
    return owned


def create_app(
    settings: Settings | None = None,
    compressor: Compressor | None = None,
    cache: SegmentCache | None = None,
    soft_compressor: SoftCompressor | None = None,
) -> FastAPI:
    """A ready-to-serve ASGI app (run it with uvicorn; startup loads the compressor if not given)."""
    settings = settings or Settings()
    logs.configure(settings.log_level)
    state = ServiceState(settings, Policy.from_settings(settings), Metrics(lambda: state.cache), cache=cache)
    state.upstream = _upstream(settings)
    if settings.soft_model_name:
        state.soft = SoftModel.from_settings(settings, lambda: state.cache, soft_compressor)
    elif soft_compressor is not None:
        raise ValueError("soft_compressor given but settings.soft_model_name is not set")
    if compressor is not None:
        _set_compressor(state, compressor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = await _startup(state, load=compressor is None and state.runner is None)
        try:
            yield
        finally:
            if state.runner is not None:
                state.runner.close()
            if state.soft is not None:
                state.soft.close()
            if state.upstream is not None:
                await state.upstream.aclose()
            for resource in owned:
                resource.close()

    app = _ServiceApp(
        title="promptpress",
        summary="Prompt compression service and OpenAI-compatible compressing proxy",
        version="0.1.0",
        lifespan=lifespan,
        strict_content_type=False,
    )
    _install_serving(app, state)
    install_handlers(app)
    app.include_router(ops_router)
    app.include_router(proxy_router)
    direct = [r for r in proxy_router.routes if isinstance(r, APIRoute) and r.endpoint in DIRECT]
    app.add_middleware(DirectRoutes, routes=direct, exception_handlers=app.exception_handlers)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=state.metrics)
    return app

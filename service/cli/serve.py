"""The ``serve`` and ``backend`` subcommands (the ``promptpress`` CLI calls `register`)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from pydantic import SecretStr, ValidationError

from promptpress.compressor.extras import require
from promptpress.compressor.llamacpp import DEFAULT_MODEL, BackendError, LocalBackend

from .args import positive_int


def register(subparsers: Any) -> None:
    """Add ``serve`` and ``backend`` to an argparse subparsers object."""
    serve = subparsers.add_parser(
        "serve",
        help="run the compression API and OpenAI-compatible proxy",
        description="Run the HTTP service. Settings come from PROMPTPRESS_* environment variables and "
        ".env; the options below override them.",
    )
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--upstream", metavar="URL", help="OpenAI-compatible base URL to forward to")
    serve.add_argument("--upstream-api-key", metavar="KEY", help="key sent to the upstream")
    serve.add_argument("--model", help="compressor model spec (default: builtin:minilm-qmsum-v0)")
    serve.add_argument(
        "--embedding-model",
        metavar="SPEC",
        help="relevance model of question-aware compression (default: package:all-minilm-l6-v2)",
    )
    serve.add_argument("--rate", type=float, help="default fraction of tokens kept")
    serve.add_argument("--min-tokens", type=int, help="texts shorter than this are left alone")
    serve.add_argument("--cache", metavar="URL", help="segment cache (memory://, redis://..., disk://...)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        default=None,
        help="serve a non-loopback address without api_keys (an open proxy; refused otherwise)",
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        default=1,
        help="server processes sharing the port (default 1); each loads its own compressor, "
        "/metrics sums over all of them",
    )
    serve.add_argument(
        "--with-backend",
        action="store_true",
        help="start the local llama.cpp backend and use it as the upstream when none is configured",
    )
    _backend_options(serve, prefix="backend-", default_port=None)
    serve.set_defaults(handler=run_serve)

    backend = subparsers.add_parser(
        "backend",
        help="run the local llama.cpp backend (OpenAI-compatible) in the foreground",
        description="Serve a GGUF model with llama.cpp (xllamacpp) until Ctrl-C.",
    )
    backend.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    _backend_options(backend, prefix="", default_port=8080)
    backend.set_defaults(handler=run_backend)


def _backend_options(parser: argparse.ArgumentParser, prefix: str, default_port: int | None) -> None:
    group = parser.add_argument_group("local backend")
    group.add_argument(
        f"--{prefix}model", dest="backend_model", default=DEFAULT_MODEL, help="GGUF model spec"
    )
    if prefix == "":
        group.add_argument(
            "--port", type=int, default=default_port, help=f"port (default {default_port}; 0: free)"
        )
    group.add_argument(f"--{prefix}ctx-size", dest="ctx_size", type=int, default=8192, help="context size")
    group.add_argument(
        f"--{prefix}threads", dest="threads", type=int, help="CPU threads (default: llama.cpp's)"
    )
    group.add_argument(f"--{prefix}parallel", dest="parallel", type=int, default=1, help="parallel slots")
    group.add_argument(
        f"--{prefix}no-prompt-cache",
        dest="prompt_cache",
        action="store_false",
        help="disable the prompt cache",
    )


def _local_backend(
    args: argparse.Namespace, host: str = "127.0.0.1", port: int | None = None
) -> LocalBackend:
    return LocalBackend(
        args.backend_model,
        host=host,
        port=port,
        ctx_size=args.ctx_size,
        threads=args.threads,
        parallel=args.parallel,
        prompt_cache=args.prompt_cache,
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "host": args.host,
        "port": args.port,
        "upstream_base_url": args.upstream,
        "upstream_api_key": args.upstream_api_key,
        "model": args.model,
        "embedding_model": args.embedding_model,
        "rate": args.rate,
        "min_tokens": args.min_tokens,
        "cache_url": args.cache,
        "log_level": args.log_level,
        "allow_unauthenticated": args.allow_unauthenticated,
    }
    return {k: v for k, v in given.items() if v is not None}


def _environment(overrides: dict[str, Any]) -> dict[str, str]:
    """``PROMPTPRESS_*`` variables that carry `overrides` to worker processes, which read their
    settings from the environment (where they win over ``.env``, as the options do)."""
    out = {}
    for name, value in overrides.items():
        if isinstance(value, (list, tuple)):
            text = json.dumps(list(value))
        elif isinstance(value, SecretStr):
            text = value.get_secret_value()
        else:
            text = str(value)
        out[f"PROMPTPRESS_{name.upper()}"] = text
    return out


def open_proxy_refusal(host: str, has_keys: bool, allowed: bool) -> str | None:
    """Why serving `host` is refused (None when it is not): secure by default, a non-loopback address
    needs api_keys unless an open proxy is explicitly allowed."""
    if has_keys or allowed or _loopback(host):
        return None
    return (
        f"refusing to serve {host} without api_keys: set PROMPTPRESS_API_KEYS, bind 127.0.0.1, or "
        "pass --allow-unauthenticated (PROMPTPRESS_ALLOW_UNAUTHENTICATED=true) for an open proxy"
    )


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


# what each worker process of `serve --workers N` imports and calls
WORKER_APP = "promptpress.service.serving:app_from_environment"


def beside_backend(settings: Any, base_url: str, model_name: str) -> dict[str, Any]:
    """Settings for a proxy in front of the local backend it started: that backend as the upstream and
    its model allowed, and the compressor on one thread unless `compressor_threads` is set. Both use
    every core by default, and on shared cores their threads wait for each other: with two of each on
    two cores a 9k-token compression took 29 s instead of 1.3 s and decoding fell to 1.4 tokens/s
    (docs/benchmarks.md, "Beside the local backend")."""
    return {
        "upstream_base_url": base_url,
        "allowed_models": settings.allowed_models or [model_name],
        "compressor_threads": settings.compressor_threads or 1,
    }


def run_serve(args: argparse.Namespace) -> int:
    require("promptpress serve", "serve")
    from promptpress.service.settings import Settings

    overrides = _overrides(args)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"promptpress serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    refusal = open_proxy_refusal(settings.host, bool(settings.api_keys), settings.allow_unauthenticated)
    if refusal:
        print(f"promptpress serve: {refusal}", file=sys.stderr)
        return 2
    backend = None
    if args.with_backend and not settings.upstream_base_url:  # started once, whatever the workers
        print("starting the local llama.cpp backend ...", file=sys.stderr)
        try:
            backend = _local_backend(args).start()
        except (BackendError, OSError, ValueError) as exc:
            print(f"promptpress serve: {exc}", file=sys.stderr)
            return 1
        update = beside_backend(settings, backend.base_url, backend.model_name)
        settings = settings.model_copy(update=update)
        overrides.update(update)
        print(
            f"backend {backend.model_name} at {backend.base_url}; compressor threads "
            f"{settings.compressor_threads} per worker",
            file=sys.stderr,
        )
    try:
        if args.workers == 1:
            _run_uvicorn(settings, app=_server_app(settings))
        else:
            with _shared_metrics_directory():
                os.environ.update(_environment(overrides))
                _run_uvicorn(settings, app=WORKER_APP, factory=True, workers=args.workers)
    finally:
        if backend is not None:
            backend.stop()
    return 0


def _server_app(settings: Any) -> Any:
    from promptpress.service.serving import server_app

    return server_app(settings)


def _run_uvicorn(settings: Any, **kw: Any) -> None:
    import uvicorn

    from promptpress.service.http_protocol import http_protocol

    uvicorn.run(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        http=http_protocol(),  # its own 400s in OpenAI's error shape
        **kw,
    )


@contextlib.contextmanager
def _shared_metrics_directory() -> Iterator[None]:
    """A fresh ``PROMETHEUS_MULTIPROC_DIR`` for the workers' metrics, removed afterwards; one the user
    set is used as it is (it should be emptied between runs)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="promptpress-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        try:
            yield
        finally:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def run_backend(args: argparse.Namespace) -> int:
    require("promptpress backend", "serve")
    try:
        backend = _local_backend(args, host=args.host, port=args.port).start()
    except (BackendError, OSError, ValueError) as exc:
        print(f"promptpress backend: {exc}", file=sys.stderr)
        return 1
    print(
        f"llama.cpp backend ready: {backend.base_url}  model={backend.model_name}  (Ctrl-C to stop)",
        flush=True,
    )
    try:
        while backend.running:
            time.sleep(0.5)
        print("promptpress backend: the server exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        backend.stop()

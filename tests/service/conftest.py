"""Fixtures of the service tests: the real compressor, a mock OpenAI upstream and proxies, all served
over real HTTP on free loopback ports (uvicorn in threads)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from service_helpers import openai_client, settings_for

from promptpress.service.app import create_app
from promptpress.service.mock_upstream import create_mock_upstream
from promptpress.service.serving import ServerThread


@pytest.fixture(scope="session")
def compressor() -> Any:
    from promptpress.compressor import load_compressor

    return load_compressor()


@pytest.fixture(scope="session")
def upstream() -> Iterator[ServerThread]:
    server = ServerThread(create_mock_upstream(), log_level="critical").start()
    yield server
    server.stop()


@pytest.fixture
def upstream_events(upstream: ServerThread) -> list[Any]:
    events = upstream.server.config.app.state.events  # the mock upstream's record
    events.clear()
    return events


@pytest.fixture
def make_proxy(compressor: Any, upstream: ServerThread) -> Iterator[Callable[..., ServerThread]]:
    """Start a proxy in front of the mock upstream: ``make_proxy(**settings_overrides)``."""
    started: list[ServerThread] = []

    def make(*, compressor_override: Any = None, upstream_url: Any = ..., **overrides: Any) -> ServerThread:
        url = upstream.url + "/v1" if upstream_url is ... else upstream_url
        app = create_app(settings_for(url, **overrides), compressor=compressor_override or compressor)
        server = ServerThread(app, log_level="warning").start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def proxy(make_proxy: Callable[..., ServerThread]) -> ServerThread:
    return make_proxy()


@pytest.fixture
def client(proxy: ServerThread) -> openai.OpenAI:
    return openai_client(proxy)

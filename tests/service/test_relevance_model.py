"""The service's relevance model: the `embedding_model` setting reaches the question-aware runner, and
the model is loaded at startup (a failure is logged, the service stays up)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_helpers import settings_for

from promptpress.compressor import AssetError
from promptpress.service import app as app_module
from promptpress.service.app import create_app


class _Stub:
    """A compressor the service can load without a model (only startup is under test)."""

    name = "stub"

    def compress(self, context: Any, options: Any = None, /, **overrides: Any) -> Any:
        raise AssertionError("not called")


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    loaded: list[str] = []

    def load(spec: str) -> None:
        if spec == "package:nope":
            raise AssetError("unknown packaged model 'nope'")
        loaded.append(spec)

    monkeypatch.setattr(app_module, "_load_compressor", lambda settings, cache: _Stub())
    monkeypatch.setattr(app_module, "load_sentence_model", load)
    return loaded


def test_the_relevance_model_is_loaded_at_startup_and_used_by_the_runner(loads):
    app = create_app(settings_for(None, embedding_model="package:all-mpnet-base-v2"))
    with TestClient(app) as client:
        state = app.state.promptpress
        assert state.runner.embedding_model == "package:all-mpnet-base-v2"
        assert loads == ["package:all-mpnet-base-v2"]
        assert client.get("/healthz").json()["status"] == "ok"


def test_no_question_no_relevance_model(loads):
    with TestClient(create_app(settings_for(None, question="off"))):
        assert loads == []


def test_a_relevance_model_that_cannot_load_is_logged_and_the_service_stays_up(loads, caplog):
    logging.getLogger("promptpress").addHandler(caplog.handler)
    try:
        app = create_app(settings_for(None, embedding_model="package:nope"))
        with TestClient(app) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            assert app.state.promptpress.runner is not None  # question-blind compression still works
    finally:
        logging.getLogger("promptpress").removeHandler(caplog.handler)
    [record] = [r for r in caplog.records if r.getMessage() == "embedding_model_unavailable"]
    assert record.levelno == logging.ERROR and record.fields["model"] == "package:nope"  # type: ignore[attr-defined]
    assert "unknown packaged model" in record.fields["error"]  # type: ignore[attr-defined]

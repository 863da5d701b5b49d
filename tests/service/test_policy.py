"""The compression policy (what is compressed, per-request overrides), the worker pool and settings."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from service_helpers import LONG_TEXT, settings_for

from promptpress.compressor import CompressionResult, ContextResult, count_tokens
from promptpress.service.errors import APIError
from promptpress.service.openai_models import PromptpressOptions
from promptpress.service.policy import Policy, apply_chat, chat_slots, prompt_slots, resolve_policy
from promptpress.service.runner import CompressionRunner, CompressionTimeout
from promptpress.service.settings import Settings


@pytest.fixture
def base() -> Policy:
    return Policy.from_settings(settings_for(None))


def test_defaults_come_from_settings(base):
    assert base.enabled and base.roles == {"user"} and base.min_tokens == 20
    assert base.options.rate == 0.5 and base.options.force_tokens == ("\n", "?")


def test_headers_then_body_override(base):
    headers = {
        "x-promptpress-rate": "0.3",
        "x-promptpress-roles": "user, tool",
        "x-promptpress-min-tokens": "5",
    }
    policy = resolve_policy(base, headers, None)
    assert policy.options.rate == 0.3 and policy.roles == {"user", "tool"} and policy.min_tokens == 5
    policy = resolve_policy(base, headers, PromptpressOptions(rate=0.7, compress=False))
    assert policy.options.rate == 0.7 and not policy.enabled
    assert resolve_policy(base, {"x-promptpress-compress": "OFF"}, None).enabled is False
    assert resolve_policy(base, {}, None) is base


def test_request_rate_beats_the_default_budget():
    base = Policy.from_settings(settings_for(None, target_tokens=100))
    assert resolve_policy(base, {"x-promptpress-rate": "0.2"}, None).options.target_tokens is None


@pytest.mark.parametrize(
    "headers",
    [{"x-promptpress-rate": "0"}, {"x-promptpress-rate": "inf"}, {"x-promptpress-min-tokens": "-1"}],
)
def test_bad_overrides_raise_400(base, headers):
    with pytest.raises(APIError) as info:
        resolve_policy(base, headers, None)
    assert info.value.status == 400


def test_chat_slots_select_roles_parts_and_length(base):
    messages = [
        {"role": "system", "content": LONG_TEXT},
        {"role": "user", "content": LONG_TEXT},
        {"role": "user", "content": "too short"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "x"}},
                {"type": "text", "text": LONG_TEXT},
            ],
        },
        {"role": "user", "content": None},
        {"role": "assistant", "content": LONG_TEXT},
    ]
    slots = chat_slots(messages, base)
    assert [s.path for s in slots] == [(1,), (3, 1)]
    assert all(s.tokens == count_tokens(LONG_TEXT) for s in slots)
    apply_chat(messages, slots, ["A", "B"])
    assert messages[1]["content"] == "A" and messages[3]["content"][1]["text"] == "B"
    assert messages[3]["content"][0]["type"] == "image_url" and messages[0]["content"] == LONG_TEXT


def test_prompt_slots(base):
    assert [s.path for s in prompt_slots(LONG_TEXT, base)] == [()]
    assert [s.path for s in prompt_slots(["x", LONG_TEXT], base)] == [(1,)]
    assert prompt_slots([1, 2, 3], base) == []


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("PROMPTPRESS_COMPRESS_ROLES", "user,tool")
    monkeypatch.setenv("PROMPTPRESS_API_KEYS", '["a", "b"]')
    monkeypatch.setenv("PROMPTPRESS_UPSTREAM_BASE_URL", "http://h:1/v1/")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.compress_roles == ["user", "tool"]
    assert [k.get_secret_value() for k in settings.api_keys] == ["a", "b"]
    assert settings.upstream_base_url == "http://h:1/v1"
    monkeypatch.setenv("PROMPTPRESS_RATE", "3")
    with pytest.raises(ValueError, match="rate"):
        Settings(_env_file=None)  # type: ignore[call-arg]


class _Sleepy:
    """Counts how many calls overlap; each call sleeps (stands in for a CPU-bound model)."""

    name = "sleepy"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def compress(self, context, options=None, /, **overrides):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.seconds)
        with self.lock:
            self.active -= 1
        texts = list(context)
        contexts = [ContextResult(i, t, 1, 1) for i, t in enumerate(texts)]
        return CompressionResult(" ".join(texts), contexts, len(texts), len(texts))


def test_runner_bounds_concurrency_and_times_out(base):
    async def scenario() -> None:
        model = _Sleepy(0.2)
        runner = CompressionRunner(model, concurrency=2, timeout=5)
        loop_ticks = 0

        async def ticker() -> None:
            nonlocal loop_ticks
            for _ in range(10):
                await asyncio.sleep(0.02)
                loop_ticks += 1

        await asyncio.gather(*(runner.run(["x"], base.options) for _ in range(6)), ticker())
        assert model.peak == 2
        assert loop_ticks == 10  # the event loop kept running while the model worked
        slow = CompressionRunner(_Sleepy(0.5), concurrency=1, timeout=0.1)
        with pytest.raises(CompressionTimeout):
            await slow.run(["x"], base.options)
        assert slow.running == 1  # the overrunning call keeps its worker...
        await asyncio.sleep(0.6)
        assert slow.running == 0  # ...until it finishes
        runner.close()
        slow.close()

    asyncio.run(scenario())


def test_embedding_model_setting_and_the_runner_that_uses_it(monkeypatch, base):
    from promptpress.compressor.query_aware import DEFAULT_EMBEDDING_MODEL, question_aware

    assert Settings(_env_file=None).embedding_model == DEFAULT_EMBEDDING_MODEL  # type: ignore[call-arg]
    monkeypatch.setenv("PROMPTPRESS_EMBEDDING_MODEL", "package:all-mpnet-base-v2")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.embedding_model == "package:all-mpnet-base-v2"
    monkeypatch.setenv("PROMPTPRESS_EMBEDDING_MODEL", "")
    with pytest.raises(ValueError, match="embedding_model"):
        Settings(_env_file=None)  # type: ignore[call-arg]

    model = _Sleepy(0.0)
    # a long deadline: the first use extracts and loads the model (the service loads it at startup)
    runner = CompressionRunner(model, timeout=300, embedding_model=settings.embedding_model)
    mpnet = question_aware(model, "package:all-mpnet-base-v2").embed
    text = "\n\n".join(
        [
            "Stradivari built his violins in Cremona.",
            "Bees dance to show where flowers are.",
            "The Rhine flows into the North Sea.",
        ]
    )
    timed = asyncio.run(runner.run([text], base.options, "Who built violins?"))
    runner.close()
    assert mpnet.misses == 4  # three paragraphs and the question, through all-mpnet-base-v2
    [context] = timed.result.contexts  # the text's paragraphs shared its budget: the best one's relevance
    assert context.relevance is not None and context.relevance > 0.5

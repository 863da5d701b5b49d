"""The official openai client -> promptpress proxy -> a real (mock) OpenAI-compatible upstream."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from service_helpers import LONG_TEXT, openai_client

from promptpress.compressor import count_tokens


def _sent(completion) -> dict:
    """What the upstream received (the mock echoes it)."""
    return completion.model_extra["echo"]


def test_chat_compresses_user_text_and_reports_tokens(client):
    raw = client.chat.completions.with_raw_response.create(
        model="echo",
        messages=[
            {"role": "system", "content": LONG_TEXT},
            {"role": "user", "content": LONG_TEXT},
            {"role": "user", "content": "And the question?"},
        ],
        extra_body={"promptpress": {"rate": 0.5}, "custom_field": {"kept": [1, 2]}},
    )
    headers = raw.headers
    sent = _sent(raw.parse())["body"]
    assert headers["x-promptpress-compression"] == "applied"
    original, compressed = (
        int(headers["x-promptpress-original-tokens"]),
        int(headers["x-promptpress-compressed-tokens"]),
    )
    assert original == count_tokens(LONG_TEXT)
    assert 0 < compressed < original
    assert sent["messages"][0]["content"] == LONG_TEXT  # system role untouched by default
    user = sent["messages"][1]["content"]
    assert count_tokens(user) < original and user != LONG_TEXT
    assert sent["messages"][2]["content"] == "And the question?"  # under min_tokens
    assert "promptpress" not in sent  # our extension is stripped
    assert sent["custom_field"] == {"kept": [1, 2]}  # unknown fields pass through
    assert headers["x-request-id"] == "mock-request"  # upstream headers pass through


def test_content_parts_text_compressed_other_parts_untouched(client):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    completion = client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": [{"type": "text", "text": LONG_TEXT}, image]}],
    )
    parts = _sent(completion)["body"]["messages"][0]["content"]
    assert parts[1] == image
    assert parts[0]["type"] == "text" and count_tokens(parts[0]["text"]) < count_tokens(LONG_TEXT)


@pytest.mark.parametrize(
    ("headers", "body"),
    [({"X-Promptpress-Compress": "off"}, None), ({}, {"compress": False})],
    ids=["header", "body-field"],
)
def test_opt_out_forwards_the_exact_text(client, headers, body):
    extra = {"promptpress": body} if body else None
    raw = client.chat.completions.with_raw_response.create(
        model="echo",
        messages=[{"role": "user", "content": LONG_TEXT}],
        extra_headers=headers,
        extra_body=extra,
    )
    assert raw.headers["x-promptpress-compression"] == "disabled"
    assert _sent(raw.parse())["body"]["messages"][0]["content"] == LONG_TEXT


def test_header_rate_and_roles_override(client):
    raw = client.chat.completions.with_raw_response.create(
        model="echo",
        messages=[{"role": "system", "content": LONG_TEXT}],
        extra_headers={"X-Promptpress-Roles": "system", "X-Promptpress-Rate": "0.3"},
    )
    assert raw.headers["x-promptpress-compression"] == "applied"
    original = int(raw.headers["x-promptpress-original-tokens"])
    assert int(raw.headers["x-promptpress-compressed-tokens"]) <= 0.45 * original


def test_short_prompt_is_skipped_and_forwarded_byte_for_byte(proxy, upstream_events):
    body = b'{"model": "echo",  "messages": [{"role": "user", "content": "hi"}], "x": 1.50}'
    response = httpx.post(
        proxy.url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["x-promptpress-compression"] == "skipped"
    assert response.json()["echo"]["body"] == {
        "model": "echo",
        "messages": [{"role": "user", "content": "hi"}],
        "x": 1.50,
    }


def test_completions_endpoint_compresses_text_prompts(client):
    completion = client.completions.create(model="echo", prompt=LONG_TEXT, max_tokens=3)
    assert completion.choices[0].text == "ok"
    assert count_tokens(completion.model_extra["echo"]["body"]["prompt"]) < count_tokens(LONG_TEXT)
    tokens = client.completions.create(model="echo", prompt=[1, 2, 3] * 40)
    assert tokens.model_extra["echo"]["body"]["prompt"] == [1, 2, 3] * 40


def test_streaming_relays_every_chunk(client):
    stream = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": LONG_TEXT}], stream=True, max_tokens=4
    )
    pieces = [chunk.choices[0].delta.content for chunk in stream]
    assert pieces == ["tok0 ", "tok1 ", "tok2 ", "tok3 ", ""]


def test_streaming_is_not_buffered(proxy):
    """The first chunk arrives long before the upstream finishes (10 chunks, 0.2 s apart)."""
    body = {"model": "drip-0.2", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    start = time.perf_counter()
    with httpx.stream("POST", proxy.url + "/v1/chat/completions", json=body, timeout=10) as response:
        first = next(response.iter_raw())
        elapsed = time.perf_counter() - start
    assert first.startswith(b"data: ")
    assert elapsed < 1.0


def test_stream_cut_midway_raises_in_the_client(client):
    stream = client.chat.completions.create(
        model="cut", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="cut"):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received[:2] == ["tok0 ", "tok1 "]


def test_stream_stalled_midway_ends_with_an_error_event(make_proxy):
    client = openai_client(make_proxy(upstream_read_timeout=0.3))
    stream = client.chat.completions.create(
        model="drip-1", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="stalled"):
        list(stream)


def test_client_disconnect_cancels_the_upstream_stream(proxy, upstream_events):
    body = {"model": "drip-0.05", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", proxy.url + "/v1/chat/completions", json=body, timeout=10) as response:
        next(response.iter_raw())
    deadline = time.monotonic() + 5
    while ("stream_cancelled", "drip-0.05") not in upstream_events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ("stream_cancelled", "drip-0.05") in upstream_events


def test_client_disconnect_cancels_a_pending_upstream_request(proxy, upstream_events):
    body = {"model": "slow-5", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(proxy.url + "/v1/chat/completions", json=body, timeout=0.5)
    deadline = time.monotonic() + 4
    while ("request_cancelled", "slow-5") not in upstream_events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ("request_cancelled", "slow-5") in upstream_events


def test_upstream_500_becomes_openai_error(client):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="error-500", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 500
    assert "boom" in info.value.body["message"] and info.value.body["type"] == "upstream_error"


def test_upstream_429_passes_through(client):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="error-429", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "rate_limit"


def test_upstream_timeout_is_504(make_proxy):
    client = openai_client(make_proxy(upstream_read_timeout=0.3))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="slow-3", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 504 and info.value.body["code"] == "upstream_timeout"


def test_upstream_down_is_502_and_no_upstream_is_503(make_proxy):
    from promptpress.service.serving import free_port

    down = openai_client(make_proxy(upstream_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(openai.APIStatusError) as info:
        down.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    none = openai_client(make_proxy(upstream_url=None))
    with pytest.raises(openai.APIStatusError) as info:
        none.models.list()
    assert info.value.status_code == 503 and "PROMPTPRESS_UPSTREAM_BASE_URL" in info.value.message


def test_models_are_the_upstreams(client):
    assert "echo" in [m.id for m in client.models.list()]


def test_fail_open_on_compression_timeout(make_proxy):
    client = openai_client(make_proxy(compression_timeout=0.001))
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": LONG_TEXT}]
    )
    assert raw.headers["x-promptpress-compression"] == "timeout"
    assert _sent(raw.parse())["body"]["messages"][0]["content"] == LONG_TEXT


class _Broken:
    """Failure injection: a compressor whose every call fails."""

    name = "broken"

    def compress(self, context, options=None, /, **overrides):
        raise RuntimeError("model weights on fire")


def test_fail_open_on_compressor_error_and_fail_closed(make_proxy):
    client = openai_client(make_proxy(compressor_override=_Broken()))
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": LONG_TEXT}]
    )
    assert raw.headers["x-promptpress-compression"] == "failed"
    assert _sent(raw.parse())["body"]["messages"][0]["content"] == LONG_TEXT
    closed = openai_client(make_proxy(compressor_override=_Broken(), fail_open=False))
    with pytest.raises(openai.APIStatusError) as info:
        closed.chat.completions.create(model="echo", messages=[{"role": "user", "content": LONG_TEXT}])
    assert info.value.status_code == 503 and info.value.body["code"] == "compression_failed"


def test_usage_in_body(make_proxy):
    client = openai_client(make_proxy(usage_in_body=True))
    completion = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": LONG_TEXT}]
    )
    usage = completion.usage.model_extra["promptpress"]
    assert usage["compression"] == "applied"
    assert usage["saved_tokens"] == usage["original_tokens"] - usage["compressed_tokens"] > 0


def test_cookies_an_upstream_sets_never_reach_it_again(make_proxy):
    """The proxy keeps no cookie jar: what the upstream set for one client is not sent with the next."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from promptpress.service.serving import ServerThread

    received: list[str | None] = []

    async def chat(request):
        received.append(request.headers.get("cookie"))
        response = JSONResponse(
            {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
        )
        response.set_cookie("session", "alice-only")
        return response

    with ServerThread(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])) as upstream:
        client = openai_client(make_proxy(upstream_url=upstream.url + "/v1"))
        for _ in range(2):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert received == [None, None]


def test_upstream_proxy_comes_from_the_environment(monkeypatch):
    from promptpress.service.upstream import environment_proxy

    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy("https://api.example.com/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    assert environment_proxy("https://api.example.com/v1") == "http://proxy.internal:3128"
    assert environment_proxy("http://api.example.com/v1") is None
    monkeypatch.setenv("ALL_PROXY", "http://all.internal:8080")
    assert environment_proxy("http://api.example.com/v1") == "http://all.internal:8080"
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
    assert environment_proxy("https://api.example.com/v1") is None
    assert environment_proxy("http://127.0.0.1:8080/v1") is None

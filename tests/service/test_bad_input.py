"""Bad input gets a clear 4xx in OpenAI's error shape, and the server stays up."""

from __future__ import annotations

import httpx
import pytest
from service_helpers import LONG_TEXT

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["message"] and body["error"]["type"]
    return body["error"]


@pytest.fixture
def small_proxy(make_proxy):
    return make_proxy(max_body_bytes=1_000_000, allowed_models=["echo"])


@pytest.mark.parametrize(
    ("path", "content", "expect"),
    [
        (CHAT, b'{"model": "echo", "messages": [', "not valid JSON"),
        (CHAT, b'{"model": "echo\xc3\x28", "messages": []}', "UTF-8"),
        (CHAT, b"\xff\xfe\x00garbage", "not valid JSON"),
        (CHAT, b'"just a string"', "JSON object"),
        (CHAT, b'{"model": "echo", "messages": []}', "messages"),
        (CHAT, b'{"model": "echo"}', "messages: field required"),
        (CHAT, b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (CHAT, b'{"model": "echo", "messages": "hello"}', "messages"),
        (CHAT, b'{"model": "echo", "messages": [{"content": "x"}]}', "role"),
        (CHAT, b'{"model": "echo", "messages": [{"role": "user", "content": 7}]}', "content"),
        (CHAT, b'{"model": "echo", "messages": [{"role": "user", "content": [{"type": "text"}]}]}', "text"),
        (
            CHAT,
            b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        (
            CHAT,
            b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "promptpress": {"rate": 1.5}}',
            "rate",
        ),
        (
            CHAT,
            b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "promptpress": {"rat": 1}}',
            "rat",
        ),
        ("/v1/completions", b'{"model": "echo", "prompt": []}', "prompt"),
        ("/v1/completions", b'{"model": "echo", "prompt": {"a": 1}}', "prompt"),
        ("/v1/compress", b'{"rate": 0.5}', "exactly one of"),
        ("/v1/compress", b'{"text": "abc", "rate": 0}', "rate"),
        ("/v1/compress", b'{"text": "abc", "rate": -1}', "rate"),
        ("/v1/compress", b'{"text": "abc", "options": {"budget": "everything"}}', "budget"),
        ("/v1/compress", b'{"text": "abc", "options": {"no_such_option": 1}}', "unknown option"),
        ("/v1/compress", b'{"text": "abc", "method": "magic"}', "unknown method"),
    ],
)
def test_bad_bodies_are_400(small_proxy, path, content, expect):
    error = _error(httpx.post(small_proxy.url + path, content=content, headers=JSON), 400)
    assert expect.lower() in error["message"].lower()
    assert httpx.get(small_proxy.url + "/healthz").status_code == 200


@pytest.mark.parametrize(
    ("headers", "expect"),
    [
        ({"X-Promptpress-Rate": "2"}, "rate"),
        ({"X-Promptpress-Rate": "nan"}, "finite"),
        ({"X-Promptpress-Rate": "lots"}, "number"),
        ({"X-Promptpress-Compress": "maybe"}, "'on' or 'off'"),
        ({"X-Promptpress-Target-Tokens": "0"}, "target_tokens"),
    ],
)
def test_bad_override_headers_are_400(small_proxy, headers, expect):
    body = {"model": "echo", "messages": [{"role": "user", "content": LONG_TEXT}]}
    error = _error(httpx.post(small_proxy.url + CHAT, json=body, headers=headers), 400)
    assert expect in error["message"]


def test_unknown_model_is_404(small_proxy):
    body = {"model": "gpt-nonexistent", "messages": [{"role": "user", "content": "x"}]}
    error = _error(httpx.post(small_proxy.url + CHAT, json=body), 404)
    assert error["code"] == "model_not_found" and "echo" in error["message"]


def test_ten_megabyte_body_is_413_without_reading_it(small_proxy):
    big = b'{"model": "echo", "messages": [{"role": "user", "content": "' + b"a" * 10_000_000 + b'"}]}'
    error = _error(httpx.post(small_proxy.url + CHAT, content=big, headers=JSON, timeout=30), 413)
    assert error["code"] == "body_too_large"

    def chunks():  # no Content-Length: the limit applies while streaming the upload
        for _ in range(10):
            yield b"a" * 1_000_000

    error = _error(httpx.post(small_proxy.url + CHAT, content=chunks(), headers=JSON, timeout=30), 413)
    assert "1000000 bytes" in error["message"]
    assert httpx.get(small_proxy.url + "/healthz").status_code == 200


def test_wrong_content_type_and_unknown_routes(small_proxy):
    error = _error(httpx.post(small_proxy.url + CHAT, data={"model": "echo"}), 400)
    assert "Content-Type: application/json" in error["message"]
    _error(httpx.get(small_proxy.url + "/v1/nothing-here"), 404)
    _error(httpx.get(small_proxy.url + CHAT), 405)


def test_no_content_type_is_still_parsed(small_proxy):
    content = b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}]}'
    response = httpx.post(small_proxy.url + CHAT, content=content)
    assert response.status_code == 200


def test_api_keys(make_proxy):
    server = make_proxy(api_keys="k-one,k-two")
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "k-one"}):
        error = _error(httpx.post(server.url + CHAT, json=body, headers=headers), 401)
        assert error["code"] == "invalid_api_key"
    ok = httpx.post(server.url + CHAT, json=body, headers={"Authorization": "Bearer k-two"})
    assert ok.status_code == 200
    assert "authorization" not in ok.json()["echo"]["headers"]  # the proxy's key never goes upstream
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_client_key_forwarded_when_proxy_has_no_keys(proxy):
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(proxy.url + CHAT, json=body, headers={"Authorization": "Bearer sk-user"})
    assert response.json()["echo"]["headers"]["authorization"] == "Bearer sk-user"


def test_upstream_key_replaces_the_clients(make_proxy):
    server = make_proxy(upstream_api_key="sk-upstream")
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(server.url + CHAT, json=body, headers={"Authorization": "Bearer sk-user"})
    assert response.json()["echo"]["headers"]["authorization"] == "Bearer sk-upstream"


@pytest.mark.parametrize("path", [CHAT, "/v1/completions"])
def test_an_unexpected_error_in_a_proxied_route_is_a_500_in_openai_shape(make_proxy, monkeypatch, path):
    """The proxied POSTs are answered ahead of FastAPI's router (`direct_routes`): a failure there is
    still the service's 500, logged, and the server stays up."""
    proxy = make_proxy()
    state = proxy.server.config.app.state
    serving = state.serving_chat if path == CHAT else state.serving_completion

    async def broken(request, body):
        raise RuntimeError("a bug")

    monkeypatch.setattr(serving, "create", broken)
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "prompt": "hi"}
    error = _error(httpx.post(proxy.url + path, json=body), 500)
    assert error["type"] == "api_error" and "server log" in error["message"]
    assert httpx.get(proxy.url + "/healthz").status_code == 200
    assert _error(httpx.put(proxy.url + path, json=body), 405)["code"] is None  # FastAPI's, as before

"""What a fault-and-abuse probe of the service found (issue 19), each against the real server: settings
honoured from ``.env``, credentials never shown, policy and body errors in OpenAI's shape."""

from __future__ import annotations

import logging
import time

import httpx
import openai
import pytest
import redis
from service_helpers import LONG_TEXT, openai_client, settings_for

from promptpress.service.app import create_app
from promptpress.service.serving import ServerThread
from promptpress.service.settings import Settings

CHAT = "/v1/chat/completions"
JSON_TYPE = {"content-type": "application/json"}


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_cache_namespace_from_dotenv_reaches_the_compressor_keys(tmp_path, monkeypatch, upstream, redis_url):
    monkeypatch.delenv("PROMPTPRESS_CACHE_NAMESPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        f"PROMPTPRESS_CACHE_URL={redis_url}\nPROMPTPRESS_CACHE_NAMESPACE=tenant-a\nPROMPTPRESS_MIN_TOKENS=20\n"
    )
    settings = Settings(upstream_base_url=upstream.url + "/v1", log_level="warning")
    assert settings.cache_namespace == "tenant-a"
    with ServerThread(create_app(settings)) as server:  # loads its own compressor, with the cache
        client = openai_client(server)
        raw = client.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": LONG_TEXT}]
        )
        assert raw.headers["x-promptpress-compression"] == "applied"
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*")]
    assert keys and all(k.startswith("pp:v1:tenant-a:") for k in keys), keys


def test_a_bad_cache_namespace_is_refused():
    with pytest.raises(ValueError, match="cache_namespace"):
        Settings(_env_file=None, cache_namespace="a:b")  # type: ignore[call-arg]


def test_upstream_credentials_are_never_shown(make_proxy, caplog):
    server = make_proxy(upstream_url="http://user:s3cretpw@127.0.0.1:1/v1")
    with caplog.at_level(logging.DEBUG):
        health = httpx.get(server.url + "/healthz").json()
        assert health["upstream"] == "http://***@127.0.0.1:1/v1"
        error = _error(
            httpx.post(
                server.url + CHAT, json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
            ),
            502,
        )
        metrics = httpx.get(server.url + "/metrics").text
    shown = [str(health), str(error), metrics, caplog.text]
    assert not [text for text in shown if "s3cretpw" in text]


def test_settings_errors_do_not_echo_credentials():
    with pytest.raises(ValueError) as raised:
        Settings(_env_file=None, upstream_base_url="ftp://user:s3cretpw@host/v1")  # type: ignore[call-arg]
    assert "s3cretpw" not in str(raised.value) and "ftp://***@host/v1" in str(raised.value)


def test_official_client_sees_the_errors(make_proxy):
    client = openai_client(make_proxy())
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-Promptpress-Rate": "x"},
        )
    assert settings_for(None).cache_namespace == "default"


def test_a_wrong_shape_cache_entry_is_a_miss_and_is_repaired(compressor, upstream):
    import numpy as np

    from promptpress.cache import MemoryCache, encode_arrays
    from promptpress.compressor.token_classifier import TokenClassifierCompressor

    cache = MemoryCache(1 << 24)
    cached = TokenClassifierCompressor(compressor.loaded, cache=cache)
    app = create_app(settings_for(upstream.url + "/v1"), compressor=cached, cache=cache)
    body = {"model": "echo", "messages": [{"role": "user", "content": LONG_TEXT}]}
    with ServerThread(app) as server:

        def ask() -> tuple[int, int, int]:
            response = httpx.post(server.url + CHAT, json=body, timeout=60)
            assert response.headers["x-promptpress-compression"] == "applied"
            stats = cache.stats()
            return stats.hits, stats.misses, stats.invalid

        assert ask() == (0, 1, 0)
        (key,) = list(cache._entries)
        cache.put_many({key: encode_arrays({"keep": np.zeros(3, dtype=np.float32)})})  # well formed
        assert ask() == (0, 2, 1)  # a miss, not a hit
        assert ask() == (1, 2, 1)  # and overwritten: the next request hits
        metrics = httpx.get(server.url + "/metrics").text
    assert "promptpress_cache_invalid_total 1.0" in metrics


def test_cache_secret_signs_the_service_cache(upstream, redis_url, compressor):
    from promptpress.cache import SignedCache
    from promptpress.compressor.token_classifier import TokenClassifierCompressor

    settings = settings_for(upstream.url + "/v1", cache_url=redis_url, cache_secret="s" * 32)
    app = create_app(settings, compressor=compressor)
    with ServerThread(app):
        cache = app.state.promptpress.cache
        assert isinstance(cache, SignedCache)
        signed = TokenClassifierCompressor(compressor.loaded, cache=cache)
        signed.compress(LONG_TEXT, rate=0.5)
    store = redis.Redis.from_url(redis_url)
    values = [store.get(k) for k in store.keys("*")]
    assert values and all(v.startswith(b"PPS1") for v in values)
    assert "s" * 32 not in repr(settings)


def _raw(server: ServerThread, request: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer until the server closes or `timeout`: (status, headers, body)."""
    import socket

    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


@pytest.mark.parametrize("path", [CHAT, "/v1/completions", "/v1/compress"])
def test_a_missing_key_is_401_before_the_body_is_parsed(make_proxy, path):
    server = make_proxy(api_keys="k1")
    response = httpx.post(server.url + path, content=b'{"model": "echo", "messages": [', headers=JSON_TYPE)
    assert _error(response, 401)["code"] == "invalid_api_key"
    with_key = {**JSON_TYPE, "authorization": "Bearer k1"}
    assert _error(httpx.post(server.url + path, content=b"{", headers=with_key), 400)


@pytest.mark.parametrize("protocol", ["JSONErrorsHttpToolsProtocol", "JSONErrorsH11Protocol"])
def test_a_bad_content_length_is_a_json_400(compressor, upstream, protocol):
    from promptpress.service import http_protocol

    app = create_app(settings_for(upstream.url + "/v1"), compressor=compressor)
    with ServerThread(app, http=getattr(http_protocol, protocol)) as server:
        request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
        status, headers, body = _raw(server, request)
    assert status == 400 and headers["content-type"] == "application/json"
    error = httpx.Response(400, content=body, headers=headers)
    assert _error(error, 400)["code"] == "invalid_http_request"


def test_a_body_shorter_than_its_content_length_is_a_408_in_time(make_proxy):
    server = make_proxy(body_read_timeout=0.5)
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    request += b"Content-Length: 100\r\n\r\n" + b'{"model": "echo"'
    start = time.monotonic()
    status, headers, body = _raw(server, request)
    assert status == 408 and time.monotonic() - start < 5
    assert _error(httpx.Response(408, content=body, headers=headers), 408)["code"] == "body_timeout"
    in_flight = httpx.get(server.url + "/metrics").text
    assert "promptpress_requests_in_flight 1.0" in in_flight  # only the scrape itself


def test_health_and_metrics_report_a_cache_whose_redis_is_down(compressor, upstream, redis_server, redis_url):
    from promptpress.cache import open_cache
    from promptpress.compressor.token_classifier import TokenClassifierCompressor

    cache = open_cache(redis_url + "?socket_timeout=0.3&socket_connect_timeout=0.3&retry_interval=0.3")
    cached = TokenClassifierCompressor(compressor.loaded, cache=cache)
    app = create_app(settings_for(upstream.url + "/v1"), compressor=cached, cache=cache)
    body = {"model": "echo", "messages": [{"role": "user", "content": LONG_TEXT}]}
    with ServerThread(app) as server:
        assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
        redis_server.stop()
        try:
            response = httpx.post(server.url + CHAT, json=body, timeout=60)
            assert response.headers["x-promptpress-compression"] == "applied"  # fail-open
            health = httpx.get(server.url + "/healthz").json()
            assert health["status"] == "degraded" and health["cache"] is False
            assert "promptpress_cache_up 0.0" in httpx.get(server.url + "/metrics").text
        finally:
            redis_server.start()
        time.sleep(0.4)  # the breaker retries after retry_interval
        httpx.post(server.url + CHAT, json=body, timeout=60)
        assert httpx.get(server.url + "/healthz").json() == {**health, "status": "ok", "cache": True}
        assert "promptpress_cache_up 1.0" in httpx.get(server.url + "/metrics").text
    cache.close()


@pytest.mark.parametrize(
    ("headers", "body", "expect", "code"),
    [
        (
            {"X-Promptpress-Min-Tokens": "-1"},
            None,
            "header X-Promptpress-Min-Tokens must be at least 0",
            "invalid_header",
        ),
        (
            {"X-Promptpress-Target-Tokens": "x"},
            None,
            "header X-Promptpress-Target-Tokens must be",
            "invalid_header",
        ),
        (
            {"X-Promptpress-Target-Tokens": str(10**30)},
            None,
            "X-Promptpress-Target-Tokens must be at most 10000000",
            "invalid_header",
        ),
        ({"X-Promptpress-Roles": ",,,"}, None, "X-Promptpress-Roles names no role", "invalid_header"),
        ({}, b'{"rate": NaN}', "finite number", "invalid_request"),
        (
            {},
            b'{"target_tokens": 1000000000000000000000000000000}',
            "less than or equal to 10000000",
            "invalid_request",
        ),
    ],
)
def test_policy_errors_are_clear_and_coded(proxy, headers, body, expect, code):
    options = body or b"{}"
    content = (
        b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "promptpress": ' + options + b"}"
    )
    response = httpx.post(proxy.url + CHAT, content=content, headers={**JSON_TYPE, **headers})
    error = _error(response, 400)
    assert expect in error["message"] and error["code"] == code, error


def test_compress_api_caps_target_tokens_and_refuses_nan(proxy):
    for body in (
        b'{"text": "abc", "target_tokens": 1000000000000000000000000000000}',
        b'{"text": "abc", "rate": NaN}',
    ):
        error = _error(httpx.post(proxy.url + "/v1/compress", content=body, headers=JSON_TYPE), 400)
        assert (
            error["param"] in ("target_tokens", "rate") and "less than or equal to 1," not in error["message"]
        )

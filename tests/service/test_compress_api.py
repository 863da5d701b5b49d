"""POST /v1/compress, /healthz and /metrics over real HTTP with the real compressor."""

from __future__ import annotations

import re

import httpx
from service_helpers import LONG_TEXT, openai_client

from promptpress.compressor import count_tokens


def test_compress_text_meets_rate(proxy):
    response = httpx.post(proxy.url + "/v1/compress", json={"text": LONG_TEXT, "rate": 0.5}, timeout=60)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["original_tokens"] == count_tokens(LONG_TEXT)
    assert 0 < data["compressed_tokens"] <= 0.65 * data["original_tokens"]
    assert data["compressed_text"] == data["prompt"]
    assert data["contexts"][0]["text"] == data["compressed_text"]
    assert "words" not in data
    assert data["rate"] == round(data["compressed_tokens"] / data["original_tokens"], 4)


def test_compress_contexts_question_force_tokens_and_words(proxy):
    body = {
        "contexts": [
            LONG_TEXT,
            "Redis keeps compressed segments so repeated RAG chunks are compressed once.",
        ],
        "question": "Where are segments cached?",
        "target_tokens": 40,
        "force_tokens": ["Redis"],
        "return_words": True,
    }
    data = httpx.post(proxy.url + "/v1/compress", json=body, timeout=60).json()
    assert len(data["contexts"]) == 2
    assert data["prompt"].endswith("\n\nWhere are segments cached?")
    assert data["compressed_tokens"] <= 48
    assert all("Redis" in c["text"] for c in data["contexts"])
    kept = [w["text"] for w in data["words"] if w["keep"]]
    assert kept and len(kept) < len(data["words"])


def test_compress_model_must_match(proxy, compressor):
    ok = httpx.post(
        proxy.url + "/v1/compress", json={"text": "short text", "model": compressor.name}, timeout=60
    )
    assert ok.status_code == 200
    bad = httpx.post(proxy.url + "/v1/compress", json={"text": "short text", "model": "other"}, timeout=60)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "model_not_found"


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = (
        "^"
        + re.escape(name)
        + (r"\{[^}]*" + re.escape(labels) + r"[^}]*\}" if labels else "")
        + r" ([0-9.e+]+)"
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_requests_tokens_and_compression(proxy):
    client = openai_client(proxy)
    client.chat.completions.create(model="echo", messages=[{"role": "user", "content": LONG_TEXT}])
    client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    text = httpx.get(proxy.url + "/metrics").text
    assert _metric(text, "promptpress_requests_total", 'route="/v1/chat/completions"') == 2
    assert _metric(text, "promptpress_compressions_total", 'outcome="applied"') == 1
    assert _metric(text, "promptpress_compressions_total", 'outcome="skipped"') == 1
    original = _metric(text, "promptpress_tokens_original_total")
    saved = _metric(text, "promptpress_tokens_saved_total")
    assert original == count_tokens(LONG_TEXT) and 0 < saved < original
    assert _metric(text, "promptpress_compression_seconds_count") == 1
    assert _metric(text, "promptpress_request_duration_seconds_count", 'route="/v1/chat/completions"') == 2


class _Cache:
    """A cache-shaped object with counters (the service reads only `stats()`)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def stats(self) -> dict[str, int]:
        if self.fail:
            raise ConnectionError("cache down")
        return {"hits": 3, "misses": 5, "errors": 0, "bytes_read": 120}


def test_metrics_export_cache_stats_and_survive_a_broken_cache(compressor):
    from service_helpers import settings_for

    from promptpress.service.app import create_app
    from promptpress.service.serving import ServerThread

    for cache, up in ((_Cache(), 1), (_Cache(fail=True), 0)):
        with ServerThread(create_app(settings_for(None), compressor=compressor, cache=cache)) as server:
            text = httpx.get(server.url + "/metrics").text
            health = httpx.get(server.url + "/healthz").json()
        assert _metric(text, "promptpress_cache_up") == up
        assert _metric(text, "promptpress_cache_hits_total") == (3 if up else 0)
        assert health["cache"] is True


def test_healthz_reports_compressor_and_upstream(proxy, upstream, compressor):
    data = httpx.get(proxy.url + "/healthz").json()
    assert data == {
        "status": "ok",
        "compressor": compressor.name,
        "compressor_error": None,
        "upstream": upstream.url + "/v1",
        "cache": True,  # the in-process segment cache is on by default
    }


def test_cache_url_opens_the_segment_cache_and_a_bad_one_degrades(compressor):
    from service_helpers import settings_for

    from promptpress.service.app import create_app
    from promptpress.service.serving import ServerThread

    with ServerThread(
        create_app(settings_for(None, cache_url="memory://?max_bytes=1MiB"), compressor=compressor)
    ) as s:
        assert httpx.get(s.url + "/healthz").json()["cache"] is True
        metrics = httpx.get(s.url + "/metrics").text
        assert _metric(metrics, "promptpress_cache_up") == 1 and "promptpress_cache_misses_total" in metrics
    with ServerThread(
        create_app(settings_for(None, cache_url="bogus://nowhere"), compressor=compressor)
    ) as s:
        health = httpx.get(s.url + "/healthz").json()
    assert health["cache"] is False and health["status"] == "ok"

"""Structure-safe compression through the service: /v1/compress and the proxy's `promptpress` field."""

from __future__ import annotations

import httpx
from service_helpers import LONG_TEXT

CODE = "```python\ndef total(items):\n    if not items:\n        return 0\n    return sum(items)\n```"


def test_compress_api_never_empties_a_long_word(proxy):
    text = "Summarise this: " + "a" * 20000 + " please."
    response = httpx.post(proxy.url + "/v1/compress", json={"text": text, "rate": 0.33}, timeout=60)
    assert response.status_code == 200, response.text
    data = response.json()
    assert "a" * 32 in data["compressed_text"] and "chars cut]" in data["compressed_text"]
    assert data["original_tokens"] > 2000 and data["verbatim_tokens"]["long"] > 0
    assert "over_budget" in data


def test_compress_api_structure_option_and_its_errors(proxy):
    text = f"{LONG_TEXT}\n\n{CODE}\n\n{LONG_TEXT}"
    kept = httpx.post(proxy.url + "/v1/compress", json={"text": text, "rate": 0.4}, timeout=60).json()
    assert CODE in kept["compressed_text"] and kept["verbatim_tokens"]["code"] > 0
    body = {"text": text, "rate": 0.4, "options": {"structure": {"code": "drop"}}}
    dropped = httpx.post(proxy.url + "/v1/compress", json=body, timeout=60).json()
    assert "def total" not in dropped["compressed_text"]
    body["options"] = {"structure": {"cod": "keep"}}
    bad = httpx.post(proxy.url + "/v1/compress", json=body, timeout=60)
    assert bad.status_code == 400
    assert "unknown structure kind" in bad.json()["error"]["message"]


def _chat(proxy, content: str, options: dict | None = None) -> httpx.Response:
    body = {"model": "echo", "messages": [{"role": "user", "content": content}]}
    if options is not None:
        body["promptpress"] = options
    return httpx.post(proxy.url + "/v1/chat/completions", json=body, timeout=120)


def test_proxy_forwards_a_one_megabyte_word_cut_not_empty(proxy):
    response = _chat(proxy, "x" * 1_000_000, {"rate": 0.33})
    assert response.status_code == 200, response.text
    sent = response.json()["echo"]["body"]["messages"][0]["content"]
    assert sent.startswith("x" * 32) and sent.endswith("x" * 32) and "chars cut]" in sent
    assert response.headers["x-promptpress-compression"] == "applied"


def test_proxy_structure_field_and_its_errors(proxy):
    text = f"{LONG_TEXT}\n\n{CODE}\n\n{LONG_TEXT}"
    kept = _chat(proxy, text, {"rate": 0.4}).json()["echo"]["body"]["messages"][0]["content"]
    assert CODE in kept
    off = _chat(proxy, text, {"rate": 0.4, "structure": "off"}).json()["echo"]["body"]["messages"][0][
        "content"
    ]
    assert CODE not in off
    bad = _chat(proxy, text, {"structure": {"code": "verbatim"}})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_compression_option"

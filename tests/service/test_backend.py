"""The quantized llama.cpp backend (packaged Qwen2.5-Coder-0.5B Q4_K_M) behind the proxy, with tiny
max_tokens. One backend start for the module."""

from __future__ import annotations

import socket

import httpx
import openai
import pytest
from service_helpers import LONG_TEXT, openai_client

from promptpress.compressor.llamacpp import BackendError, LocalBackend

pytestmark = [pytest.mark.backend, pytest.mark.slow]


@pytest.fixture(scope="module")
def backend():
    with LocalBackend(ctx_size=2048, threads=2) as started:
        process = started._process
        port = int(started.base_url.rsplit(":", 1)[1].split("/")[0])
        yield started
    assert process is not None and process.poll() is not None  # stop() ended the child...
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # ...and freed its port


@pytest.fixture
def backend_proxy(make_proxy, backend):
    return make_proxy(
        upstream_url=backend.base_url, allowed_models=[backend.model_name], upstream_read_timeout=180
    )


def test_backend_api(backend):
    assert backend.running
    assert backend.base_url.startswith("http://127.0.0.1:") and backend.base_url.endswith("/v1")
    assert backend.model_name == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    assert httpx.get(backend.base_url + "/models").status_code == 200


def test_chat_through_proxy_compresses_and_answers(backend_proxy, backend):
    client = openai_client(backend_proxy, timeout=120)
    question = "\n\nIn one word: what does promptpress shrink?"
    raw = client.chat.completions.with_raw_response.create(
        model=backend.model_name, messages=[{"role": "user", "content": LONG_TEXT + question}], max_tokens=4
    )
    completion = raw.parse()
    assert raw.headers["x-promptpress-compression"] == "applied"
    assert int(raw.headers["x-promptpress-compressed-tokens"]) < int(
        raw.headers["x-promptpress-original-tokens"]
    )
    assert completion.choices[0].message.content.strip()
    assert completion.usage.completion_tokens <= 4


def test_streaming_and_completions_through_proxy(backend_proxy, backend):
    client = openai_client(backend_proxy, timeout=120)
    stream = client.chat.completions.create(
        model=backend.model_name,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=3,
        stream=True,
    )
    chunks = list(stream)
    assert len(chunks) >= 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    completion = client.completions.create(model=backend.model_name, prompt="def add(a, b):", max_tokens=3)
    assert completion.choices[0].text


def test_models_and_unknown_model(backend_proxy, backend):
    client = openai_client(backend_proxy)
    assert backend.model_name in [m.id for m in client.models.list()]
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=1
        )
    assert backend.model_name in info.value.message


def test_stop_frees_the_port_and_bad_models_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="ctx_size"):
        LocalBackend(ctx_size=0)
    not_gguf = tmp_path / "weights.bin"
    not_gguf.write_bytes(b"\0" * 16)
    with pytest.raises(BackendError, match="GGUF"):
        LocalBackend(str(not_gguf)).start()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(BackendError, match=r"exited|not ready"):
        LocalBackend(str(broken), startup_timeout=60).start()

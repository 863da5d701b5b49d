"""The soft compressor served as its own model name: the official openai client -> the real app
(uvicorn on a free port) backed by the tiny random decoder; other models go to the mock upstream."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from soft_helpers import ALICE, make_tiny_decoder

from promptpress.compressor.soft.engine import SoftCompressor
from promptpress.compressor.soft.model import ConceptEncoder
from promptpress.compressor.soft.prompt import Context, chat_pieces
from promptpress.eval.baselines import TruncationCompressor
from promptpress.service.app import create_app
from promptpress.service.mock_upstream import create_mock_upstream
from promptpress.service.serving import ServerThread
from promptpress.service.settings import Settings
from promptpress.service.soft_model import TextStream

NAME = "promptpress-soft"
P1, P2, P3 = ALICE.split("\n\n")  # three paragraphs of ~80-150 tiny-BPE tokens each
QUESTION = "What did the White Rabbit take out of its waistcoat-pocket?"
MAX_TOKENS = 16


def _settings(upstream_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "upstream_base_url": upstream_url,
        "soft_model_name": NAME,
        "soft_min_block_tokens": 32,
        "soft_max_tokens": 64,
        "min_tokens": 20,
        "upstream_read_timeout": 10.0,
        "log_level": "warning",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _client(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def soft(tokenizer) -> SoftCompressor:
    return SoftCompressor(ConceptEncoder(make_tiny_decoder(tokenizer)), tokenizer)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(create_mock_upstream(), log_level="critical") as server:
        yield server


@pytest.fixture(scope="module")
def server(soft, upstream) -> Iterator[ServerThread]:
    app = create_app(_settings(upstream.url + "/v1"), compressor=TruncationCompressor(), soft_compressor=soft)
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def client(server) -> openai.OpenAI:
    return _client(server)


def _ask(client: openai.OpenAI, messages: list[dict[str, Any]], **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=NAME, messages=messages, max_tokens=MAX_TOKENS, **kw
    )


def test_the_soft_model_is_listed_next_to_the_upstreams(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["echo", "error-500", "error-429", "cut", NAME]


def test_chat_completion_equals_direct_generation(client, soft):
    raw = _ask(client, [{"role": "user", "content": f"{P1}\n\n{QUESTION}"}], temperature=0.7)
    direct = soft.generate([P1], QUESTION, max_new_tokens=MAX_TOKENS)
    completion = raw.parse()
    assert completion.model == NAME and completion.object == "chat.completion"
    assert completion.choices[0].message.content == direct.text != ""
    assert completion.choices[0].finish_reason == (
        "length" if len(direct.token_ids) == MAX_TOKENS else "stop"
    )
    assert completion.usage.prompt_tokens == direct.prompt_positions
    assert completion.usage.completion_tokens == len(direct.token_ids)
    assert completion.usage.total_tokens == direct.prompt_positions + len(direct.token_ids)
    headers = raw.headers
    assert headers["x-promptpress-compression"] == "applied"
    assert int(headers["x-promptpress-original-tokens"]) == direct.original_positions
    assert int(headers["x-promptpress-compressed-tokens"]) == direct.prompt_positions
    assert direct.prompt_positions < direct.original_positions  # the paragraph became concepts
    assert int(headers["x-promptpress-segments"]) == direct.segments == len(soft.segments([P1]))
    assert headers["x-promptpress-sampling"] == "greedy"  # temperature 0.7 was ignored


def test_long_blocks_become_concepts_short_blocks_stay_tokens(client, soft, tokenizer):
    instruction = "Answer in one sentence."
    messages = [
        {"role": "system", "content": "You read stories."},
        {"role": "user", "content": f"{instruction}\n\n{P1}\n\n \n{P2}\n\n{QUESTION}"},
    ]
    pieces = chat_pieces(tokenizer, messages, min_context_tokens=32)
    assert pieces == [
        f"<|im_start|>system\nYou read stories.<|im_end|>\n<|im_start|>user\n{instruction}\n\n",
        Context(P1),
        "\n\n \n",
        Context(P2),
        f"\n\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n",
    ]
    direct = soft.generate_prompt(soft.prompt_pieces(pieces), max_new_tokens=MAX_TOKENS)
    raw = _ask(client, messages)
    completion = raw.parse()
    assert completion.choices[0].message.content == direct.text
    assert completion.usage.prompt_tokens == direct.prompt_positions < direct.original_positions
    assert int(raw.headers["x-promptpress-segments"]) == len(soft.segments([P1])) + len(soft.segments([P2]))
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    as_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert int(raw.headers["x-promptpress-original-tokens"]) == direct.original_positions
    assert abs(direct.original_positions - as_tokens) <= 6  # per-block tokenization vs whole text

    off = _ask(client, messages, extra_headers={"X-Promptpress-Compress": "off"})
    assert off.headers["x-promptpress-compression"] == "disabled"
    assert off.parse().usage.prompt_tokens == int(off.headers["x-promptpress-original-tokens"])
    short = _ask(client, [{"role": "user", "content": QUESTION}])
    assert short.headers["x-promptpress-compression"] == "skipped"


def test_streaming_returns_the_same_text_and_usage(client):
    messages = [{"role": "user", "content": f"{P1}\n\n{QUESTION}"}]
    whole = _ask(client, messages).parse()
    stream = client.chat.completions.create(
        model=NAME,
        messages=messages,
        max_tokens=MAX_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(deltas) == whole.choices[0].message.content
    assert len([d for d in deltas if d]) > 1  # sent as generated, not in one piece
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()


def test_stop_strings_cut_the_answer(client):
    messages = [{"role": "user", "content": f"{P3}\n\n{QUESTION}"}]
    full = _ask(client, messages).parse().choices[0].message.content
    assert len(full) >= 8
    stop = full[4:7]
    cut = _ask(client, messages, stop=[stop, "\u2603never"]).parse().choices[0]
    assert cut.message.content == full[: full.index(stop)] and cut.finish_reason == "stop"
    streamed = _client_stream_text(client, messages, stop=stop)
    assert streamed == cut.message.content


def _client_stream_text(client: openai.OpenAI, messages: list[dict[str, Any]], **kw: Any) -> str:
    stream = client.chat.completions.create(
        model=NAME, messages=messages, max_tokens=MAX_TOKENS, stream=True, **kw
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_text_stream_holds_back_partial_stops(tokenizer):
    ids = tokenizer("Alice was beginning to get very tired", add_special_tokens=False)["input_ids"]
    stream = TextStream(tokenizer, stop=["get very"])
    deltas = []
    for token in ids:
        deltas.append(stream.push(token))
        if stream.stopped:
            break
    assert "".join(deltas) == "Alice was beginning to "
    assert stream.stopped and stream.finish() == ""
    plain = TextStream(tokenizer)
    assert "".join(plain.push(t) for t in ids) + plain.finish() == "Alice was beginning to get very tired"


def test_other_models_still_go_upstream(client):
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": ALICE}], extra_body={"promptpress": {"rate": 0.5}}
    )
    sent = raw.parse().model_extra["echo"]["body"]
    assert sent["model"] == "echo" and raw.headers["x-promptpress-compression"] == "applied"
    assert ALICE.startswith(sent["messages"][0]["content"].rstrip()) and len(
        sent["messages"][0]["content"]
    ) < len(ALICE)  # the proxy's own compressor (here: truncation) ran


def test_bad_requests_are_clear_400s(client):
    ask = [{"role": "user", "content": QUESTION}]
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    cases = [
        ({"n": 2}, "n must be 1"),
        ({"max_tokens": 65}, "at most 64"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop strings"),
        ({"messages": [{"role": "user", "content": [image]}]}, "text only"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "does not support tools"),
    ]
    for extra, message in cases:
        kw = {"messages": ask, "max_tokens": MAX_TOKENS, **extra}
        with pytest.raises(openai.BadRequestError, match=message):
            client.chat.completions.create(model=NAME, **kw)


def test_a_failing_model_gives_a_clean_error_and_the_next_request_works(client, soft, monkeypatch):
    messages = [{"role": "user", "content": f"{P2}\n\n{QUESTION}"}]
    good = _ask(client, messages).parse().choices[0].message.content
    real = soft.generate_prompt
    calls = []

    def broken(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("decoder exploded")
        return real(*args, **kw)

    monkeypatch.setattr(soft, "generate_prompt", broken)
    with pytest.raises(openai.InternalServerError, match="decoder exploded") as failed:
        _ask(client, messages)
    assert failed.value.body["code"] == "soft_model_error"
    with pytest.raises(openai.APIError, match="decoder exploded"):  # streaming: an SSE error event
        _client_stream_text(client, messages)
    assert _ask(client, messages).parse().choices[0].message.content == good


def test_concurrent_requests_take_turns_and_match(client):
    jobs = [[{"role": "user", "content": f"{p}\n\n{QUESTION}"}] for p in (P1, P2, P3)]
    alone = [_ask(client, m).parse().choices[0].message.content for m in jobs]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda m: _ask(client, m).parse().choices[0].message.content, jobs))
    assert together == alone


def test_unloadable_model_is_a_503_and_the_proxy_keeps_working(upstream, tmp_path):
    settings = _settings(upstream.url + "/v1", soft_weights=str(tmp_path / "none"))
    with ServerThread(create_app(settings, compressor=TruncationCompressor())) as server:
        client = _client(server)
        assert NAME in [m.id for m in client.models.list()]  # listed before it is loaded
        for _ in range(2):  # the load is retried, and fails the same way
            with pytest.raises(openai.APIStatusError, match="no soft-compressor weights") as failed:
                _ask(client, [{"role": "user", "content": QUESTION}])
            assert failed.value.status_code == 503
        assert client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])


def test_without_an_upstream_only_the_soft_model_is_listed(soft):
    app = create_app(_settings(None), compressor=TruncationCompressor(), soft_compressor=soft)
    with ServerThread(app) as server:
        client = _client(server)
        assert [m.id for m in client.models.list()] == [NAME]
        assert _ask(client, [{"role": "user", "content": QUESTION}]).parse().choices[0].message.content
    with pytest.raises(ValueError, match="soft_model_name"):
        create_app(_settings(None, soft_model_name=None), soft_compressor=soft)

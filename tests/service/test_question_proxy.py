"""Question-aware compression where a question exists: the proxy (chat and completions) and /v1/compress."""

from __future__ import annotations

import httpx
import pytest
import topic_paragraphs
from service_helpers import openai_client

from promptpress.compressor import count_tokens

PARAGRAPHS = topic_paragraphs.PARAGRAPHS
CONTEXT = "\n\n".join(PARAGRAPHS)
QUESTION = topic_paragraphs.RHINE_QUESTION


def _chat(client, messages, **kw):
    raw = client.chat.completions.with_raw_response.create(model="echo", messages=messages, **kw)
    return raw.headers, raw.parse().model_extra["echo"]["body"]


@pytest.fixture
def client(make_proxy):
    return openai_client(make_proxy(rate=0.4))


def test_context_and_question_in_one_message_the_question_goes_verbatim(client):
    text = f"Answer from the text below.\n\n{CONTEXT}\n\nQuestion: {QUESTION}\nAnswer:"
    headers, sent = _chat(client, [{"role": "user", "content": text}])
    out = sent["messages"][0]["content"]
    assert headers["x-promptpress-question-source"] == "trailing"
    assert headers["x-promptpress-compression"] == "applied"
    assert out.endswith(f"\n\nQuestion: {QUESTION}\nAnswer:")  # byte-identical, with its whitespace
    assert "Duisburg" in out and count_tokens(out) < count_tokens(text)
    # the relevant paragraph keeps most of its words, the others little
    assert "Duisburg" in out and "Stradivari" not in out


def test_the_instructions_right_before_the_question_go_verbatim_with_it(client):
    # LongBench's and the eval's QA prompts: instructions, context, instructions, question
    closing = "Now, answer the question based on the above text. Only give me the answer and do not output any other words."
    text = f"Read the text and answer the question.\n\nText: {CONTEXT}\n\n{closing}\n\nQuestion: {QUESTION}\nAnswer:"
    headers, sent = _chat(client, [{"role": "user", "content": text}])
    out = sent["messages"][0]["content"]
    assert headers["x-promptpress-question-source"] == "trailing"
    assert out.endswith(f"\n\n{closing}\n\nQuestion: {QUESTION}\nAnswer:")  # byte-identical
    assert out.startswith("Read the text and answer the question.\n\nText: ")  # the opening one too
    assert "Duisburg" in out and "Stradivari" not in out and count_tokens(out) < count_tokens(text)


def test_rag_context_in_an_earlier_message_and_the_question_in_the_last(client):
    messages = [
        {"role": "user", "content": CONTEXT},
        {"role": "assistant", "content": "I have read it."},
        {"role": "user", "content": QUESTION},
    ]
    headers, sent = _chat(client, messages)
    assert headers["x-promptpress-question-source"] == "last-user-message"
    assert sent["messages"][2]["content"] == QUESTION
    assert "Duisburg" in sent["messages"][0]["content"]


def test_explicit_question_header_and_off(client):
    messages = [{"role": "user", "content": CONTEXT}]
    headers, sent = _chat(
        client, messages, extra_headers={"X-Promptpress-Question": "How do bees tell where flowers are?"}
    )
    assert headers["x-promptpress-question-source"] == "explicit"
    assert "waggle" in sent["messages"][0]["content"]
    off_headers, off = _chat(client, messages, extra_body={"promptpress": {"question": "off"}})
    assert off_headers["x-promptpress-question-source"] == "off"
    blind_headers, blind = _chat(client, messages)  # no question in the request: question-blind
    assert blind_headers["x-promptpress-question-source"] == "none"
    assert off["messages"][0]["content"] == blind["messages"][0]["content"]
    both_headers, both = _chat(  # the body field wins over the header
        client,
        messages,
        extra_headers={"X-Promptpress-Question": "off"},
        extra_body={"promptpress": {"question": "How do bees tell where flowers are?"}},
    )
    assert both_headers["x-promptpress-question-source"] == "explicit"
    assert both["messages"][0]["content"] == sent["messages"][0]["content"]


def test_completions_prompt_with_a_trailing_question(make_proxy):
    proxy = make_proxy(rate=0.4)
    prompt = f"{CONTEXT}\n\n{QUESTION}"
    response = httpx.post(proxy.url + "/v1/completions", json={"model": "echo", "prompt": prompt}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["x-promptpress-question-source"] == "trailing"
    sent = response.json()["echo"]["body"]["prompt"]
    assert sent.endswith("\n\n" + QUESTION) and "Duisburg" in sent


def test_compress_api_results_differ_by_question_and_report_relevance(proxy):
    def ask(question):
        body = {"contexts": PARAGRAPHS, "rate": 0.4}
        if question:
            body["question"] = question
        response = httpx.post(proxy.url + "/v1/compress", json=body, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    rhine, bees, blind = ask(QUESTION), ask("How do bees tell where flowers are?"), ask(None)
    assert rhine["compressed_text"] != bees["compressed_text"] != blind["compressed_text"]
    assert max(range(4), key=lambda i: rhine["contexts"][i]["relevance"]) == 0
    assert max(range(4), key=lambda i: bees["contexts"][i]["relevance"]) == 3
    assert blind["contexts"][0]["relevance"] is None
    shares = [c["compressed_tokens"] / c["original_tokens"] for c in rhine["contexts"]]
    assert shares[0] > 2 * max(shares[1:])

"""PromptCompressorRunnable in real LCEL chains with langchain-core's fake chat models."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import topic_paragraphs
from adapter_helpers import is_subsequence, words
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import ConfigurableField
from pydantic import ValidationError

from promptpress.adapters.langchain import PromptCompressorRunnable
from promptpress.compressor import count_tokens

SYSTEM = "You are a careful assistant. Answer only from the context. " * 30  # long, never compressed
QUESTION = "What happened to the Occupy camps?"


class Recorder(BaseCallbackHandler):
    """Keeps the messages each chat model call received."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []
        self.events: list[tuple[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: list[list[BaseMessage]], **kwargs: Any) -> None:
        self.calls.extend(messages)

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events.append((name, data))


@pytest.fixture(scope="module")
def context(paragraphs) -> str:
    return "\n\n".join(d.page_content for d in paragraphs[:3])


@pytest.fixture(scope="module")
def prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [("system", SYSTEM), ("human", "Context:\n{context}\n\nQuestion: {question}")]
    )


def _compressor(compressor, **kwargs: Any) -> PromptCompressorRunnable:
    return PromptCompressorRunnable(compressor=compressor, **{"min_tokens": 20, **kwargs})


def test_chain_sends_the_model_a_compressed_user_message(prompt, context, compressor):
    recorder = Recorder()
    llm = FakeListChatModel(responses=["They were evicted."])
    chain = prompt | _compressor(compressor, rate=0.4) | llm
    answer = chain.invoke({"context": context, "question": QUESTION}, config={"callbacks": [recorder]})
    assert answer.content == "They were evicted."
    [received] = recorder.calls
    assert received[0] == SystemMessage(content=SYSTEM)
    original = prompt.invoke({"context": context, "question": QUESTION}).messages[1].content
    sent = received[1].content
    assert abs(count_tokens(sent) / count_tokens(original) - 0.4) < 0.06
    assert is_subsequence(words(sent), words(original))
    [(name, stats)] = recorder.events
    assert name == "promptpress_compression" and stats["texts"] == 1
    assert stats["compressed_tokens"] == count_tokens(sent)
    assert stats["original_tokens"] == count_tokens(original)


async def test_astream_events_report_the_compression(prompt, context, compressor):
    chain = prompt | _compressor(compressor, rate=0.4) | FakeListChatModel(responses=["ok"])
    events = [e async for e in chain.astream_events({"context": context, "question": QUESTION}, version="v2")]
    custom = [e["data"] for e in events if e["event"] == "on_custom_event"]
    assert len(custom) == 1 and custom[0]["compressed_tokens"] < custom[0]["original_tokens"]
    assert "".join(e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream") == "ok"


def test_tool_calls_ids_and_non_text_parts_are_untouched(context, compressor):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [
        SystemMessage(content=context, id="sys"),
        HumanMessage(content=[{"type": "text", "text": context}, image], id="h1", name="ann"),
        AIMessage(
            content=context,
            id="a1",
            tool_calls=[{"name": "search", "args": {"q": context[:200]}, "id": "call-1"}],
            additional_kwargs={"custom": 1},
        ),
        ToolMessage(content=context, tool_call_id="call-1", id="t1"),
        HumanMessage(content=context, id="h2", additional_kwargs={"keep": True}),
    ]
    out = _compressor(compressor, rate=0.5).invoke(messages)
    assert isinstance(out, list) and len(out) == len(messages)
    assert out[0] == messages[0] and out[2] == messages[2] and out[3] == messages[3]
    text_part, image_part = out[1].content
    assert image_part == image
    assert text_part["type"] == "text" and count_tokens(text_part["text"]) < count_tokens(context)
    assert (out[1].id, out[1].name) == ("h1", "ann")
    assert out[4].id == "h2" and out[4].additional_kwargs == {"keep": True}
    assert count_tokens(out[4].content) < count_tokens(context)
    with_ai = _compressor(compressor, rate=0.5, roles=["user", "assistant"]).invoke(messages)
    assert with_ai[2].tool_calls == messages[2].tool_calls and with_ai[2].id == "a1"
    assert count_tokens(with_ai[2].content) < count_tokens(context)
    assert with_ai[3] == messages[3]


def test_markers_select_spans_in_any_message(context, compressor):
    template = ChatPromptTemplate.from_messages(
        [("system", "Rules stay.\n<compress>{background}</compress>\nEnd of rules."), ("human", "{question}")]
    )
    value = template.invoke({"background": context, "question": QUESTION})
    out = _compressor(compressor, rate=0.4).invoke(value)
    assert isinstance(out, ChatPromptValue)
    system = out.messages[0].content
    assert system.startswith("Rules stay.\n") and system.endswith("\nEnd of rules.")
    assert "<compress>" not in system and "</compress>" not in system
    assert count_tokens(system) < 0.6 * count_tokens(context)
    assert out.messages[1].content == QUESTION  # under min_tokens: untouched
    with pytest.raises(ValueError, match="no closing"):
        _compressor(compressor).invoke([HumanMessage(content="<compress>" + context)])


def test_short_texts_are_left_alone(prompt, context, compressor):
    value = prompt.invoke({"context": "Occupy camps were cleared.", "question": QUESTION})
    assert _compressor(compressor, min_tokens=200).invoke(value) == value
    assert PromptCompressorRunnable(compressor=compressor).min_tokens == 200  # the service's default


def test_configurable_rate_changes_the_output_length(prompt, context, compressor):
    configurable = _compressor(compressor, rate=0.8).configurable_fields(
        rate=ConfigurableField(id="rate", name="Compression rate")
    )
    chain = prompt | configurable
    inputs = {"context": context, "question": QUESTION}
    default = chain.invoke(inputs).messages[1].content
    low = chain.with_config(configurable={"rate": 0.3}).invoke(inputs).messages[1].content
    assert count_tokens(low) < 0.6 * count_tokens(default)


def test_batch_async_and_stream_match_invoke(prompt, paragraphs, compressor):
    step = _compressor(compressor, rate=0.5)
    inputs = [{"context": d.page_content, "question": QUESTION} for d in paragraphs[3:6]]
    values = [prompt.invoke(i) for i in inputs]
    single = [step.invoke(v) for v in values]
    assert step.batch(values) == single
    assert asyncio.run(step.abatch(values)) == single
    assert asyncio.run(step.ainvoke(values[0])) == single[0]
    recorder = Recorder()
    chain = prompt | step | FakeListChatModel(responses=["Evicted by police."])
    chunks = list(chain.stream(inputs[0], config={"callbacks": [recorder]}))
    assert len(chunks) > 1 and "".join(c.content for c in chunks) == "Evicted by police."
    assert recorder.calls[0][1].content == single[0].messages[1].content


def test_string_prompts_strings_tuples_and_variables(context, compressor):
    step = _compressor(compressor, rate=0.4)
    string_value = PromptTemplate.from_template("Context: {context}\nAnswer:").invoke({"context": context})
    out = step.invoke(string_value)
    assert isinstance(out, StringPromptValue) and count_tokens(out.text) < 0.6 * count_tokens(
        string_value.text
    )
    assert isinstance(step.invoke(context), str)
    [msg] = step.invoke([("human", context)])
    assert isinstance(msg, HumanMessage) and count_tokens(msg.content) < count_tokens(context)
    by_variable = _compressor(compressor, rate=0.4, variables="context")
    variables = by_variable.invoke({"context": context, "question": QUESTION})
    assert variables["question"] == QUESTION
    assert count_tokens(variables["context"]) < 0.6 * count_tokens(context)
    with pytest.raises(ValueError, match="variables="):
        step.invoke({"context": context})
    with pytest.raises(KeyError, match="context"):
        by_variable.invoke({"question": QUESTION})
    with pytest.raises(TypeError, match="PromptValue"):
        step.invoke(42)


def test_bad_settings_are_clear_errors(compressor):
    with pytest.raises(ValidationError, match="never compressed"):
        PromptCompressorRunnable(compressor=compressor, roles=["tool"])
    with pytest.raises(ValidationError, match="unknown role"):
        PromptCompressorRunnable(compressor=compressor, roles=["boss"])
    with pytest.raises(ValidationError, match="rate"):
        PromptCompressorRunnable(compressor=compressor, rate=0)
    with pytest.raises(ValidationError, match="markers"):
        PromptCompressorRunnable(compressor=compressor, markers=("[", "["))


def test_uses_the_given_compressor_object(context, compressor):
    class Counting:
        name = "counting"

        def __init__(self) -> None:
            self.calls = 0
            self.cache = None

        def compress(self, texts, options=None, /, **overrides):
            self.calls += 1
            return compressor.compress(texts, options, **overrides)

    counting = Counting()
    _compressor(counting).invoke([HumanMessage(content=context), HumanMessage(content=context)])
    assert counting.calls == 1  # both messages in one call: one shared budget


_PARAGRAPHS = topic_paragraphs.PARAGRAPHS


def test_question_variable_makes_the_variables_question_aware():
    from promptpress.adapters.langchain import PromptCompressorRunnable

    values = {"context": "\n\n".join(_PARAGRAPHS), "question": "Who built famous violins in Cremona?"}
    step = PromptCompressorRunnable(
        rate=0.4, min_tokens=10, variables=["context"], question_variable="question"
    )
    out = step.invoke(values)
    assert out["question"] == values["question"]  # never compressed
    assert "Stradivari built his most famous instruments in Cremona" in out["context"]  # kept nearly whole
    assert "tens of thousands of workers" not in out["context"]  # off-topic paragraphs keep little
    blind = PromptCompressorRunnable(rate=0.4, min_tokens=10, variables=["context"]).invoke(values)
    assert blind["context"] != out["context"]
    with pytest.raises(ValueError, match="never compressed"):
        PromptCompressorRunnable(variables=["context", "question"], question_variable="question").invoke(
            values
        )


def test_embedding_model_chooses_the_relevance_model():
    from promptpress.adapters.langchain import PromptCompressorRunnable
    from promptpress.adapters.shared import shared_compressor
    from promptpress.compressor.query_aware import question_aware

    values = {"context": "\n\n".join(_PARAGRAPHS), "question": "Who built famous violins in Cremona?"}
    step = PromptCompressorRunnable(
        rate=0.4,
        min_tokens=10,
        variables=["context"],
        question_variable="question",
        embedding_model="package:all-mpnet-base-v2",
    )
    mpnet = question_aware(shared_compressor(), "package:all-mpnet-base-v2").embed
    before = mpnet.misses
    out = step.invoke(values)
    assert mpnet.misses > before  # the units and the question went through all-mpnet-base-v2
    assert "Stradivari built his most famous instruments in Cremona" in out["context"]
    assert "tens of thousands of workers" not in out["context"]
    with pytest.raises(ValueError, match="embedding_model"):
        PromptCompressorRunnable(embedding_model=" ")


def test_unmarked_text_of_the_human_message_is_the_question():
    from langchain_core.messages import HumanMessage

    from promptpress.adapters.langchain import PromptCompressorRunnable

    text = "<compress>" + "\n\n".join(_PARAGRAPHS) + "</compress>\n\nHow do bees tell where flowers are?"
    [out] = PromptCompressorRunnable(rate=0.4, min_tokens=10).invoke([HumanMessage(content=text)])
    assert out.content.endswith("How do bees tell where flowers are?")
    assert "waggle dance on the comb" in out.content and "Stradivari built his most famous" not in out.content

"""Finding the question of a proxied request on real prompt shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptpress.compressor.tokens import count_tokens
from promptpress.service.policy import Slot
from promptpress.service.question import (
    Question,
    chat_question,
    explicit_question,
    instructions_start,
    split_question,
    text_question,
    trailing_question,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "longbench"


@pytest.fixture(scope="module")
def article() -> str:
    with (DATA / "multi_news.jsonl").open(encoding="utf-8") as fh:
        text = json.loads(fh.readline())["context"][:4000]
    return text[: text.rindex(". ") + 1]  # ends at a sentence end, as a document does


def test_rag_chat_with_context_in_the_system_message(article):
    messages = [
        {"role": "system", "content": "Answer from these documents:\n\n" + article},
        {"role": "user", "content": "Who was arrested, and when?"},
    ]
    q = chat_question(messages, [(0,)], [messages[0]["content"]])
    assert (q.text, q.source, q.slot) == ("Who was arrested, and when?", "last-user-message", None)


def test_one_message_with_context_and_a_labelled_question(article):
    text = f"Read the news below.\n\n{article}\n\nQuestion: Who was arrested?\nAnswer:"
    q = chat_question([{"role": "user", "content": text}], [(0,)], [text])
    assert q.source == "trailing" and q.slot == 0
    assert q.text == "Question: Who was arrested?\nAnswer:"
    assert text[q.offset :].strip() == q.text and article in text[: q.offset]


def test_instructions_right_before_the_question_are_kept_with_it(article):
    closing = "Now, answer the question based on the above article. Only give me the answer.\n\n"
    text = (
        f"Read the article and answer the question.\n\nArticle: {article}\n\n{closing}Question: Who?\nAnswer:"
    )
    q = text_question(text, 0)
    assert q.text == "Question: Who?\nAnswer:"  # the question alone (what relevance is computed for)
    assert text[q.keep_from :] == closing + "Question: Who?\nAnswer:"  # ... and what goes verbatim
    slots, heads, tails = split_question([Slot((0,), text, count_tokens(text))], q)
    # the opening instruction goes verbatim too; only the article is compressed
    assert heads[0] == "Read the article and answer the question.\n\n"
    assert slots[0].text == text[len(heads[0]) : text.index("\n\nNow,")]
    assert heads[0] + slots[0].text + tails[0] == text
    # no instructions before the question: the verbatim tail is the question
    plain = f"{article}\n\nQuestion: Who?\nAnswer:"
    assert text_question(plain, 0).keep_from == text_question(plain, 0).offset


def test_what_counts_as_instructions_before_the_question(article):
    def start(middle: str) -> str:
        text = f"{article}\n\n{middle}\n\nQuestion: Who?"
        return text[instructions_start(text, text.index("Question:")) :]

    assert start("Only answer with a name.\n\nUse the article.") == (
        "Only answer with a name.\n\nUse the article.\n\nQuestion: Who?"
    )  # several instruction paragraphs
    assert start("The mayor resigned on Monday.") == "Question: Who?"  # context, not an instruction
    assert start("Answer briefly. " + "x" * 400) == "Question: Who?"  # too long to be an instruction
    assert start("Answer. One. Two. Three.") == "Question: Who?"  # too many sentences
    # the first paragraph is never taken: something must be left to compress
    only = "Answer from your knowledge.\n\nQuestion: Who?"
    assert instructions_start(only, only.index("Question:")) == only.index("Question:")


def test_what_counts_as_opening_instructions(article):
    def head(opening: str) -> str:
        text = f"{opening}{article}\n\nQuestion: Who?"
        return text[: text_question(text, 0).head_end]

    assert head("Read the article.\n\nOnly answer with a name.\n\n") == (
        "Read the article.\n\nOnly answer with a name."
    )  # several instruction paragraphs
    assert head("") == ""  # the article's first paragraph is context, not an instruction
    assert head("Answer briefly. " + "x" * 400 + "\n\n") == ""  # too long to be an instruction
    # never the whole text before the question: something must be left to compress
    text = "Answer briefly.\n\nUse the text.\n\nQuestion: Who?"
    q = text_question(text, 0)
    assert q.head_end == 0 or text[q.head_end : q.keep_from].strip()
    slots, heads, tails = split_question([Slot((0,), text, count_tokens(text))], q)
    assert slots[0].text.strip() and heads[0] + slots[0].text + tails[0] == text


def test_one_message_with_a_trailing_question_paragraph_or_sentence(article):
    text = article + "\n\nSummarise these articles in three sentences."
    q = text_question(text, 0)
    assert q.text == "Summarise these articles in three sentences." and q.source == "trailing"
    inline = article.rstrip() + " Which company is named in the report?"
    q = text_question(inline, 0)
    assert q.text == "Which company is named in the report?"


def test_multi_turn_chat_takes_the_last_user_message(article):
    messages = [
        {"role": "user", "content": article},
        {"role": "assistant", "content": "I have read it."},
        {"role": "user", "content": [{"type": "text", "text": "What happened next?"}]},
    ]
    q = chat_question(messages, [(0,)], [article])
    assert q.text == "What happened next?" and q.source == "last-user-message"


def test_no_question_at_all_is_question_blind(article):
    assert text_question(article, 0).source == "none"  # a bare article: its last paragraph asks nothing
    assert chat_question([{"role": "system", "content": article}], [(0,)], [article]).source == "none"
    assert trailing_question("Just one line with no question.") is None


def test_a_question_that_is_the_whole_text_is_not_split():
    text = "What is the capital of France?"
    assert text_question(text, 0).source == "none"  # nothing before it to compress


def test_explicit_question_wins_and_off_disables():
    assert explicit_question("Who?") == Question("Who?", "explicit")
    assert explicit_question(" Where? ").text == "Where?"
    assert explicit_question("off").source == "off"
    assert explicit_question("OFF").text is None
    assert explicit_question("auto") is None  # auto: the rules decide
    assert explicit_question(None) is None

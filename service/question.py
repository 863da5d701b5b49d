"""Which question a proxied request asks, so its long texts can be compressed for that question.

The rule, in order:

1. **Explicit**: the body field ``"promptpress": {"question": "..."}`` or the header
   ``X-Promptpress-Question`` names the question (the body wins). ``"off"`` in either place (or the
   setting ``question_mode = "off"``) turns question-aware compression off for the request.
2. **Auto, different messages**: when the texts to compress are in other messages (RAG context in a
   system, tool or earlier user message) and the last user message is not one of them, the last
   user message is the question.
3. **Auto, one message**: when the last user message (or a completions prompt) is itself long
   enough to be compressed, its trailing question is split off: the text after the last
   ``Question:``-style label, else the last paragraph when it is short, else the last sentence(s)
   ending in ``?``. That tail goes upstream verbatim, with the instructions right before it (the
   paragraphs just above the question that tell the reader how to answer: "Now answer based on the
   article above. Only give the answer."); so do the instructions that open the message ("Read the
   following article and answer the question."); the text between them is compressed.
4. Otherwise there is no question and compression is question-blind.

The question text is never compressed. `Question.source` names the rule that applied; the proxy
reports it in the ``X-Promptpress-Question-Source`` header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from promptpress.compressor.query_aware import PARAGRAPH_BREAK, SENTENCE_END
from promptpress.compressor.tokens import count_tokens

from .policy import Slot

Source = Literal["explicit", "last-user-message", "trailing", "off", "none"]

MAX_TRAILING_CHARS = 1000  # a tail longer than this is not "the question" but more context
MAX_TRAILING_SENTENCES = 3
_LABEL = re.compile(
    r"^[ \t]*(?:#+[ \t]*)?(?:question|query|q|task|instruction)[ \t]*[:：][ \t]*", re.I | re.M
)
# words that open a request to the reader, in a question and in the instructions around it
_DIRECTIVES = (
    r"summari[sz]e|answer|explain|describe|list|write|give|tell|translate|extract|classify|"
    r"compare|find|identify|based on|using|according to|now"
)
_ASKS = re.compile(
    r"^\W*(?:please\s+)?(?:what|who|whom|whose|when|where|why|how|which|is|are|does|do|did|can|could|"
    rf"should|would|{_DIRECTIVES})\b",
    re.I,
)
# a paragraph that tells the reader how to answer (kept verbatim when it comes right before the question)
MAX_INSTRUCTION_CHARS = 400
_INSTRUCTS = re.compile(
    rf"^\W*(?:please\s+)?(?:{_DIRECTIVES}|only|do not|don't|read|use|given|respond|reply)\b", re.I
)


@dataclass(frozen=True)
class Question:
    text: str | None
    source: Source
    # the question is the tail of this slot's text, from this character on (rule 3)
    slot: int | None = None
    offset: int | None = None
    # the tail sent verbatim starts here (<= offset): the question and the instructions right before it
    keep_from: int | None = None
    # the head sent verbatim ends here (0: none): the instructions that open the text
    head_end: int = 0


def trailing_question(text: str) -> int | None:
    """Where the trailing question of `text` starts, or None when it has none."""
    body = text.rstrip()
    labels = list(_LABEL.finditer(body))
    if labels and len(body) - labels[-1].start() <= MAX_TRAILING_CHARS and body[labels[-1].end() :].strip():
        return labels[-1].start()
    breaks = list(PARAGRAPH_BREAK.finditer(body))
    if breaks:
        start = breaks[-1].end()
        tail = body[start:]
        if len(tail) <= MAX_TRAILING_CHARS and len(_sentences(tail)) <= MAX_TRAILING_SENTENCES:
            if "?" in tail or _ASKS.match(tail):
                return start
    sentences = list(SENTENCE_END.finditer(body))
    starts = [0] + [m.end() for m in sentences]
    for k in range(1, MAX_TRAILING_SENTENCES + 1):
        if k >= len(starts):
            break
        start = starts[-k]
        tail = body[start:]
        if len(tail) > MAX_TRAILING_CHARS:
            break
        if "?" in tail:
            return start
    return None


def _sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text.strip()) if s]


def _instructs(paragraph: str) -> bool:
    """Whether a paragraph instructs the reader: at most `MAX_INSTRUCTION_CHARS` characters and
    `MAX_TRAILING_SENTENCES` sentences, starting with an instruction word."""
    return (
        len(paragraph) <= MAX_INSTRUCTION_CHARS
        and len(_sentences(paragraph)) <= MAX_TRAILING_SENTENCES
        and _INSTRUCTS.match(paragraph) is not None
    )


def instructions_start(text: str, offset: int) -> int:
    """Where the instructions directly before the question at `offset` start: the paragraphs right
    above it that instruct the reader (each at most `MAX_INSTRUCTION_CHARS` characters and
    `MAX_TRAILING_SENTENCES` sentences, starting with an instruction word such as "Now", "Answer",
    "Only", "Based on"); `offset` when there are none. The text's first paragraph is never taken:
    what is left before the result is what gets compressed."""
    start = offset
    while True:
        head = text[:start].rstrip()
        breaks = list(PARAGRAPH_BREAK.finditer(head))
        if not breaks:
            return start
        paragraph = head[breaks[-1].end() :]
        if not _instructs(paragraph):
            return start
        start = breaks[-1].end()


def leading_instructions_end(text: str, limit: int) -> int:
    """Where the instructions that open `text` end: its first paragraphs while each instructs the
    reader (the same test as `instructions_start`); 0 when the first does not. Never at or past
    `limit` (where the verbatim tail starts), and the last paragraph before it is never taken: what
    lies between is what gets compressed."""
    end = 0
    for m in PARAGRAPH_BREAK.finditer(text, 0, limit):
        paragraph = text[end : m.start()].strip()
        if not _instructs(paragraph):
            break
        if not text[m.end() : limit].strip():  # nothing would be left to compress
            break
        end = m.start()
    return end


def explicit_question(value: str | None) -> Question | None:
    """Rule 1 on the request's resolved setting (`Policy.question`: the body field over the header over
    the service setting): "off" turns question-aware compression off, "auto" (or nothing) leaves the
    question to the other rules, any other text is the question."""
    text = (value or "").strip()
    if not text or text.lower() == "auto":
        return None
    if text.lower() == "off":
        return Question(None, "off")
    return Question(text, "explicit")


def chat_question(
    messages: Sequence[Any], slot_paths: Sequence[tuple[int, ...]], slot_texts: Sequence[str]
) -> Question:
    """Rules 2 and 3 for a chat request whose compressible texts sit at `slot_paths` ((message,) or
    (message, part))."""
    last_user = _last_user(messages)
    if last_user is None:
        return Question(None, "none")
    in_last = [i for i, path in enumerate(slot_paths) if path[0] == last_user]
    if not in_last:
        text = _message_text(messages[last_user])
        return Question(text, "last-user-message") if text.strip() and slot_paths else Question(None, "none")
    slot = in_last[-1]
    return text_question(slot_texts[slot], slot)


def text_question(text: str, slot: int) -> Question:
    """Rule 3 on one compressible text (a completions prompt, or the last user message)."""
    offset = trailing_question(text)
    if offset is None or offset == 0 or not text[:offset].strip():
        return Question(None, "none")
    keep_from = instructions_start(text, offset)
    head_end = leading_instructions_end(text, keep_from)
    return Question(text[offset:].strip(), "trailing", slot, offset, keep_from, head_end)


def _last_user(messages: Sequence[Any]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if isinstance(message, dict) and message.get("role") == "user":
            return i
    return None


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def split_question(slots: list[Slot], question: Question) -> tuple[list[Slot], list[str], list[str]]:
    """The slots to compress (a trailing question, with the instructions right before it, and the
    instructions opening the text cut off its slot), and what goes back before and after each
    compressed text: those pieces verbatim, with the whitespace around them."""
    heads, tails = [""] * len(slots), [""] * len(slots)
    if question.slot is None or question.offset is None:
        return slots, heads, tails
    slot = slots[question.slot]
    cut = question.offset if question.keep_from is None else question.keep_from
    body = slot.text[:cut].rstrip()
    tails[question.slot] = slot.text[len(body) :]
    middle = body[question.head_end :]
    heads[question.slot] = body[: question.head_end] + middle[: len(middle) - len(middle.lstrip())]
    middle = middle.lstrip()
    slots = list(slots)
    slots[question.slot] = replace(slot, text=middle, tokens=count_tokens(middle))
    return slots, heads, tails

"""Which texts of a prompt get compressed, and putting the compressed texts back.

A prompt is a list of LangChain messages. A text piece is a message's string content or one text
part of a list content; images, tool-use blocks and other parts are never touched. A piece is
compressed when
- its message's role is selected (``roles``, default human messages only), or
- it contains marked spans (``<compress>...</compress>`` by default), in any message: then only the
  marked spans are compressed and the markers are removed.
Tool and function messages are never touched (not even their markers), and neither are an AI
message's tool calls, ids, names or ``additional_kwargs``: only ``content`` is replaced. Pieces or
spans shorter than ``min_tokens`` are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

__all__ = [
    "ROLE_ALIASES",
    "SELECTABLE_ROLES",
    "Piece",
    "find_pieces",
    "normalize_roles",
    "rebuild",
    "role_of",
    "segments_to_compress",
]

SELECTABLE_ROLES = frozenset({"human", "ai", "system", "chat"})
ROLE_ALIASES = {"user": "human", "assistant": "ai", "developer": "system"}
_PROTECTED = frozenset({"tool", "function"})


def normalize_roles(roles: Sequence[str]) -> frozenset[str]:
    """Canonical role names (``user`` -> ``human``); a clear error for roles that cannot be selected."""
    if isinstance(roles, str):
        roles = [roles]
    out = set()
    for role in roles:
        name = ROLE_ALIASES.get(str(role).lower(), str(role).lower())
        if name in _PROTECTED:
            raise ValueError(f"{role} messages are never compressed (tool results and calls stay verbatim)")
        if name not in SELECTABLE_ROLES:
            raise ValueError(f"unknown role {role!r}; choose among human/user, ai/assistant, system, chat")
        out.add(name)
    return frozenset(out)


def role_of(message: BaseMessage) -> str:
    if isinstance(message, (ToolMessage, FunctionMessage)):
        return "tool"
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "human"
    if isinstance(message, AIMessage):
        return "ai"
    if isinstance(message, ChatMessage):
        role = ROLE_ALIASES.get(message.role.lower(), message.role.lower())
        return "tool" if role in _PROTECTED else role
    return "tool"  # unknown message classes are left alone


@dataclass
class Piece:
    """One text of the prompt, cut into literal segments and segments to compress."""

    message: int
    part: int | None  # index in a list content; None for a string content
    segments: list[tuple[str, bool]]  # (text, compress?)


def _split_marked(text: str, markers: tuple[str, str]) -> list[tuple[str, bool]]:
    opener, closer = markers
    segments: list[tuple[str, bool]] = []
    position = 0
    while True:
        start = text.find(opener, position)
        if start < 0:
            segments.append((text[position:], False))
            return [s for s in segments if s[0]]
        end = text.find(closer, start + len(opener))
        if end < 0:
            raise ValueError(f"{opener!r} at character {start} has no closing {closer!r}")
        segments.append((text[position:start], False))
        segments.append((text[start + len(opener) : end], True))
        position = end + len(closer)


def _texts(message: BaseMessage) -> list[tuple[int | None, str]]:
    content = message.content
    if isinstance(content, str):
        return [(None, content)]
    out: list[tuple[int | None, str]] = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            out.append((j, part))
        elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            out.append((j, part["text"]))
    return out


def find_pieces(
    messages: Sequence[BaseMessage],
    roles: frozenset[str],
    markers: tuple[str, str] | None,
    min_tokens: int,
    count: Callable[[str], int],
) -> list[Piece]:
    """The pieces that change: with a segment to compress, or with markers to remove."""
    pieces = []
    for i, message in enumerate(messages):
        role = role_of(message)
        if role == "tool":
            continue
        for j, text in _texts(message):
            if markers is not None and markers[0] in text:
                segments = _split_marked(text, markers)
            elif role in roles:
                segments = [(text, True)]
            else:
                continue
            segments = [(s, flag and bool(s.strip()) and count(s) >= min_tokens) for s, flag in segments]
            if any(flag for _, flag in segments) or len(segments) != 1 or segments[0][0] != text:
                pieces.append(Piece(i, j, segments))
    return pieces


def rebuild(messages: Sequence[BaseMessage], pieces: list[Piece], compressed: list[str]) -> list[BaseMessage]:
    """`messages` with each piece's compress-segments replaced, in order, by `compressed`."""
    it = iter(compressed)
    new_texts: dict[tuple[int, int | None], str] = {}
    for piece in pieces:
        new_texts[(piece.message, piece.part)] = "".join(
            next(it) if flag else s for s, flag in piece.segments
        )
    out = list(messages)
    for i in sorted({m for m, _ in new_texts}):
        message = messages[i]
        if isinstance(message.content, str):
            content: str | list = new_texts[(i, None)]
        else:
            content = list(message.content)
            for j, part in enumerate(content):
                if (i, j) in new_texts:
                    text = new_texts[(i, j)]
                    content[j] = text if isinstance(part, str) else {**part, "text": text}
        out[i] = message.model_copy(update={"content": content})
    return out


def segments_to_compress(pieces: list[Piece]) -> list[str]:
    return [s for piece in pieces for s, flag in piece.segments if flag]

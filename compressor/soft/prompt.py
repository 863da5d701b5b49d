"""Where the context and the question go in the decoder's chat prompt.

The user turn is ``<context>\\n\\n<question>``. `ChatLayout` splits the tokenizer's chat template
around the context so that the context part can be replaced by concept embeddings:

    [prefix tokens] + [context: token or concept embeddings] + [\\n\\n question + assistant header]

`chat_pieces` does the same for a whole chat (what the HTTP service receives). The rule that picks
the text read as concept embeddings:

1. The content of each system and user message is cut into *blocks* at blank lines (a run of
   whitespace holding at least two line breaks; the separators themselves stay tokens).
2. A block of at least ``min_context_tokens`` backend tokens is a *context*: it is segmented and
   compressed on its own (so a RAG chunk sent as its own paragraph hits the segment cache whatever
   surrounds it). Shorter blocks — instructions, the question — stay tokens, in their place.
3. Assistant and tool messages, the chat template's own text and the generation prompt stay tokens.

The result is a list of pieces in prompt order: `str` (read as tokens) and `Context` (read as
concept embeddings). One user message ``context\\n\\nquestion`` gives exactly `ChatLayout`'s prompt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

_SENTINEL = "\u2063PROMPTPRESS_CONTEXT\u2063"
_MARK = "\u2063PROMPTPRESS_CONTEXT_{}\u2063"
_MARK_RE = re.compile("\u2063PROMPTPRESS_CONTEXT_([0-9]+)\u2063")
_BLANK_LINE = re.compile(r"(\s*\n[^\S\n]*\n\s*)")
CONTEXT_ROLES = frozenset({"system", "user"})


@dataclass(frozen=True)
class Context:
    """Prompt text the decoder reads as concept embeddings (a plain `str` piece is read as tokens)."""

    text: str


Piece = str | Context


def split_blocks(text: str) -> list[str]:
    """``[block, separator, block, ..., block]``: `text` cut at blank lines (``"".join`` gives it back)."""
    return _BLANK_LINE.split(text)


def is_context_block(tokenizer: object, block: str, min_context_tokens: int) -> bool:
    """Rule 2 of the module docstring: a block long enough to be read as concept embeddings."""
    ids = tokenizer(block, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    return bool(block.strip()) and len(ids) >= min_context_tokens


def text_pieces(tokenizer: object, text: str, min_context_tokens: int | None) -> list[Piece]:
    """A completion prompt (no chat template around it) as pieces, by the same block rule."""
    parts: list[Piece] = list(split_blocks(text))
    if min_context_tokens is not None:
        for i in range(0, len(parts), 2):
            block = parts[i]
            if isinstance(block, str) and is_context_block(tokenizer, block, min_context_tokens):
                parts[i] = Context(block)
    return [p for p in parts if p]


def chat_pieces(
    tokenizer: object,
    messages: Sequence[Mapping[str, str]],
    min_context_tokens: int | None,
    roles: frozenset[str] = CONTEXT_ROLES,
) -> list[Piece]:
    """The chat prompt (template applied, generation prompt added) as pieces (rule: module docstring).

    `messages` are ``{"role", "content"}`` with text content. ``min_context_tokens=None`` keeps
    everything as tokens. Without a chat template the messages are joined by blank lines and
    followed by ``\\nAnswer:`` (as `ChatLayout`).
    """
    contexts: list[str] = []
    rendered = []
    for message in messages:
        content = message["content"]
        if _SENTINEL[:-1] in content:
            raise ValueError("message text contains promptpress's reserved context marker")
        if min_context_tokens is not None and message["role"] in roles:
            parts = split_blocks(content)
            for i in range(0, len(parts), 2):
                if is_context_block(tokenizer, parts[i], min_context_tokens):
                    contexts.append(parts[i])
                    parts[i] = _MARK.format(len(contexts) - 1)
            content = "".join(parts)
        rendered.append({"role": message["role"], "content": content})
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(rendered, add_generation_prompt=True, tokenize=False)  # type: ignore[attr-defined]
    else:
        text = "\n\n".join(m["content"] for m in rendered) + "\nAnswer:"
    chunks = _MARK_RE.split(text)  # text, index, text, index, ..., text
    used = [int(i) for i in chunks[1::2]]
    if sorted(used) != list(range(len(contexts))):
        raise ValueError("the chat template dropped or repeated message text; cannot place the contexts")
    pieces: list[Piece] = []
    for i, chunk in enumerate(chunks):
        if i % 2:
            pieces.append(Context(contexts[int(chunk)]))
        elif chunk:
            pieces.append(chunk)
    return pieces


@dataclass(frozen=True)
class ChatLayout:
    prefix_ids: tuple[int, ...]
    suffix_text: str  # closes the user turn and opens the assistant turn
    separator: str = "\n\n"

    @classmethod
    def from_tokenizer(cls, tokenizer: object, system: str | None = None) -> ChatLayout:
        """Split the tokenizer's chat template; without a template: plain ``context question\\nAnswer:``."""
        if not getattr(tokenizer, "chat_template", None):
            return cls(prefix_ids=(), suffix_text="\nAnswer:")
        messages = [{"role": "user", "content": _SENTINEL}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)  # type: ignore[attr-defined]
        prefix, _, suffix = text.partition(_SENTINEL)
        ids = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []  # type: ignore[operator]
        return cls(prefix_ids=tuple(ids), suffix_text=suffix)

    def question_ids(self, tokenizer: object, question: str) -> list[int]:
        text = (self.separator + question if question else "") + self.suffix_text
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])  # type: ignore[operator]

    def token_prompt(self, context_ids: Sequence[int], question_ids: Sequence[int]) -> list[int]:
        """The uncompressed prompt: prefix + context tokens + question."""
        return [*self.prefix_ids, *context_ids, *question_ids]

    def embed_prompt(
        self, embed: object, concepts: Sequence[torch.Tensor], question_ids: Sequence[int]
    ) -> torch.Tensor:
        """(T, hidden) inputs: prefix embeddings + concept embeddings + question embeddings.

        `embed` maps token ids to input embeddings (e.g. `ConceptEncoder.embed_tokens`).
        """
        parts = [embed(list(self.prefix_ids))] if self.prefix_ids else []  # type: ignore[operator]
        parts.extend(concepts)
        parts.append(embed(list(question_ids)))  # type: ignore[operator]
        dtype = parts[-1].dtype
        return torch.cat([p.to(dtype) for p in parts])

"""Where the context and the question go in the decoder's chat prompt.

The user turn is ``<context>\\n\\n<question>``. `ChatLayout` splits the tokenizer's chat template
around the context so that the context part can be replaced by concept embeddings:

    [prefix tokens] + [context: token or concept embeddings] + [\\n\\n question + assistant header]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

_SENTINEL = "\u2063PROMPTPRESS_CONTEXT\u2063"


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

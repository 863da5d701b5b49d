"""The soft compressor's training data: examples as token ids, and the teacher's stored states.

`prepare` cuts one QA example to the training budgets (context segments, question with the chat
suffix, answer + EOS); `PreparedSet` does it once per example. `TeacherStore` keeps what the
frozen decoder computes when it reads the full context (its per-layer hidden states at the answer
positions): the teacher never changes during training, so each example's states are computed once
and stored, keyed by everything that determines them (decoder, precision, prompt and answer token
ids), in memory or in a directory (``OUT/teacher-states`` by default, so later epochs and resumed
runs read them instead of recomputing: about 1.4 MB per example in bf16 for the 0.5B decoder).
States are always returned as stored, so a run that reads them and one that computes them train
identically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from ..soft.prompt import ChatLayout
from ..soft.segmenter import segment_text
from .qmsum import QAExample

TEACHER_CACHES = ("disk", "memory", "off")


@dataclass(frozen=True)
class Prepared:
    """One example as token ids: context segments, question (with chat suffix), answer."""

    segments: tuple[tuple[int, ...], ...]
    question_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]

    @property
    def context_ids(self) -> list[int]:
        return [t for seg in self.segments for t in seg]


def prepare(
    example: QAExample,
    tokenizer: object,
    layout: ChatLayout,
    segment_tokens: int,
    max_context_tokens: int,
    max_answer_tokens: int,
) -> Prepared:
    """The example's first segments within `max_context_tokens`, its answer cut to
    `max_answer_tokens` (followed by EOS when it fits)."""
    kept: list[tuple[int, ...]] = []
    total = 0
    for seg in segment_text(example.context, tokenizer, segment_tokens):  # type: ignore[arg-type]
        if total + len(seg.token_ids) > max_context_tokens:
            break
        kept.append(seg.token_ids)
        total += len(seg.token_ids)
    encoded = tokenizer(example.answer, add_special_tokens=False)  # type: ignore[operator]
    answer = list(encoded["input_ids"])[:max_answer_tokens]
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None and len(answer) < max_answer_tokens:
        answer.append(int(eos))
    question = layout.question_ids(tokenizer, example.question)
    return Prepared(tuple(kept), tuple(question), tuple(answer))


class PreparedSet:
    """`examples` prepared on first use (tokenization and segmentation run once per example)."""

    def __init__(
        self,
        examples: Sequence[QAExample],
        tokenizer: object,
        layout: ChatLayout,
        segment_tokens: int,
        max_context_tokens: int,
        max_answer_tokens: int,
    ):
        self.examples = examples
        self._args = (tokenizer, layout, segment_tokens, max_context_tokens, max_answer_tokens)
        self._items: dict[int, Prepared] = {}

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Prepared:
        if index not in self._items:
            self._items[index] = prepare(self.examples[index], *self._args)
        return self._items[index]

    def take(self, indices: Sequence[int]) -> list[Prepared]:
        return [self[i] for i in indices]


def decoder_identity(lm: PreTrainedModel) -> str:
    """A short hash of the decoder's config and a sample of its weights (what the teacher is)."""
    digest = hashlib.sha256(lm.config.to_json_string(use_diff=False).encode())
    for name, tensor in sorted(lm.state_dict().items()):
        if "lora_" in name or tensor.ndim == 0:
            continue
        flat = tensor.detach().reshape(-1)
        digest.update(name.encode())
        digest.update(flat[:: max(1, flat.numel() // 256)].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


class TeacherStore:
    """Teacher states by example, computed once (``mode``: ``disk``, ``memory`` or ``off``)."""

    def __init__(self, mode: str, identity: str, dtype: torch.dtype, directory: Path | None = None):
        if mode not in TEACHER_CACHES:
            raise ValueError(f"unknown teacher cache {mode!r}; use one of {TEACHER_CACHES}")
        if mode == "disk" and directory is None:
            raise ValueError("a disk teacher cache needs a directory")
        self.mode, self.identity, self.dtype = mode, identity, dtype
        self.directory = directory
        self._memory: dict[str, torch.Tensor] = {}
        self.hits = self.misses = 0

    def key(self, item: Prepared, layout: ChatLayout) -> str:
        payload = {
            "decoder": self.identity,
            "dtype": str(self.dtype),
            "prompt": layout.token_prompt(item.context_ids, item.question_ids),
            "answer": list(item.answer_ids),
        }
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:32]

    def get(
        self, item: Prepared, layout: ChatLayout, compute: Callable[[Prepared], torch.Tensor]
    ) -> torch.Tensor:
        """The example's states, (layers, answer tokens, hidden), in the store's dtype."""
        key = self.key(item, layout)
        found = self._load(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        states = compute(item).detach().to(self.dtype).contiguous()
        self._save(key, states)
        return states

    def _load(self, key: str) -> torch.Tensor | None:
        if self.mode == "memory":
            return self._memory.get(key)
        if self.mode == "disk":
            path = self._path(key)
            if path.is_file():
                return load_file(str(path))["states"]
        return None

    def _save(self, key: str, states: torch.Tensor) -> None:
        if self.mode == "memory":
            self._memory[key] = states
        elif self.mode == "disk":
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            save_file({"states": states.cpu()}, str(tmp))
            tmp.replace(path)

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.safetensors"

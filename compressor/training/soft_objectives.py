"""The soft compressor's two training objectives, batched over examples (padded rows).

*Reconstruction* (the dense pre-training stage): the frozen decoder reads one segment's concept
embeddings in the chat layout used at inference, followed by the instruction `RECONSTRUCT_PROMPT`,
and must regenerate the segment's tokens: every token is a target (cross-entropy), and a segment's
row is short (the encoder reads ~30 positions, the decoder prefix + ~10 concepts + instruction +
~20 tokens).

*Distillation* (the answer stage, as in CompLLM): the teacher is the frozen decoder reading
``prefix + context tokens + question + answer``; the student is the same frozen decoder reading
``prefix + concept embeddings + question + answer``. The loss compares their hidden states at the
positions that predict the answer tokens, every layer, each layer scaled by the teacher's standard
deviation (smooth L1). The teacher's states come from a `TeacherStore` (computed once per example).

Only the encoder's small weights (LoRA, queries, projection) get gradients. Every row starts with
the same chat prefix, which `Reader` computes once. Callers run these under `Runtime.autocast`;
losses are computed in fp32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from transformers import DynamicCache

from ..soft.model import ConceptEncoder
from ..soft.prompt import ChatLayout
from .soft_data import Prepared, TeacherStore

RECONSTRUCT_PROMPT = "Repeat the text above word for word."


class Reader:
    """The frozen decoder (adapters off) reading rows that all start with the layout's chat prefix.

    The prefix does not depend on anything trained, so its keys and values are computed once per
    autocast state (no gradient) and every batch continues from them: the decoder runs only the
    positions after the prefix (24 of ~65 positions of a reconstruction row with Qwen's prefix).
    """

    def __init__(self, encoder: ConceptEncoder, layout: ChatLayout, reuse_prefix: bool = True):
        self.encoder = encoder
        self.layout = layout
        self.reuse_prefix = reuse_prefix  # False: every row reads the prefix again (the old way)
        self._prefix: dict[bool, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def embed(self, ids: Sequence[int]) -> torch.Tensor:
        return self.encoder.embed_tokens(list(ids))

    def _prefix_cache(self, trunk: torch.nn.Module, batch: int) -> DynamicCache | None:
        if not self.layout.prefix_ids or not self.reuse_prefix:
            return None
        autocast = torch.is_autocast_enabled(self.encoder.embedding_table.device.type)
        if autocast not in self._prefix:
            with torch.no_grad():
                out = trunk(inputs_embeds=self.embed(self.layout.prefix_ids)[None], use_cache=True)
            self._prefix[autocast] = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        expanded = [
            (k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in self._prefix[autocast]
        ]
        return DynamicCache(expanded)

    def final_states(
        self, rows: Sequence[torch.Tensor], counts: Sequence[int], all_layers: bool
    ) -> list[torch.Tensor]:
        """Hidden states at the positions predicting each row's last `counts[i]` inputs.

        `rows` are what follows the prefix, right-padded into one batch. Per row:
        ``(layers, n, hidden)`` when `all_layers` (every layer after the embeddings), else
        ``(n, hidden)`` (the last layer).
        """
        if not self.reuse_prefix and self.layout.prefix_ids:
            prefix = self.embed(self.layout.prefix_ids)
            rows = [torch.cat([prefix, row.to(prefix.dtype)]) for row in rows]
        inputs = pad_sequence(list(rows), batch_first=True)
        batch, length = inputs.shape[:2]
        start = len(self.layout.prefix_ids) if self.reuse_prefix else 0
        mask = torch.zeros(batch, start + length, dtype=torch.long, device=inputs.device)
        mask[:, :start] = 1
        for b, row in enumerate(rows):
            mask[b, start : start + row.shape[0]] = 1
        with self.encoder.reader() as lm:
            trunk = lm.base_model
            out = trunk(
                inputs_embeds=inputs,
                attention_mask=mask,
                cache=self._prefix_cache(trunk, batch),
                use_cache=False,
                output_hidden_states=all_layers,
            )
        picked = []
        for b, (row, n) in enumerate(zip(rows, counts, strict=True)):
            end = row.shape[0] - 1
            if all_layers:
                picked.append(torch.stack([h[b, end - n : end] for h in out.hidden_states[1:]]))
            else:
                picked.append(out.last_hidden_state[b, end - n : end])
        return picked

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """fp32 next-token logits of last-layer states."""
        head = self.encoder.causal_lm.get_output_embeddings()
        return head(states.to(self.encoder.embedding_table.dtype)).float()


def layer_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over layers of smooth L1 between (layers, n, hidden) states scaled by the teacher's std."""
    t = teacher.float()
    scale = t.flatten(1).std(dim=1).clamp_min(1e-6)[:, None, None]
    return F.smooth_l1_loss(student.float() / scale, t / scale)


@torch.no_grad()
def teacher_states(reader: Reader, item: Prepared) -> torch.Tensor:
    """The frozen decoder reading the full context: (layers, answer tokens, hidden), one example."""
    row = reader.embed([*item.context_ids, *item.question_ids, *item.answer_ids])
    return reader.final_states([row], [len(item.answer_ids)], True)[0]


def stored_teacher(reader: Reader, item: Prepared, store: TeacherStore) -> torch.Tensor:
    """The example's teacher states from `store` (computed there on first use), on the encoder's device."""
    states = store.get(item, reader.layout, lambda it: teacher_states(reader, it))
    return states.to(reader.encoder.embedding_table.device)


def concepts_of(encoder: ConceptEncoder, items: Sequence[Prepared]) -> list[list[torch.Tensor]]:
    """Each example's list of per-segment concept embeddings (all segments encoded together)."""
    segments = [seg for item in items for seg in item.segments]
    flat = encoder.encode(segments) if segments else []
    out, start = [], 0
    for item in items:
        out.append(flat[start : start + len(item.segments)])
        start += len(item.segments)
    return out


def student_states(
    reader: Reader, items: Sequence[Prepared], concepts: Sequence[Sequence[torch.Tensor]]
) -> list[torch.Tensor]:
    """The frozen decoder reading `concepts` in place of each context: (layers, answer, hidden)."""
    rows = []
    for read, item in zip(concepts, items, strict=True):
        tail = reader.embed([*item.question_ids, *item.answer_ids])
        rows.append(torch.cat([*(c.to(tail.dtype) for c in read), tail]))
    return reader.final_states(rows, [len(i.answer_ids) for i in items], True)


def distill_loss(
    reader: Reader,
    items: Sequence[Prepared],
    store: TeacherStore,
    concepts: Sequence[Sequence[torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Mean over `items` of the layer-scaled hidden-state loss against the stored teacher."""
    teachers = [stored_teacher(reader, item, store) for item in items]
    read = concepts if concepts is not None else concepts_of(reader.encoder, items)
    students = student_states(reader, items, read)
    return torch.stack([layer_loss(s, t) for s, t in zip(students, teachers, strict=True)]).mean()


def segment_nll(
    reader: Reader,
    prompt_ids: Sequence[int],
    segments: Sequence[Sequence[int]],
    reads: Sequence[torch.Tensor | None],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL and argmax hits of the frozen decoder regenerating each segment from what it
    reads (`reads[i]`, None: nothing) followed by the instruction `prompt_ids`."""
    rows = []
    for seg, read in zip(segments, reads, strict=True):
        tail = reader.embed([*prompt_ids, *seg])
        rows.append(tail if read is None else torch.cat([read.to(tail.dtype), tail]))
    logits = reader.logits(torch.cat(reader.final_states(rows, [len(s) for s in segments], False)))
    target = torch.tensor([t for seg in segments for t in seg], device=logits.device)
    nll = F.cross_entropy(logits, target, reduction="none")
    return nll, (logits.argmax(-1) == target).float()


def reconstruct_loss(
    reader: Reader,
    prompt_ids: Sequence[int],
    items: Sequence[Prepared],
    concepts: Sequence[Sequence[torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, float]:
    """Mean token NLL of regenerating every segment of `items` from its concept embeddings,
    and the token accuracy (teacher forcing, argmax)."""
    segments = [seg for item in items for seg in item.segments]
    if not segments:
        raise ValueError("reconstruction needs examples with at least one context segment")
    if concepts is None:
        reads = reader.encoder.encode(segments)
    else:
        reads = [c for per_item in concepts for c in per_item]
    nll, hits = segment_nll(reader, prompt_ids, segments, reads)
    return nll.mean(), hits.mean().item()


def step_loss(
    reader: Reader,
    prompt_ids: Sequence[int],
    items: Sequence[Prepared],
    store: TeacherStore,
    stage: str,
    reconstruct_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss one training micro-batch minimises, and its parts for the log.

    ``reconstruct``: segment reconstruction. ``distill``: answer distillation, plus
    `reconstruct_weight` x reconstruction of the same examples' segments when it is > 0 (the
    concept embeddings are computed once for both), which keeps the segment content that the
    reconstruction stage put into them.
    """
    if stage == "reconstruct":
        loss, acc = reconstruct_loss(reader, prompt_ids, items)
        return loss, {"reconstruct": loss.item(), "acc": acc}
    concepts = concepts_of(reader.encoder, items)
    loss = distill_loss(reader, items, store, concepts)
    parts = {"distill": loss.item()}
    if reconstruct_weight > 0 and any(item.segments for item in items):
        recon, acc = reconstruct_loss(reader, prompt_ids, items, concepts)
        loss = loss + reconstruct_weight * recon
        parts.update(reconstruct=recon.item(), acc=acc)
    return loss, parts

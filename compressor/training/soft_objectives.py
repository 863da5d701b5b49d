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

Only the encoder's small weights (LoRA, queries, projection) get gradients. Callers run these
under `Runtime.autocast`; losses are computed in fp32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from ..soft.model import ConceptEncoder
from ..soft.prompt import ChatLayout
from .soft_data import Prepared, TeacherStore

RECONSTRUCT_PROMPT = "Repeat the text above word for word."


def final_states(
    trunk: torch.nn.Module, rows: Sequence[torch.Tensor], counts: Sequence[int], all_layers: bool
) -> list[torch.Tensor]:
    """Hidden states at the positions predicting each row's last `counts[i]` inputs.

    Rows are right-padded into one batch. Per row: ``(layers, n, hidden)`` when `all_layers`
    (every layer after the embeddings), else ``(n, hidden)`` (the last layer).
    """
    inputs = pad_sequence(list(rows), batch_first=True)
    mask = torch.zeros(inputs.shape[:2], dtype=torch.long, device=inputs.device)
    for b, row in enumerate(rows):
        mask[b, : row.shape[0]] = 1
    out = trunk(inputs_embeds=inputs, attention_mask=mask, output_hidden_states=all_layers)
    picked = []
    for b, (row, n) in enumerate(zip(rows, counts, strict=True)):
        end = row.shape[0] - 1
        if all_layers:
            picked.append(torch.stack([h[b, end - n : end] for h in out.hidden_states[1:]]))
        else:
            picked.append(out.last_hidden_state[b, end - n : end])
    return picked


def layer_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over layers of smooth L1 between (layers, n, hidden) states scaled by the teacher's std."""
    t = teacher.float()
    scale = t.flatten(1).std(dim=1).clamp_min(1e-6)[:, None, None]
    return F.smooth_l1_loss(student.float() / scale, t / scale)


def _answer_row(
    encoder: ConceptEncoder, layout: ChatLayout, concepts: Sequence[torch.Tensor], item: Prepared
) -> torch.Tensor:
    embed = encoder.embed_tokens
    return torch.cat([layout.embed_prompt(embed, concepts, item.question_ids), embed(item.answer_ids)])


@torch.no_grad()
def teacher_states(encoder: ConceptEncoder, layout: ChatLayout, item: Prepared) -> torch.Tensor:
    """The frozen decoder reading the full context: (layers, answer tokens, hidden), one example."""
    ids = layout.token_prompt(item.context_ids, item.question_ids) + list(item.answer_ids)
    with encoder.reader() as lm:
        return final_states(lm.base_model, [encoder.embed_tokens(ids)], [len(item.answer_ids)], True)[0]


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
    encoder: ConceptEncoder,
    layout: ChatLayout,
    items: Sequence[Prepared],
    concepts: Sequence[Sequence[torch.Tensor]],
) -> list[torch.Tensor]:
    """The frozen decoder reading `concepts` in place of each context: (layers, answer, hidden)."""
    rows = [_answer_row(encoder, layout, c, item) for c, item in zip(concepts, items, strict=True)]
    with encoder.reader() as lm:
        return final_states(lm.base_model, rows, [len(i.answer_ids) for i in items], True)


def distill_loss(
    encoder: ConceptEncoder, layout: ChatLayout, items: Sequence[Prepared], store: TeacherStore
) -> torch.Tensor:
    """Mean over `items` of the layer-scaled hidden-state loss against the stored teacher."""
    teachers = [stored_teacher(encoder, layout, item, store) for item in items]
    students = student_states(encoder, layout, items, concepts_of(encoder, items))
    return torch.stack([layer_loss(s, t) for s, t in zip(students, teachers, strict=True)]).mean()


def stored_teacher(
    encoder: ConceptEncoder, layout: ChatLayout, item: Prepared, store: TeacherStore
) -> torch.Tensor:
    """The example's teacher states from `store` (computed there on first use), on the encoder's device."""
    device = encoder.embedding_table.device
    return store.get(item, layout, lambda it: teacher_states(encoder, layout, it)).to(device)


def reconstruct_rows(
    encoder: ConceptEncoder,
    layout: ChatLayout,
    prompt_ids: Sequence[int],
    segments: Sequence[Sequence[int]],
    reads: Sequence[torch.Tensor | None],
) -> list[torch.Tensor]:
    """One row per segment: prefix + what the decoder reads + instruction + the segment's tokens."""
    embed = encoder.embed_tokens
    rows = []
    for seg, read in zip(segments, reads, strict=True):
        prompt = layout.embed_prompt(embed, [] if read is None else [read], prompt_ids)
        rows.append(torch.cat([prompt, embed(seg).to(prompt.dtype)]))
    return rows


def segment_nll(
    encoder: ConceptEncoder,
    layout: ChatLayout,
    prompt_ids: Sequence[int],
    segments: Sequence[Sequence[int]],
    reads: Sequence[torch.Tensor | None],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL and argmax hits of the frozen decoder regenerating each segment from `reads`."""
    rows = reconstruct_rows(encoder, layout, prompt_ids, segments, reads)
    with encoder.reader() as lm:
        states = final_states(lm.base_model, rows, [len(s) for s in segments], False)
        logits = lm.get_output_embeddings()(torch.cat(states)).float()
    target = torch.tensor([t for seg in segments for t in seg], device=logits.device)
    nll = F.cross_entropy(logits, target, reduction="none")
    return nll, (logits.argmax(-1) == target).float()


def reconstruct_loss(
    encoder: ConceptEncoder, layout: ChatLayout, prompt_ids: Sequence[int], items: Sequence[Prepared]
) -> tuple[torch.Tensor, float]:
    """Mean token NLL of regenerating every segment of `items` from its concept embeddings,
    and the token accuracy (teacher forcing, argmax)."""
    segments = [seg for item in items for seg in item.segments]
    if not segments:
        raise ValueError("reconstruction needs examples with at least one context segment")
    nll, hits = segment_nll(encoder, layout, prompt_ids, segments, encoder.encode(segments))
    return nll.mean(), hits.mean().item()

"""Held-out evaluation of the soft compressor during training.

Two families of figures, each next to its floor (the decoder reading no context) so that a number
says whether the concept embeddings carry anything:

- answers (the distillation objective): ``loss`` (distillation loss) and ``nll_student`` (answer
  NLL in nats/token, frozen decoder reading the concept embeddings), against ``nll_teacher``
  (reading every context token) and ``nll_no_context`` / ``loss_no_context`` (question only);
- reconstruction: ``recon_nll`` and ``recon_acc`` (token NLL and teacher-forced argmax accuracy of
  regenerating held-out segments from their concept embeddings), against ``recon_*_no_context``
  (the instruction alone) and ``recon_*_tokens`` (reading the segment's own tokens: the ceiling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .soft_data import Prepared, TeacherStore
from .soft_objectives import Reader, concepts_of, layer_loss, segment_nll, stored_teacher, student_states
from .soft_runtime import Runtime


def _nll(reader: Reader, states: torch.Tensor, answer: Sequence[int]) -> float:
    logits = reader.logits(states[-1])
    return F.cross_entropy(logits, torch.tensor(list(answer), device=logits.device)).item()


def answer_metrics(
    reader: Reader, items: Sequence[Prepared], store: TeacherStore, batch_size: int
) -> dict[str, float]:
    """Distillation loss and answer NLLs (student, teacher, no context), means over `items`."""
    totals: dict[str, float] = {}
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        students = student_states(reader, batch, concepts_of(reader.encoder, batch))
        bare = student_states(reader, batch, [[] for _ in batch])
        for item, student, floor in zip(batch, students, bare, strict=True):
            teacher = stored_teacher(reader, item, store)
            stats = {
                "loss": layer_loss(student, teacher).item(),
                "loss_no_context": layer_loss(floor, teacher).item(),
                "nll_student": _nll(reader, student, item.answer_ids),
                "nll_teacher": _nll(reader, teacher, item.answer_ids),
                "nll_no_context": _nll(reader, floor, item.answer_ids),
            }
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + value / len(items)
    return totals


def reconstruct_metrics(
    reader: Reader, prompt_ids: Sequence[int], segments: Sequence[Sequence[int]], batch_size: int
) -> dict[str, float]:
    """Token NLL and accuracy of regenerating `segments`: from concepts, from nothing, from tokens."""
    sums = {name: [0.0, 0.0] for name in ("", "_no_context", "_tokens")}
    for start in range(0, len(segments), batch_size):
        batch = segments[start : start + batch_size]
        reads: dict[str, Sequence[torch.Tensor | None]] = {
            "": reader.encoder.encode(batch),
            "_no_context": [None] * len(batch),
            "_tokens": [reader.embed(seg) for seg in batch],
        }
        for name, read in reads.items():
            nll, hits = segment_nll(reader, prompt_ids, batch, read)
            sums[name][0] += nll.sum().item()
            sums[name][1] += hits.sum().item()
    n = max(1, sum(len(s) for s in segments))
    out: dict[str, float] = {}
    for name, (nll_sum, hit_sum) in sums.items():
        out[f"recon_nll{name}"] = nll_sum / n
        out[f"recon_acc{name}"] = hit_sum / n
    return out


@torch.no_grad()
def evaluate(
    reader: Reader,
    prompt_ids: Sequence[int],
    items: Sequence[Prepared],
    store: TeacherStore,
    runtime: Runtime,
    max_segments: int = 64,
    batch_size: int = 4,
) -> dict[str, float]:
    """Answer and reconstruction figures on held-out `items` (their first `max_segments` segments)."""
    encoder = reader.encoder
    was_training = encoder.training
    encoder.eval()
    segments = [seg for item in items for seg in item.segments][:max_segments]
    with runtime.autocast():
        metrics = answer_metrics(reader, items, store, batch_size)
        if segments:
            metrics.update(reconstruct_metrics(reader, prompt_ids, segments, 8 * batch_size))
    encoder.train(was_training)
    return metrics

"""What bf16 autocast changes in soft-compressor training, against fp32, on the same examples.

    python benchmarks/check_soft_bf16.py --examples 6

With the shipped weights (or --weights) on held-out QMSum examples, everything is computed twice,
fp32 and under bfloat16 autocast:
- the teacher's stored states (relative error per layer, in units of the layer's std);
- the decisions: the argmax next token at every answer position (teacher forcing) of the teacher,
  the student (reading concept embeddings) and the no-context reader, and at every segment token
  of the reconstruction; the share that bf16 leaves unchanged;
- the figures train-soft reports (distillation loss, answer NLLs, reconstruction NLL/accuracy);
- the gradient of the distillation and reconstruction losses (cosine similarity, norm ratio).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from promptpress.compressor.soft.decoder import load_decoder
from promptpress.compressor.soft.engine import SHIPPED_WEIGHTS
from promptpress.compressor.soft.model import ConceptEncoder
from promptpress.compressor.soft.prompt import ChatLayout
from promptpress.compressor.training.qmsum import qmsum_examples
from promptpress.compressor.training.soft_data import Prepared, TeacherStore, decoder_identity, prepare
from promptpress.compressor.training.soft_eval import evaluate
from promptpress.compressor.training.soft_objectives import (
    RECONSTRUCT_PROMPT,
    Reader,
    concepts_of,
    distill_loss,
    reconstruct_loss,
    student_states,
    teacher_states,
)
from promptpress.compressor.training.soft_runtime import Runtime


def argmax_tokens(reader: Reader, states: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([reader.logits(s[-1] if s.ndim == 3 else s).argmax(-1) for s in states])


@torch.no_grad()
def decisions(reader: Reader, items: list[Prepared], prompt: list[int]) -> dict[str, torch.Tensor]:
    """Teacher-forced argmax tokens of each reader (under the caller's autocast)."""
    teachers = [teacher_states(reader, item) for item in items]
    students = student_states(reader, items, concepts_of(reader.encoder, items))
    bare = student_states(reader, items, [[] for _ in items])
    segments = [seg for item in items for seg in item.segments][:32]
    rows = [
        torch.cat([c, reader.embed([*prompt, *seg])])
        for c, seg in zip(reader.encoder.encode(segments), segments)
    ]
    recon = reader.final_states(rows, [len(s) for s in segments], False)
    return {
        "teacher": argmax_tokens(reader, teachers),
        "student": argmax_tokens(reader, students),
        "no_context": argmax_tokens(reader, bare),
        "reconstruction": argmax_tokens(reader, recon),
    }


def gradient(encoder: ConceptEncoder, loss_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    encoder.zero_grad(set_to_none=True)
    loss_fn().backward()
    return torch.cat(
        [p.grad.flatten() for p in encoder.parameters() if p.requires_grad and p.grad is not None]
    )


@dataclass
class PrecisionRun:
    decisions: dict[str, torch.Tensor]
    teacher: list[torch.Tensor]
    gradients: dict[str, torch.Tensor]
    figures: dict[str, float]


def run_in(precision: str, reader: Reader, items: list[Prepared], prompt: list[int]) -> PrecisionRun:
    runtime = Runtime.create("cpu", precision)
    store = TeacherStore("memory", decoder_identity(reader.encoder.causal_lm), runtime.compute_dtype)
    with runtime.autocast():
        result = PrecisionRun(
            decisions(reader, items, prompt),
            [teacher_states(reader, item).float() for item in items],
            {
                "distill": gradient(reader.encoder, lambda: distill_loss(reader, items[:2], store)),
                "reconstruct": gradient(
                    reader.encoder, lambda: reconstruct_loss(reader, prompt, items[:2])[0]
                ),
            },
            {},
        )
    result.figures = evaluate(reader, prompt, items, store, runtime, 64, 2)
    return result


def compare(fp32: PrecisionRun, bf16: PrecisionRun) -> dict[str, object]:
    errors = [(b - a).abs().mean(dim=(1, 2)) / a.std(dim=(1, 2)) for a, b in zip(fp32.teacher, bf16.teacher)]
    per_layer = torch.stack(errors).mean(0)
    return {
        "decisions_unchanged": {
            k: (fp32.decisions[k] == bf16.decisions[k]).float().mean().item() for k in fp32.decisions
        },
        "decisions_counted": {k: int(v.numel()) for k, v in fp32.decisions.items()},
        "teacher_state_error_in_std": {"mean": per_layer.mean().item(), "max_layer": per_layer.max().item()},
        "gradients": {
            k: {
                "cosine": F.cosine_similarity(fp32.gradients[k], bf16.gradients[k], dim=0).item(),
                "norm_ratio": (bf16.gradients[k].norm() / fp32.gradients[k].norm()).item(),
            }
            for k in fp32.gradients
        },
        "figures_fp32": fp32.figures,
        "figures_bf16": bf16.figures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="../shared/data/qmsum-train")
    parser.add_argument("--weights", default=str(SHIPPED_WEIGHTS))
    parser.add_argument("--examples", type=int, default=6)
    parser.add_argument("--max-context-tokens", type=int, default=192)
    args = parser.parse_args(argv)
    model, tokenizer = load_decoder()
    encoder = ConceptEncoder.load(args.weights, model)
    layout = ChatLayout.from_tokenizer(tokenizer)
    reader = Reader(encoder, layout)
    prompt = layout.question_ids(tokenizer, RECONSTRUCT_PROMPT)
    examples = qmsum_examples(args.data, "heldout")[: args.examples]
    items = [prepare(e, tokenizer, layout, 20, args.max_context_tokens, 32) for e in examples]
    result = compare(run_in("fp32", reader, items, prompt), run_in("bf16", reader, items, prompt))
    print(json.dumps({"examples": len(items), **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

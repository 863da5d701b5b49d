"""``promptpress train-soft``: train the soft compressor on QMSum (or any QMSum-format folder)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from promptpress.compressor.extras import require

from .args import CLIError, positive_int

if TYPE_CHECKING:
    from promptpress.compressor.training.soft_train import TrainConfig

DEFAULT_DATA = "../shared/data/qmsum-train"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train-soft",
        help="train the CompLLM-style soft compressor (LoRA + projection)",
        description=(
            "Train the soft compressor in two stages: segment reconstruction (the frozen decoder "
            "regenerates each segment from its concept embeddings; --reconstruct-steps), then answer "
            "distillation (the frozen decoder reading concept embeddings learns to match its own hidden "
            "states when reading the full context; QMSum queries over meetings). Resumes from OUT if a "
            "checkpoint is there; the trained weights land in OUT/final. Prints examples/s and an ETA."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", default=DEFAULT_DATA, help="folder of QMSum meeting JSON files")
    p.add_argument("--out", required=True, help="output folder (checkpoints, train.log, final weights)")
    _model_args(p)
    _schedule_args(p)
    _runtime_args(p)
    p.set_defaults(handler=run_train_soft)
    return p


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--decoder", default=None, help="decoder spec (default: packaged Qwen2.5-Coder-0.5B GGUF)")
    p.add_argument("--segment-tokens", type=positive_int, default=20, help="S: max tokens per segment")
    p.add_argument("--rate", type=positive_int, default=2, help="C: tokens per concept embedding")
    p.add_argument("--lora-r", type=positive_int, default=8, help="LoRA rank (alpha = 2 x rank)")
    p.add_argument(
        "--concept-norm",
        action="store_true",
        help="rescale every concept embedding to the RMS of the decoder's token embeddings",
    )
    p.add_argument(
        "--merge-tokens",
        action="store_true",
        help="start every concept embedding from the mean of its C token embeddings (the projection, "
        "zero at init, adds to it)",
    )
    p.add_argument("--max-context-tokens", type=positive_int, default=384, help="context tokens per example")
    p.add_argument(
        "--min-context-tokens",
        type=int,
        default=0,
        help="leave out examples (training and held-out) whose context, cut to --max-context-tokens, "
        "is shorter: long-context training",
    )
    p.add_argument("--max-answer-tokens", type=positive_int, default=48, help="answer tokens per example")


def _schedule_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=positive_int, default=200, help="optimizer steps, both stages")
    p.add_argument(
        "--reconstruct-steps",
        type=int,
        default=0,
        help="the first N steps train segment reconstruction, the rest answer distillation",
    )
    p.add_argument(
        "--reconstruct-weight",
        type=float,
        default=0.0,
        help="distillation steps also minimise this x the reconstruction loss of the same examples",
    )
    p.add_argument("--batch-size", type=positive_int, default=4, help="examples per micro-batch")
    p.add_argument(
        "--grad-accum", type=positive_int, default=1, help="micro-batches per step (gradient accumulation)"
    )
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate")
    p.add_argument("--warmup-steps", type=int, default=10, help="linear warm-up at the start of each stage")
    p.add_argument(
        "--decay-steps",
        type=int,
        default=0,
        help="the last N steps decay the learning rate linearly towards 0 (warm-up, stable, decay); "
        "0: constant after warm-up. A run resumed with a larger --steps moves the decay with it",
    )
    p.add_argument("--eval-every", type=positive_int, default=25, help="held-out evaluation every N steps")
    p.add_argument("--eval-examples", type=int, default=16, help="held-out examples (answer figures)")
    p.add_argument("--eval-segments", type=int, default=64, help="held-out segments (reconstruction figures)")
    p.add_argument("--save-every", type=positive_int, default=10, help="checkpoint every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--init-from",
        default=None,
        help="start from saved weights (a run's OUT/step-N or OUT/final, or the shipped "
        "compressor/models/soft) instead of a calibrated untrained encoder; the model options must match",
    )


def _runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="bf16: forward passes under bfloat16 autocast (weights and losses stay fp32); auto: bf16 where "
        "it is native (a CUDA device with bf16, a CPU with AVX-512 BF16 or AMX), else fp32",
    )
    p.add_argument(
        "--teacher-cache",
        choices=("disk", "memory", "off"),
        default="disk",
        help="store the teacher's hidden states per example (disk: OUT/teacher-states) instead of "
        "recomputing them every epoch",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0: torch's default, all cores). More than one pays only on cores nothing "
        "else uses; OMP_WAIT_POLICY is PASSIVE unless set, so that waiting threads sleep instead of spinning",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar: one line per step on stderr")


def run_train_soft(args: argparse.Namespace) -> int:
    require("promptpress train-soft", "train", "soft")
    # read by OpenMP when torch loads: threads that spin while waiting for a core another process
    # holds made a two-thread step 5-9x slower than one thread on a busy machine (docs/soft.md)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from promptpress.compressor.assets import DEFAULT_DECODER
    from promptpress.compressor.soft.decoder import load_decoder
    from promptpress.compressor.soft.model import ConceptEncoder, SoftConfig
    from promptpress.compressor.training.qmsum import qmsum_examples
    from promptpress.compressor.training.soft_train import SoftTrainer

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.is_dir():
        raise CLIError(f"train-soft: data folder {data} does not exist (QMSum meeting JSON files expected)")
    decoder_spec = args.decoder or DEFAULT_DECODER
    soft_config = SoftConfig(
        segment_tokens=args.segment_tokens,
        rate=args.rate,
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        concept_norm=args.concept_norm,
        merge_tokens=args.merge_tokens,
        decoder=decoder_spec,
        extra={
            "data": "QMSum train (specific queries, relevant spans)",
            "steps": str(args.steps),
            "reconstruct_steps": str(args.reconstruct_steps),
            "reconstruct_weight": str(args.reconstruct_weight),
            **({"init_from": str(args.init_from)} if args.init_from else {}),
        },
    )
    torch.manual_seed(args.seed)
    try:
        config = train_config(args)
        model, tokenizer = load_decoder(decoder_spec)
        trainer = SoftTrainer(
            ConceptEncoder(model, soft_config),
            tokenizer,
            qmsum_examples(data, "train"),
            qmsum_examples(data, "heldout"),
            config,
        )
        metrics = trainer.run(progress=not args.no_progress)
    except ValueError as exc:
        raise CLIError(f"train-soft: {exc}") from None
    print(json.dumps({"out": str(Path(args.out) / "final"), **metrics}, indent=2))
    return 0


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The `TrainConfig` the parsed options ask for."""
    from promptpress.compressor.training.soft_train import TrainConfig

    return TrainConfig(
        out_dir=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        reconstruct_steps=args.reconstruct_steps,
        reconstruct_weight=args.reconstruct_weight,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        decay_steps=args.decay_steps,
        max_context_tokens=args.max_context_tokens,
        min_context_tokens=args.min_context_tokens,
        max_answer_tokens=args.max_answer_tokens,
        eval_every=args.eval_every,
        eval_examples=args.eval_examples,
        eval_segments=args.eval_segments,
        save_every=args.save_every,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        teacher_cache=args.teacher_cache,
        init_from=args.init_from,
    )

"""``promptpress train-soft``: distil the soft compressor on QMSum (or any QMSum-format folder)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from promptpress.compressor.extras import require

DEFAULT_DATA = "../shared/data/qmsum-train"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train-soft",
        help="train the CompLLM-style soft compressor (LoRA + projection) by distillation",
        description=(
            "Distil the soft compressor: the frozen decoder reading concept embeddings learns to match "
            "its own hidden states when reading the full context (QMSum queries over meetings). "
            "Resumes from OUT if a checkpoint is there; the trained weights land in OUT/final."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", default=DEFAULT_DATA, help="folder of QMSum meeting JSON files")
    p.add_argument("--out", required=True, help="output folder (checkpoints, train.log, final weights)")
    p.add_argument("--decoder", default=None, help="decoder spec (default: packaged Qwen2.5-Coder-0.5B GGUF)")
    p.add_argument("--segment-tokens", type=int, default=20, help="S: max tokens per segment")
    p.add_argument("--rate", type=int, default=2, help="C: tokens per concept embedding")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--max-context-tokens", type=int, default=384)
    p.add_argument("--max-answer-tokens", type=int, default=48)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--eval-examples", type=int, default=16)
    p.add_argument("--save-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_train_soft)
    return p


def run_train_soft(args: argparse.Namespace) -> int:
    require("promptpress train-soft", "train", "soft")
    import torch

    from promptpress.compressor.assets import DEFAULT_DECODER
    from promptpress.compressor.soft.decoder import load_decoder
    from promptpress.compressor.soft.model import ConceptEncoder, SoftConfig
    from promptpress.compressor.training.qmsum import qmsum_examples
    from promptpress.compressor.training.soft_train import TrainConfig, train

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"train-soft: data folder {data} does not exist (QMSum meeting JSON files expected)")
    decoder_spec = args.decoder or DEFAULT_DECODER
    soft_config = SoftConfig(
        segment_tokens=args.segment_tokens,
        rate=args.rate,
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        decoder=decoder_spec,
        extra={"data": "QMSum train (specific queries, relevant spans)", "steps": str(args.steps)},
    )
    config = TrainConfig(
        out_dir=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        max_context_tokens=args.max_context_tokens,
        max_answer_tokens=args.max_answer_tokens,
        eval_every=args.eval_every,
        eval_examples=args.eval_examples,
        save_every=args.save_every,
        seed=args.seed,
    )
    torch.manual_seed(args.seed)
    model, tokenizer = load_decoder(decoder_spec)
    encoder = ConceptEncoder(model, soft_config)
    metrics = train(
        encoder,
        tokenizer,
        qmsum_examples(data, "train"),
        qmsum_examples(data, "heldout"),
        config,
        progress=not args.no_progress,
    )
    print(json.dumps({"out": str(Path(args.out) / "final"), **metrics}, indent=2))
    return 0

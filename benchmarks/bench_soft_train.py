"""Soft-compressor training step time, lever by lever, on the same examples.

    python benchmarks/bench_soft_train.py                          # the default ladder, 3 rounds
    python benchmarks/bench_soft_train.py --variants before,bf16-1t --rounds 5

Each variant is one optimizer step of `--examples` QMSum training examples (learning rate 0, so
every variant times the same weights) through `SoftTrainer.train_step`, the code `train-soft`
runs. Variants are timed in turn within each round (interleaved, after one untimed warm-up round)
so that a load change on a shared machine hits all of them; the report gives the median wall
seconds per step, examples/s, the ratio to the first variant, process CPU seconds, and the
matmul/attention FLOPs of one step (torch's FlopCounterMode, forward + backward). Read ratios,
not absolutes, when other processes share the cores.

The default ladder adds one lever at a time, on one thread:
  before       fp32, teacher recomputed every step, examples one after the other, every row reads
               the chat prefix again (the step before issue 21), 192 context tokens
  bf16         + bfloat16 autocast
  teacher      + the teacher's states read from the store (computed once per example)
  prefix       + the chat prefix's keys/values computed once (rows start after it)
  padded       + both examples in one padded forward/backward
  ctx-128      + contexts cut to 128 tokens
  reconstruct  the reconstruction stage's step, every lever, 192 context tokens
  2-threads    `padded` on both cores (compare with `padded`; on a machine whose cores other
               processes keep busy, two threads spend their time waiting for each other)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from promptpress.compressor.soft.decoder import load_decoder
from promptpress.compressor.soft.model import ConceptEncoder, SoftConfig
from promptpress.compressor.training.qmsum import qmsum_examples
from promptpress.compressor.training.soft_objectives import Reader
from promptpress.compressor.training.soft_train import SoftTrainer, TrainConfig


@dataclass(frozen=True)
class Variant:
    name: str
    threads: int = 1
    precision: str = "fp32"
    teacher_cache: str = "off"
    reuse_prefix: bool = False
    padded: bool = False
    max_context_tokens: int = 192
    stage: str = "distill"


_ALL = Variant("padded", precision="bf16", teacher_cache="memory", reuse_prefix=True, padded=True)
LADDER = [
    Variant("before"),
    Variant("bf16", precision="bf16"),
    Variant("teacher", precision="bf16", teacher_cache="memory"),
    Variant("prefix", precision="bf16", teacher_cache="memory", reuse_prefix=True),
    _ALL,
    replace(_ALL, name="ctx-128", max_context_tokens=128),
    replace(_ALL, name="reconstruct", stage="reconstruct"),
    replace(_ALL, name="2-threads", threads=2),
    Variant("fp32-2t", threads=2),
]
BY_NAME = {v.name: v for v in LADDER}


def trainer_for(
    variant: Variant, encoder: ConceptEncoder, tokenizer: object, examples: list, out: Path
) -> SoftTrainer:
    n = len(examples)
    config = TrainConfig(
        out_dir=str(out / variant.name),
        steps=1,
        batch_size=n if variant.padded else 1,
        grad_accum=1 if variant.padded else n,
        reconstruct_steps=1 if variant.stage == "reconstruct" else 0,
        lr=0.0,
        max_context_tokens=variant.max_context_tokens,
        max_answer_tokens=32,
        device="cpu",
        precision=variant.precision,
        teacher_cache=variant.teacher_cache,
    )
    trainer = SoftTrainer(encoder, tokenizer, examples, examples[:1], config)
    trainer.reader = Reader(encoder, trainer.layout, reuse_prefix=variant.reuse_prefix)
    trainer.order = list(range(n))
    return trainer


def one_step(trainer: SoftTrainer, threads: int) -> tuple[float, float]:
    torch.set_num_threads(threads)
    trainer.step = 0
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train_step()
    return time.perf_counter() - wall, time.process_time() - cpu


def step_flops(trainer: SoftTrainer, threads: int) -> int:
    """Matmul and attention FLOPs of one step, forward and backward (the same in fp32 and bf16)."""
    torch.set_num_threads(threads)
    counter = FlopCounterMode(display=False)
    trainer.step = 0
    with counter:
        trainer.train_step()
    return int(counter.get_total_flops())


def measure(
    trainers: dict[str, SoftTrainer], variants: list[Variant], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per variant and round, variants interleaved within each round."""
    for v in variants:  # untimed warm-up (it also fills the teacher stores)
        one_step(trainers[v.name], v.threads)
    times: dict[str, list[tuple[float, float]]] = {v.name: [] for v in variants}
    for r in range(rounds):
        for v in variants:
            times[v.name].append(one_step(trainers[v.name], v.threads))
            wall, cpu = times[v.name][-1]
            print(f"round {r + 1} {v.name}: {wall:.2f} s wall, {cpu:.1f} s CPU", file=sys.stderr, flush=True)
    return times


def report(
    variants: list[Variant], times: dict[str, list[tuple[float, float]]], flops: dict[str, int], n: int
) -> None:
    base = statistics.median(t for t, _ in times[variants[0].name])
    print(f"{'variant':12s} {'s/step':>8s} {'ex/s':>7s} {'speed-up':>8s} {'cpu s':>7s} {'TFLOP/step':>10s}")
    for v in variants:
        wall = statistics.median(t for t, _ in times[v.name])
        cpu = statistics.median(c for _, c in times[v.name])
        tflop = flops.get(v.name, 0) / 1e12
        print(f"{v.name:12s} {wall:8.2f} {n / wall:7.3f} {base / wall:7.2f}x {cpu:7.1f} {tflop:10.2f}")
        record = {"variant": v.name, "seconds": [round(t, 2) for t, _ in times[v.name]], "tflop": tflop}
        print(json.dumps(record), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="../shared/data/qmsum-train")
    parser.add_argument("--variants", default=",".join(v.name for v in LADDER[:8]))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--examples", type=int, default=2, help="examples per step")
    parser.add_argument(
        "--first-example", type=int, default=0, help="index of the first training example used"
    )
    parser.add_argument(
        "--no-flops", action="store_true", help="skip counting FLOPs (one more step per variant)"
    )
    args = parser.parse_args(argv)
    variants = [BY_NAME[name] for name in args.variants.split(",")]
    model, tokenizer = load_decoder()
    encoder = ConceptEncoder(model, SoftConfig())
    examples = qmsum_examples(args.data, "train")[args.first_example : args.first_example + args.examples]
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {v.name: trainer_for(v, encoder, tokenizer, examples, Path(tmp)) for v in variants}
        times = measure(trainers, variants, args.rounds)
        flops = {} if args.no_flops else {v.name: step_flops(trainers[v.name], v.threads) for v in variants}
    report(variants, times, flops, len(examples))
    return 0


if __name__ == "__main__":
    sys.exit(main())

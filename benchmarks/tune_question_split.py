"""How question-aware compression should split its budget: a grid over the split's shape on a dev suite.

    promptpress eval build-squad --out runs/squad-dev --questions-per-context 6 --contexts-per-article 1 --seed 1
    python benchmarks/tune_question_split.py --data runs/squad-dev --exclude runs/squad-1x6 \
        [--temperatures 0.05,0.1,0.2] [--min-rates 0.1,0.05,0.025] [--rates 0.33,0.2] [--limit 120]
        [--numbers whole,keep]

`QuestionAwareCompressor` gives unit i ``clip(c * exp((s_i - max s) / temperature), min_rate, 1)`` of
its tokens (`promptpress.compressor.budget.split_budget`). This tries every (temperature, min_rate,
numbers) triple (`numbers`: the structure policy of numbers, `QuestionAwareCompressor(numbers=)`) and prints, per rate, the mean share of the gold answer's words kept (as
`bench_answer_kept.py` counts it) and the ratio achieved: a shape that keeps more tokens keeps more
answers for free, so compare at equal ratios. The suite given by `--data` should not share contexts
with the one the figures in the docs are measured on: `--exclude` drops every context that also
occurs in that suite (`--seed 1` shares 18 of 48 contexts with the default `--seed 0`). The window
scores are computed once (an in-memory segment cache) and the embeddings once (the compressor's
embedding cache), so the grid costs little more than one configuration.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="directory holding squad_longdoc.jsonl")
    parser.add_argument("--exclude", type=Path, default=None, help="a suite whose contexts are dropped")
    parser.add_argument("--limit", type=int, default=120, help="questions (after exclusion)")
    parser.add_argument("--rates", default="0.33,0.2")
    parser.add_argument("--temperatures", default="0.05,0.1,0.2")
    parser.add_argument("--min-rates", default="0.1,0.05,0.025")
    parser.add_argument("--numbers", default="whole", help="policies of numbers to try (whole, keep, ...)")
    parser.add_argument("--model", default=None, help="token classifier (default: the default model)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--backend",
        default="torch",
        help="classifier back end (torch: fp32, as bench_answer_kept.py; auto, bf16...)",
    )
    args = parser.parse_args()

    import torch
    from squad_suite import answerable, load_suite

    from promptpress.cache.memory import MemoryCache
    from promptpress.compressor import load_compressor
    from promptpress.compressor.query_aware import QuestionAwareCompressor
    from promptpress.eval.metrics import answer_kept
    from promptpress.eval.squad_longdoc import DATASET

    torch.set_num_threads(args.threads)
    rates = [float(r) for r in args.rates.split(",")]
    shapes = [
        (float(t), float(m), n)
        for n in args.numbers.split(",")
        for t in args.temperatures.split(",")
        for m in args.min_rates.split(",")
    ]
    samples, full = answerable(DATASET, load_suite(args.data, args.exclude, args.limit))
    print(f"{len(samples)} questions on {len({s.context for s in samples})} contexts", file=sys.stderr)

    base = load_compressor(args.model, backend=args.backend, cache=MemoryCache(max_bytes=1 << 30))
    first = QuestionAwareCompressor(base)
    kept: dict[tuple[float, float, str, float], list[float]] = {}
    tokens: dict[tuple[float, float, str, float], list[tuple[int, int]]] = {}
    for temperature, min_rate, numbers in shapes:
        qa = QuestionAwareCompressor(base, temperature=temperature, min_rate=min_rate, numbers=numbers)  # type: ignore[arg-type]
        qa.embed = first.embed  # one embedding cache for the whole grid
        for rate in rates:
            key = (temperature, min_rate, numbers, rate)
            for sample in samples:
                result = qa.compress_for_question(sample.context, sample.input, rate)
                value = answer_kept(DATASET, result.compressed_text, sample.answers) or 0.0
                kept.setdefault(key, []).append(value / full[sample.id])
                tokens.setdefault(key, []).append((result.original_tokens, result.compressed_tokens))
        print(f"temperature {temperature:g}, min_rate {min_rate:g}, numbers {numbers} done", file=sys.stderr)

    cells = " | ".join(f"kept @{r:g} | ratio @{r:g}" for r in rates)
    print(f"\n| temperature | min_rate | numbers | {cells} |")
    print("|---:|---:|---|" + "---:|---:|" * len(rates))
    for temperature, min_rate, numbers in shapes:
        row = []
        for rate in rates:
            key = (temperature, min_rate, numbers, rate)
            pairs = tokens[key]
            ratio = sum(o for o, _ in pairs) / max(1, sum(c for _, c in pairs))
            row += [f"{100 * statistics.fmean(kept[key]):.1f}%", f"{ratio:.2f}x"]
        print(f"| {temperature:g} | {min_rate:g} | {numbers} | {' | '.join(row)} |")
    print(
        f"\n{len(samples)} questions of {args.data}"
        + (f", contexts of {args.exclude} excluded" if args.exclude else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

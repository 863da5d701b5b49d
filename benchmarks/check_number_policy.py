"""Question-blind compression: what forcing numbers (structure policy `keep`, the default) is worth
against scoring them like words (`whole`), in gold-answer words kept on a SQuAD suite.

    python benchmarks/check_number_policy.py --data runs/squad-dev --exclude runs/squad-1x6 [--limit 120]
        [--rates 0.33,0.2] [--policies keep,whole] [--model builtin:minilm-qmsum-v0] [--threads 1]

Each context is compressed once per policy and rate by the token classifier (torch fp32), and each
question's share of its gold answer's words left in the output is averaged (as
`bench_answer_kept.py` counts it). Question-aware compression's side of the same choice is
`tune_question_split.py --numbers keep,whole`.
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
    parser.add_argument("--policies", default="keep,whole", help="structure policies of numbers to compare")
    parser.add_argument("--model", default=None, help="token classifier (default: the default model)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()

    import torch
    from squad_suite import answerable, by_context, load_suite

    from promptpress.compressor import load_compressor
    from promptpress.eval.metrics import answer_kept
    from promptpress.eval.squad_longdoc import DATASET

    torch.set_num_threads(args.threads)
    samples, full = answerable(DATASET, load_suite(args.data, args.exclude, args.limit))
    contexts = by_context(samples)
    print(f"{len(samples)} questions on {len(contexts)} contexts", file=sys.stderr)
    compressor = load_compressor(args.model, backend="torch")
    rates = [float(r) for r in args.rates.split(",")]
    print("\n| numbers | " + " | ".join(f"kept @{r:g} | ratio @{r:g}" for r in rates) + " |")
    print("|---|" + "---:|---:|" * len(rates))
    for policy in args.policies.split(","):
        cells = []
        for rate in rates:
            kept, original, compressed = [], 0, 0
            for context, questions in contexts.items():
                result = compressor.compress(context, rate=rate, structure={"number": policy})
                original += result.original_tokens
                compressed += result.compressed_tokens
                for s in questions:
                    kept.append((answer_kept(DATASET, result.compressed_text, s.answers) or 0.0) / full[s.id])
            cells += [f"{100 * statistics.fmean(kept):.1f}%", f"{original / max(1, compressed):.2f}x"]
        print(f"| {policy} | {' | '.join(cells)} |")
    print(
        f"\n{len(samples)} questions of {args.data}, question-blind"
        + (f", contexts of {args.exclude} excluded" if args.exclude else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

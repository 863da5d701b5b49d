"""How much of the gold answer each compressor keeps on long-document QA, without a reader.

    python benchmarks/bench_answer_kept.py [--data DIR] [--limit 102] [--rates 0.5,0.33,0.2]
        [--methods truncate,random,surprisal,classifier,classifier:package:all-minilm-l6-v2] [--threads 2]
    python benchmarks/bench_answer_kept.py --suite qmsum_heldout [--qmsum ../shared/data/qmsum-train] ...
    python benchmarks/bench_answer_kept.py --data runs/squad-dev --exclude runs/squad-1x6 ...   (a dev split)

On `squad_longdoc` (default: the suite `promptpress eval` builds; `--data` takes a directory from
`promptpress eval build-squad`), every method compresses each context once per rate, question-blind
(a question-aware method such as `classifier_qa` compresses it for each question), and each question's `answer_kept` is the share of its gold answer's words left in the compressed
context (`promptpress.eval.metrics.answer_kept`, the metric's own normalisation), divided by the
share left in the uncompressed context (1 for SQuAD's extractive answers; QMSum's answers are
written by annotators, so only their words that occur in the context count; questions with none are
skipped). `--suite qmsum_heldout` asks the held-out QMSum meetings' specific queries over their
relevant turns (`promptpress.eval.qmsum_qa.heldout_samples`, 97 questions, ~840 words per
context; meetings the training never sees); their answers are sentences, so only their content
words count (`training.answers.content_words`: "that", "was", "should" would otherwise reward
keeping function words). It is the
compressor-only half of a QA score: a reader cannot answer from words that are gone. Methods are the
names `promptpress eval run --methods` takes; `surprisal` (the default model's teacher) is slow, a
0.5B LM in fp32. Prints a markdown table: mean answer kept (%) per method and rate, the ratio
achieved, and the compression time per context. SQuAD is evaluation-only data: nothing of it is
written.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", choices=["squad_longdoc", "qmsum_heldout"], default="squad_longdoc")
    parser.add_argument("--data", type=Path, default=None, help="directory holding squad_longdoc.jsonl")
    parser.add_argument(
        "--qmsum", type=Path, default=Path("../shared/data/qmsum-train"), help="QMSum folder (qmsum_heldout)"
    )
    parser.add_argument(
        "--exclude",
        type=Path,
        default=None,
        help="squad_longdoc: drop every context that also occurs in this suite (a dev split beside the test one)",
    )
    parser.add_argument("--limit", type=int, default=102, help="questions (the first N of the suite)")
    parser.add_argument("--rates", default="0.5,0.33,0.2")
    parser.add_argument(
        "--methods", default="truncate,random,surprisal,classifier,classifier:package:all-minilm-l6-v2"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--backend",
        default="torch",
        help="inference back end(s) of the classifier methods, comma-separated (torch, bf16, onnx, ...); "
        "with several, each method runs on each, in one process, named 'METHOD [BACKEND]'",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-drop baseline")
    args = parser.parse_args()

    import torch
    from squad_suite import answerable, by_context, load_suite

    from promptpress.compressor.training.answers import content_words
    from promptpress.eval.methods import QuestionAware, parse_methods
    from promptpress.eval.metrics import answer_kept
    from promptpress.eval.qmsum_qa import HELDOUT_DATASET, heldout_samples
    from promptpress.eval.squad_longdoc import DATASET, ensure_suite

    torch.set_num_threads(args.threads)
    rates = [float(r) for r in args.rates.split(",")]
    if args.suite == HELDOUT_DATASET:  # written answers: count their content words only
        dataset = HELDOUT_DATASET
        samples = [
            dataclasses.replace(s, answers=tuple(content_words(a) for a in s.answers))
            for s in heldout_samples(args.qmsum)[: args.limit]
        ]
    else:
        dataset, samples = DATASET, load_suite(args.data or ensure_suite(), args.exclude, args.limit)
    samples, full = answerable(dataset, samples)
    contexts = by_context(samples)
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    methods = []
    for backend in backends:
        for method in parse_methods(args.methods, seed=args.seed, classifier_backend=backend):
            name = method.name if len(backends) == 1 else f"{method.name} [{backend}]"
            methods.append(dataclasses.replace(method, name=name))
    print(
        f"{dataset}: {len(samples)} questions on {len(contexts)} contexts; methods {args.methods}",
        file=sys.stderr,
    )

    kept: dict[tuple[str, float], list[float]] = {}
    tokens: dict[tuple[str, float], list[tuple[int, int]]] = {}
    seconds: dict[str, float] = {}
    for n, (context, questions) in enumerate(contexts.items(), 1):
        for method in methods:
            assert method.compressor is not None
            start = time.perf_counter()
            for rate in rates:  # rates after the first may reuse the method's per-text scores
                for sample in questions:
                    if isinstance(method.compressor, QuestionAware):  # compressed for each question
                        result = method.compressor.compress_for_question(context, sample.input, rate)
                    elif sample is questions[0]:  # question-blind: once per context
                        result = method.compressor.compress(context, rate=rate)
                    tokens.setdefault((method.name, rate), []).append(
                        (result.original_tokens, result.compressed_tokens)
                    )
                    value = answer_kept(dataset, result.compressed_text, sample.answers)
                    kept.setdefault((method.name, rate), []).append(float(value or 0.0) / full[sample.id])
            seconds[method.name] = seconds.get(method.name, 0.0) + time.perf_counter() - start
        print(f"context {n}/{len(contexts)} done", file=sys.stderr)

    header = " | ".join(f"rate {r:g}" for r in rates)
    print(f"\n| method | {header} | ratio at {rates[-1]:g} | s per context (all rates) |")
    print("|---|" + "---:|" * (len(rates) + 2))
    for method in methods:
        cells = [f"{100 * statistics.fmean(kept[(method.name, r)]):.1f}%" for r in rates]
        pairs = tokens[(method.name, rates[-1])]
        ratio = sum(o for o, _ in pairs) / max(1, sum(c for _, c in pairs))
        per_context = seconds[method.name] / len(contexts)
        print(f"| {method.name} | {' | '.join(cells)} | {ratio:.2f}x | {per_context:.2f} |")
    print(
        f"\n{dataset}, answer kept: mean share of the gold answer's words left in the compressed context "
        f"(of those in the full context), {len(samples)} questions, {len(contexts)} contexts; torch threads {args.threads}, backend {args.backend}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

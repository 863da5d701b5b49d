"""First question vs later questions on the same context (issue 16's cost of a question).

    python benchmarks/bench_questions.py [--tokens 4000] [--later 5] [--threads 2]

A ~4k-token context (LongBench multi_news articles from ../shared/data) is compressed for a first
question, then for `--later` other questions, by `QuestionAwareCompressor` over the default model with
an in-process segment cache (as the service and the adapters run it). The first question scores
every window and embeds every unit; a later one embeds only itself and selects. Prints each time and
the ratio first / median(later). Target: >= 10x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "longbench" / "multi_news.jsonl"
QUESTIONS = [
    "Who was arrested, and why?",
    "What did the police say?",
    "When did the events happen?",
    "Which companies are named?",
    "What happens next?",
    "How did people react?",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--later", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0.33)
    args = parser.parse_args()

    import torch

    from promptpress.cache import MemoryCache
    from promptpress.compressor import count_tokens, load_compressor
    from promptpress.compressor.query_aware import QuestionAwareCompressor

    torch.set_num_threads(args.threads)
    contexts = [json.loads(line)["context"] for line in DATA.open(encoding="utf-8")]
    context = ""
    for text in contexts:
        if count_tokens(context) >= args.tokens:
            break
        context += ("\n\n" if context else "") + text
    qa = QuestionAwareCompressor(load_compressor(cache=MemoryCache()))
    qa.scores("warm-up", ["load the embedding model before timing"])  # model loads are not a question's cost
    times = []
    for question in QUESTIONS[: 1 + args.later]:
        start = time.perf_counter()
        qa.compress_for_question(context, question, args.rate)
        times.append((time.perf_counter() - start) * 1000)
    first, later = times[0], statistics.median(times[1:])
    print(
        f"context: {count_tokens(context)} tokens, {len(qa.compress_for_question(context, QUESTIONS[0], args.rate).contexts)} units; rate {args.rate}; threads {args.threads}"
    )
    print(f"first question: {first:.0f} ms")
    print("later questions: " + ", ".join(f"{t:.0f}" for t in times[1:]) + " ms")
    print(f"first / median(later): {first / later:.1f}x")


if __name__ == "__main__":
    main()

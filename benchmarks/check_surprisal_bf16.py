"""What bf16 autocast changes in the surprisal teacher's labels, and what it saves.

    python benchmarks/check_surprisal_bf16.py --corpus runs/v1/corpus.jsonl [--windows 12] [--threads 1]

Reads the first `--windows` training windows of a `train corpus` file and labels each with the
surprisal teacher (the packaged Qwen2.5-Coder-0.5B) in fp32 and under bf16 autocast, in turn
(fp32, bf16, fp32, bf16 ...: load from other processes falls on both alike). Prints seconds per
window and words per second for each, the speed-up, the share of keep/drop labels (rate 0.5) that
agree, and the rank correlation of the word scores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", required=True, help="windows file from `promptpress train corpus`")
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from promptpress.compressor.assets import resolve
    from promptpress.compressor.training.corpus import read_windows
    from promptpress.compressor.training.surprisal import SurprisalTeacher
    from promptpress.compressor.training.wordsplit import WordSplitter

    torch.set_num_threads(args.threads)
    windows = [w for w in read_windows(args.corpus) if w.split == "train"][: args.windows]
    splitter = WordSplitter(AutoTokenizer.from_pretrained(resolve("package:all-minilm-l6-v2")))
    fp32 = SurprisalTeacher(precision="fp32")
    bf16 = SurprisalTeacher(precision="bf16")
    fp32.label(splitter.encode(windows[0].text))  # warm-up
    bf16.label(splitter.encode(windows[0].text))

    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    agree: list[float] = []
    rho: list[float] = []
    n_words = 0
    for window in windows:
        words = splitter.encode(window.text)
        n_words += len(words.spans)
        out = {}
        for name, teacher in (("fp32", fp32), ("bf16", bf16)):
            start = time.perf_counter()
            out[name] = teacher.label(words)
            seconds[name].append(time.perf_counter() - start)
        a, b = out["fp32"], out["bf16"]
        agree.append(float(np.mean(a.keep == b.keep)))
        ra = np.argsort(np.argsort(a.scores))
        rb = np.argsort(np.argsort(b.scores))
        rho.append(float(np.corrcoef(ra, rb)[0, 1]))

    result = {
        "windows": len(windows),
        "words": n_words,
        "threads": args.threads,
        "fp32_s_per_window": round(statistics.median(seconds["fp32"]), 3),
        "bf16_s_per_window": round(statistics.median(seconds["bf16"]), 3),
        "fp32_words_per_s": round(n_words / sum(seconds["fp32"]), 1),
        "bf16_words_per_s": round(n_words / sum(seconds["bf16"]), 1),
        "speedup": round(sum(seconds["fp32"]) / sum(seconds["bf16"]), 2),
        "labels_equal": round(statistics.mean(agree), 4),
        "labels_equal_worst_window": round(min(agree), 4),
        "score_rank_correlation": round(statistics.mean(rho), 4),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

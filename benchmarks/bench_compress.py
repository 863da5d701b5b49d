"""Time promptpress and llmlingua 0.2.2 side by side on the same text and checkpoint.

    python benchmarks/bench_compress.py [--tokens 9000] [--repeats 3] [--rate 0.33]

Measured in one run, on the same ~9k-token text (LongBench multi_news contexts from
../shared/data) and the same checkpoint (the packaged MiniLM token classifier saved to a temporary
directory whose name llmlingua recognises):
- the raw encoder forward over our windows (no tokenisation, no post-processing), fp32;
- promptpress end to end on each back end (torch fp32, torch int8, onnx, onnx-int8);
- llmlingua's ``compress_prompt`` (LLMLingua-2 path) end to end.
Prints each median, the ratios the issue asks for, and each back end's word-decision agreement
with our fp32 path. Needs the test extra (llmlingua==0.2.2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PROMPTPRESS_SHARED_DATA", REPO.parent / "shared" / "data"))


def load_text(tokens: int) -> str:
    from promptpress.compressor import count_tokens

    parts: list[str] = []
    with (DATA / "longbench" / "multi_news.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            parts.append(json.loads(line)["context"])
            if count_tokens("\n\n".join(parts)) >= tokens:
                break
    text = "\n\n".join(parts)
    enc_tokens = count_tokens(text)
    if enc_tokens > tokens:  # trim to about the requested size at a paragraph boundary
        text = text[: int(len(text) * tokens / enc_tokens)]
    return text


def interleaved(paths: dict[str, object], repeats: int) -> tuple[dict[str, float], dict[str, object]]:
    """Median seconds per path, the paths run in turn (A B C A B C ...) so that load from other
    processes on the machine falls on all of them alike; one warm-up call each first."""
    outputs = {name: fn() for name, fn in paths.items()}  # type: ignore[operator]
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            outputs[name] = fn()  # type: ignore[operator]
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, outputs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=9000)
    parser.add_argument("--rate", type=float, default=0.33)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    parser.add_argument(
        "--model", default="package:all-minilm-l6-v2", help="checkpoint to compare on (any spec)"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import torch

    from promptpress.compressor import TokenClassifierCompressor, count_tokens, ensure_tiktoken_offline
    from promptpress.compressor.model import load_token_classifier

    if args.threads:
        torch.set_num_threads(args.threads)
    ensure_tiktoken_offline()
    text = load_text(args.tokens)
    n_tokens = count_tokens(text)
    workdir = Path(tempfile.mkdtemp(prefix="pp-bench-"))
    checkpoint = workdir / "bert-base-multilingual-cased-minilm-bench"
    base = load_token_classifier(args.model)
    base.model.save_pretrained(checkpoint)
    base.tokenizer.save_pretrained(checkpoint)
    loaded = load_token_classifier(checkpoint)
    print(
        f"text: {n_tokens} tiktoken tokens, {len(text.split())} words; rate {args.rate}; "
        f"torch threads {torch.get_num_threads()}; checkpoint: packaged MiniLM-L6 (seeded head)"
    )

    fp32 = TokenClassifierCompressor(loaded, threads=args.threads)
    ctx = fp32._prepare([text], fp32.default_options)
    windows = [ctx[0].ids[s:e] for s, e in ctx[0].windows]
    compressors = {"torch": fp32} | {
        b: TokenClassifierCompressor(loaded, backend=b, threads=args.threads)
        for b in ("int8", "onnx", "onnx-int8")
    }
    from llmlingua import PromptCompressor

    reference = PromptCompressor(str(checkpoint), use_llmlingua2=True, device_map="cpu")
    paths = {"raw forward (fp32)": lambda: fp32._compute(windows)}
    for backend, compressor in compressors.items():
        paths[f"promptpress {backend}"] = lambda c=compressor: c.compress(text, rate=args.rate)
    paths["llmlingua 0.2.2"] = lambda: reference.compress_prompt(text, rate=args.rate)
    results, outputs = interleaved(paths, args.repeats)
    words = {  # decisions compared outside the timed calls (building per-word records costs time)
        b: np.array([w.keep for w in c.compress(text, rate=args.rate, return_words=True).words or []])
        for b, c in compressors.items()
    }
    for backend in compressors:
        print(f"  promptpress {backend:9s} -> {outputs[f'promptpress {backend}'].compressed_tokens} tokens")  # type: ignore[union-attr]
    print(f"  llmlingua 0.2.2       -> {outputs['llmlingua 0.2.2']['compressed_tokens']} tokens")  # type: ignore[index]
    print(
        f"  windows: promptpress {len(windows)} (stable, {np.mean([len(w) for w in windows]):.0f} tokens avg)"
    )

    print()
    print("| path | median s | tokens/s | vs llmlingua |")
    print("|---|---:|---:|---:|")
    for name, seconds in results.items():
        print(
            f"| {name} | {seconds:.3f} | {n_tokens / seconds:,.0f} | {results['llmlingua 0.2.2'] / seconds:.2f}x |"
        )
    raw = results["raw forward (fp32)"]
    print()
    print(
        f"promptpress fp32 overhead over the raw forward: {results['promptpress torch'] / raw - 1:+.1%} (target <= +10%)"
    )
    agreement = {b: float((words[b] == words["torch"]).mean()) for b in words}
    for backend, agree in agreement.items():
        print(f"word decisions equal to fp32: {backend:9s} {agree:.2%}")
    fastest = min((k for k in results if k.startswith("promptpress")), key=results.__getitem__)
    print(
        f"fastest path: {fastest}, {results['llmlingua 0.2.2'] / results[fastest]:.2f}x llmlingua's throughput"
    )
    faithful = [k for k in results if k.startswith("promptpress") and agreement[k.split()[-1]] >= 0.98]
    best = min(faithful, key=results.__getitem__)
    print(
        f"fastest path with >= 98% of decisions equal to fp32: {best}, "
        f"{results['llmlingua 0.2.2'] / results[best]:.2f}x llmlingua's throughput (target >= 2x)"
    )


if __name__ == "__main__":
    main()

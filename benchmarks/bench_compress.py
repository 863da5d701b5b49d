"""Time promptpress and llmlingua 0.2.2 side by side on the same text and checkpoint, lever by lever.

    python benchmarks/bench_compress.py [--tokens 9000] [--repeats 3] [--rate 0.33] [--threads N]
        [--levers torch,bf16,onnx,...] [--beside-backend]

Measured in one run, on the same ~9k-token text (LongBench multi_news contexts from
../shared/data) and the same checkpoint (saved to a temporary directory whose name llmlingua
recognises), each path timed in turn (A B C A B C ...) so that load from other processes falls on
all of them alike:
- the raw encoder forward over our windows (no tokenisation, no post-processing), fp32 and bf16;
- promptpress end to end, one row per lever (`LEVERS`): each back end (precision and engine), ONNX
  Runtime's spinning threads, the batching policy of earlier releases, llmlingua's full windows;
- llmlingua's ``compress_prompt`` (LLMLingua-2 path) end to end.
Prints one table: median seconds, tokens/s, the ratio to llmlingua's throughput and the share of
word keep/drop decisions equal to our torch fp32 path, then the issue's target line for the default
path (``auto``). Needs the test extra (llmlingua==0.2.2) and, for the ONNX rows, onnxruntime.
`--beside-backend` times it all while the local llama.cpp backend decodes back to back on one thread
(`busy_backend.py`; needs the `serve` and `models` extras): the proxy's compressor beside the LLM it fronts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PROMPTPRESS_SHARED_DATA", REPO.parent / "shared" / "data"))
LLMLINGUA = "llmlingua 0.2.2"


@dataclass(frozen=True)
class Lever:
    """One promptpress path: a back end, compressor arguments, option overrides, ONNX settings."""

    label: str
    backend: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    spinning: bool | None = None  # ONNX Runtime's spinning worker threads (None: the default)


LEVERS: dict[str, Lever] = {
    "torch": Lever("torch fp32", "torch"),
    "bf16": Lever("torch bf16 (Linear layers; equal-length batches, no padding)", "bf16"),
    "int8": Lever("torch int8 (every Linear)", "int8"),
    "onnx": Lever("ONNX fp32 (fused), threads sleep", "onnx"),
    "onnx-spin": Lever("ONNX fp32 (fused), threads spin", "onnx", spinning=True),
    "onnx-int8": Lever("ONNX int8 (FFN up-projections)", "onnx-int8"),
    "bf16-old-batches": Lever(
        "torch bf16, earlier batching (8 rows, 80 % fill)",
        "bf16",
        kwargs={"batch_size": 8, "batch_fill": 0.8},
    ),
    "bf16-padded": Lever(
        "torch bf16, batches up to 5 % padding (results depend on the batch)",
        "bf16",
        kwargs={"batch_fill": 0.95},
    ),
    "bf16-greedy": Lever("torch bf16, greedy 512-token windows", "bf16", options={"windowing": "greedy"}),
}
DEFAULT_LEVERS = ",".join(LEVERS)


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


def interleaved(paths: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call per path, the paths run in turn (A B C A B C ...); one warm-up call each."""
    for fn in paths.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def build(loaded: Any, lever: Lever, threads: int | None) -> Any:
    from promptpress.compressor import TokenClassifierCompressor
    from promptpress.compressor.runtime import OnnxRuntime, OrtSettings

    compressor = TokenClassifierCompressor(loaded, backend=lever.backend, threads=threads, **lever.kwargs)
    if lever.spinning is not None:
        graph = compressor.runtime.graph
        compressor.runtime = OnnxRuntime(graph, lever.backend, OrtSettings(threads, lever.spinning))
    return compressor


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=9000)
    parser.add_argument("--rate", type=float, default=0.33)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    parser.add_argument(
        "--model", default="builtin:minilm-qmsum-v0", help="checkpoint to compare on (any spec)"
    )
    parser.add_argument("--levers", default=DEFAULT_LEVERS, help=f"promptpress rows, of: {DEFAULT_LEVERS}")
    parser.add_argument(
        "--beside-backend",
        action="store_true",
        help="time everything while the local llama.cpp backend (`serve --with-backend`, one thread) "
        "generates back to back: a compressor sharing the cores with the LLM behind the proxy",
    )
    parser.add_argument(
        "--backend-threads", type=int, default=1, help="the busy backend's threads (0: llama.cpp's default)"
    )
    args = parser.parse_args()
    levers = [s.strip() for s in args.levers.split(",") if s.strip()]
    unknown = [name for name in levers if name not in LEVERS]
    if unknown:
        parser.error(f"unknown lever(s) {', '.join(unknown)}; choose from {DEFAULT_LEVERS}")
    warnings.simplefilter("ignore")

    import torch

    from promptpress.compressor import count_tokens, ensure_tiktoken_offline
    from promptpress.compressor.model import load_token_classifier
    from promptpress.compressor.runtime import resolve_backend
    from promptpress.compressor.torch_runtime import native_bf16

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
        f"torch threads {torch.get_num_threads()}; checkpoint: {args.model}"
    )

    reference = build(loaded, LEVERS["torch"], args.threads)
    compressors = {name: build(loaded, LEVERS[name], args.threads) for name in levers if name != "torch"}
    compressors["torch"] = reference
    ctx = reference._prepare([text], reference.default_options)
    windows = [ctx[0].ids[s:e] for s, e in ctx[0].windows]
    from llmlingua import PromptCompressor

    llmlingua = PromptCompressor(str(checkpoint), use_llmlingua2=True, device_map="cpu")
    paths: dict[str, Callable[[], Any]] = {
        "raw forward fp32 (our windows)": lambda: reference._compute(windows)
    }
    if native_bf16() or "bf16" in compressors:  # emulated bf16 (no AVX-512 BF16/AMX) is ~70x slower
        raw_bf16 = compressors.get("bf16") or build(loaded, LEVERS["bf16"], args.threads)
        paths["raw forward bf16 (our windows)"] = lambda: raw_bf16._compute(windows)
    for name in levers:
        options = LEVERS[name].options
        paths[name] = lambda c=compressors[name], o=options: c.compress(text, rate=args.rate, **o)
    paths[LLMLINGUA] = lambda: llmlingua.compress_prompt(text, rate=args.rate)
    busy = None
    if args.beside_backend:
        from busy_backend import BusyBackend

        busy = BusyBackend(log_path=workdir / "serve.log", threads=args.backend_threads).start()
    try:
        times = interleaved(paths, args.repeats)
    finally:
        if busy is not None:
            print(busy.stop())
    medians = {name: statistics.median(t) for name, t in times.items()}

    def decisions(name: str) -> np.ndarray:  # outside the timed calls (per-word records cost time)
        result = compressors[name].compress(text, rate=args.rate, return_words=True, **LEVERS[name].options)
        return np.array([w.keep for w in result.words or []])

    fp32 = decisions("torch")
    agreement = {name: float((decisions(name) == fp32).mean()) for name in levers}
    print(
        f"  windows: promptpress {len(windows)} (stable, {np.mean([len(w) for w in windows]):.0f} tokens avg)"
    )
    print()
    print("| path | median s (min-max) | tokens/s | vs llmlingua 0.2.2 | word decisions equal to fp32 |")
    print("|---|---:|---:|---:|---:|")
    base_s = medians[LLMLINGUA]
    for name, seconds in medians.items():
        label = f"promptpress {LEVERS[name].label}" if name in LEVERS else name
        agree = f"{100 * agreement[name]:.2f} %" if name in agreement else "—"
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(
            f"| {label} | {seconds:.3f} ({spread}) | {n_tokens / seconds:,.0f} | {base_s / seconds:.2f}x | {agree} |"
        )
    print()
    if "torch" in medians:
        overhead = medians["torch"] / medians["raw forward fp32 (our windows)"] - 1
        print(f"promptpress fp32 overhead over the raw forward: {overhead:+.1%}")
    default = resolve_backend("auto")
    if default in medians:
        ok = base_s / medians[default] >= 2 and agreement[default] >= 0.99
        print(
            f"default path (backend auto -> {default}): {base_s / medians[default]:.2f}x llmlingua's throughput, "
            f"{100 * agreement[default]:.2f} % of word decisions equal to fp32 "
            f"(target >= 2x and >= 99 %: {'met' if ok else 'not met'})"
        )


if __name__ == "__main__":
    main()

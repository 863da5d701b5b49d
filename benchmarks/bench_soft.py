"""Soft-compressor latency benchmark: TTFT (prefill) and KV-cache size, full context vs compressed.

    python benchmarks/bench_soft.py                       # 1k/2k/4k-token contexts, fp32
    python benchmarks/bench_soft.py --precisions fp32 bf16 int8 --precision-tokens 512

For each context length the packaged decoder prefills
- *full*: prefix + context tokens + question (what a plain backend does);
- *soft cold*: segmentation + concept encoding of every segment + prefill of the compressed prompt;
- *soft cached*: the same with every segment's concept embeddings already in the segment cache
  (lookup + fp16 decode + prefill).
TTFT here is the time to the first token's logits; KV-cache bytes are measured on the cache the
prefill returns (`kv_reduction`: whole prompt; `context_kv_reduction`: the context's share of it,
the chat prefix and the question being the same tokens in both). Contexts are QMSum meeting transcripts cut to the token budget (timing only).
Weights: trained ones from --weights, else an untrained encoder (timing does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

from promptpress.cache import MemoryCache
from promptpress.compressor.soft.decoder import load_decoder
from promptpress.compressor.soft.engine import SoftCompressor
from promptpress.compressor.soft.generation import kv_cache_bytes, prefill
from promptpress.compressor.soft.model import ConceptEncoder
from promptpress.compressor.soft.quantize import MODES, apply_precision
from promptpress.compressor.training.qmsum import clean_turn

QUESTION = "What did the group decide, and who will do the follow-up work?"


def meeting_text(data: Path, tokenizer: object, n_tokens: int) -> str:
    """Transcript lines from the QMSum meetings in `data` until `n_tokens` tokens."""
    lines, total = [], 0
    for path in sorted(data.glob("*.json")):
        for turn in json.loads(path.read_text())["meeting_transcripts"]:
            line = f"{turn['speaker']}: {clean_turn(turn['content'])}\n"
            cost = len(tokenizer(line, add_special_tokens=False)["input_ids"])  # type: ignore[operator]
            if total + cost > n_tokens:
                return "".join(lines)
            lines.append(line)
            total += cost
    raise SystemExit(f"not enough text in {data} for {n_tokens} tokens")


def build(weights: str | None, precision: str) -> SoftCompressor:
    model, tokenizer = load_decoder()
    encoder = ConceptEncoder.load(weights, model) if weights else ConceptEncoder(model)
    apply_precision(encoder, precision)
    return SoftCompressor(encoder, tokenizer)


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def full_prefill(soft: SoftCompressor, context: str) -> tuple[int, int]:
    segments = soft.segments([context])
    ids = soft.layout.token_prompt(
        [t for s in segments for t in s.token_ids], soft.layout.question_ids(soft.tokenizer, QUESTION)
    )
    with torch.no_grad(), soft.encoder.reader() as lm:
        _, past = prefill(lm, soft.encoder.embed_tokens(ids))
    return len(ids), kv_cache_bytes(past)


def soft_prefill(soft: SoftCompressor, context: str) -> tuple[int, int]:
    prompt = soft.prompt([context], QUESTION)
    with torch.no_grad(), soft.encoder.reader() as lm:
        _, past = prefill(lm, prompt.embeds)
    return prompt.embeds.shape[0], kv_cache_bytes(past)


def cold_prefill(soft: SoftCompressor, context: str) -> tuple[int, int]:
    soft.cache = MemoryCache()  # empty: every segment is encoded
    return soft_prefill(soft, context)


def bench_lengths(
    soft: SoftCompressor, data: Path, lengths: list[int], repeats: int
) -> list[dict[str, float]]:
    rows = []
    full_prefill(soft, meeting_text(data, soft.tokenizer, 64))  # warm-up (first calls are slower)
    for n in lengths:
        context = meeting_text(data, soft.tokenizer, n)
        t_full, (pos_full, kv_full) = timed(partial(full_prefill, soft, context), repeats)
        t_cold, (pos_soft, kv_soft) = timed(partial(cold_prefill, soft, context), repeats)
        t_cached, _ = timed(partial(soft_prefill, soft, context), repeats)  # cache filled by the cold run
        # prefix + question positions, the same in both prompts (KV bytes are per position)
        fixed = pos_full - sum(len(s.token_ids) for s in soft.segments([context]))
        row = {
            "context_tokens": n,
            "full_positions": pos_full,
            "soft_positions": pos_soft,
            "full_ttft_s": t_full,
            "soft_cold_ttft_s": t_cold,
            "soft_cached_ttft_s": t_cached,
            "speedup_cold": t_full / t_cold,
            "speedup_cached": t_full / t_cached,
            "full_kv_mb": kv_full / 2**20,
            "soft_kv_mb": kv_soft / 2**20,
            "kv_reduction": 1 - kv_soft / kv_full,
            "context_kv_reduction": 1 - (pos_soft - fixed) / (pos_full - fixed),
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def bench_precisions(
    weights: str | None, data: Path, modes: list[str], n: int, repeats: int
) -> list[dict[str, float]]:
    rows = []
    for mode in modes:
        soft = build(weights, mode)
        context = meeting_text(data, soft.tokenizer, n)
        full_prefill(soft, context)  # warm-up
        t_full, (pos, _) = timed(partial(full_prefill, soft, context), repeats)
        segs = [s.token_ids for s in soft.segments([context])]
        with torch.no_grad():
            t_enc, _ = timed(partial(soft.encoder.encode, segs), repeats)
        rows.append(
            {"precision": mode, "prefill_positions": pos, "prefill_s": t_full, "encode_segments_s": t_enc}
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        del soft
    return rows


def markdown(rows: list[dict[str, float]]) -> str:
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/qmsum-train", help="QMSum meeting folder (context text)")
    p.add_argument("--weights", default=None, help="trained soft-compressor folder (default: untrained)")
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096])
    p.add_argument("--precision", choices=MODES, default="fp32", help="precision of the length table")
    p.add_argument("--precisions", choices=MODES, nargs="*", default=[], help="also compare these precisions")
    p.add_argument("--precision-tokens", type=int, default=512)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--skip-lengths", action="store_true", help="only the precision comparison")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"data folder {data} not found")
    results: dict[str, object] = {"threads": torch.get_num_threads(), "precision": args.precision}
    if args.precisions:
        rows = bench_precisions(args.weights, data, args.precisions, args.precision_tokens, args.repeats)
        results["precisions"] = rows
        print(f"\nPrefill of {args.precision_tokens} tokens and encoding of its segments, by precision:\n")
        print(markdown(rows))
    if not args.skip_lengths:
        rows = bench_lengths(build(args.weights, args.precision), data, args.lengths, args.repeats)
        results["lengths"] = rows
        print(
            f"\nTTFT and KV cache, full vs soft (C=2, S=20), {args.precision}, {results['threads']} thread(s):\n"
        )
        print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

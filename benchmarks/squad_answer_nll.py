"""How well does the decoder reading a soft checkpoint's concept embeddings predict SQuAD's gold
answers on squad_longdoc? A less noisy companion to QA F1 for telling checkpoints apart.

QA F1 on 36 questions moves by whole questions: two checkpoints a few points apart are mostly the
same answers plus one or two that flip (95 % intervals ~±6 points). The teacher-forced NLL of the
gold answer (nats per answer token, right after the assistant turn opens; the lowest over SQuAD's
gold spellings) gives every question a continuous score. For each weights folder the script prints
the mean answer NLL of the decoder reading the prompt as `promptpress eval run --methods soft:W`
builds it (the context as concept embeddings, instruction and question as tokens), and how far below
reading no context it is (the prompt with an empty context), with a 95 % bootstrap interval over
contexts; next to it the same decoder reading every token (`soft_tokens`), computed once. With
several weights, each one after the first also gets its paired difference from the first.

    promptpress eval build-squad --out runs/squad-1x6 --questions-per-context 6 --contexts-per-article 1
    python benchmarks/squad_answer_nll.py --data runs/squad-1x6 --limit 36 shipped runs/untrained-merge
    python benchmarks/squad_answer_nll.py --data runs/squad-1x6 --offset 36 --limit 36 shipped  # q37-72
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from promptpress.cache import open_cache
from promptpress.compressor.soft.engine import SoftCompressor
from promptpress.eval.longbench import Sample, build_prompt, load_dataset
from promptpress.eval.report import bootstrap_ci
from promptpress.eval.soft_reader import SoftReader


def answer_nll(soft: SoftCompressor, reader: SoftReader, sample: Sample, context: str | None = None) -> float:
    """The lowest over the sample's gold answers of their mean NLL (nats/token) after the prompt
    `reader` builds (SQuAD gives up to three spellings of one answer; the closest one counts)."""
    pieces = reader.pieces(build_prompt(sample, context=context))
    with torch.no_grad():
        prompt = soft.prompt_pieces(pieces).embeds
        with soft.encoder.reader() as lm:
            out = lm.base_model(inputs_embeds=prompt[None], use_cache=True)
            last = out.last_hidden_state[0, -1:]
            best = float("inf")
            for gold in dict.fromkeys(sample.answers):
                answer = list(soft.tokenizer(gold, add_special_tokens=False)["input_ids"])
                # the answer continues from the prompt's keys and values (read once for all spellings)
                cache = copy.deepcopy(out.past_key_values)
                tail = soft.encoder.embed_tokens(answer[:-1]).to(prompt.dtype)[None]
                states = [last]
                if answer[:-1]:
                    states.append(lm.base_model(inputs_embeds=tail, cache=cache).last_hidden_state[0])
                logits = lm.get_output_embeddings()(torch.cat(states)).float()
                best = min(best, F.cross_entropy(logits, torch.tensor(answer)).item())
    return best


def summary(name: str, nll: list[float], floor: list[float], contexts: list[str]) -> str:
    below = [f - n for n, f in zip(nll, floor, strict=True)]
    low, high = bootstrap_ci(below, clusters=contexts)
    return (
        f"{name}: answer NLL {statistics.fmean(nll):.3f}, {statistics.fmean(below):.3f} below no context "
        f"[{low:.3f}, {high:.3f}]"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights", nargs="+", help="soft weights folders, or 'shipped'")
    p.add_argument("--data", default="runs/squad-1x6", help="folder holding squad_longdoc.jsonl")
    p.add_argument("--limit", type=int, default=36, help="the first N questions")
    p.add_argument("--offset", type=int, default=0, help="after leaving out the first K (file order)")
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-tokens", action="store_true", help="skip the all-tokens reference (slowest)")
    p.add_argument("--dump", type=Path, default=None, help="append per-question NLLs here (JSON lines)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    samples = load_dataset(Path(args.data), "squad_longdoc", limit=args.limit, offset=args.offset)
    contexts = [str(s.extra.get("context_id", s.context[:200])) for s in samples]
    floor: list[float] = []
    first: list[float] = []
    for spec in args.weights:
        start = time.perf_counter()
        weights = None if spec == "shipped" else spec
        soft = SoftCompressor.from_pretrained(
            weights, precision=args.precision, cache=open_cache("memory://")
        )
        if not floor:  # reading no context, and every token: the same decoder whatever the weights
            plain = SoftReader(soft, compress=False)
            floor = [answer_nll(soft, plain, s, context="") for s in samples]
            print(f"no context: answer NLL {statistics.fmean(floor):.3f} ({len(samples)} questions)")
            if not args.no_tokens:
                tokens = [answer_nll(soft, plain, s) for s in samples]
                print(summary("every token (soft_tokens)", tokens, floor, contexts))
        nll = [answer_nll(soft, SoftReader(soft), s) for s in samples]
        print(summary(spec, nll, floor, contexts) + f" ({time.perf_counter() - start:.0f} s)", flush=True)
        if first:  # paired: the same questions, so the difference has a tighter interval than either
            gain = [a - b for a, b in zip(first, nll, strict=True)]
            low, high = bootstrap_ci(gain, clusters=contexts)
            print(f"  {spec} below {args.weights[0]}: {statistics.fmean(gain):.3f} [{low:.3f}, {high:.3f}]")
        else:
            first = nll
        if args.dump:
            with args.dump.open("a", encoding="utf-8") as fh:
                for sample, n, f, c in zip(samples, nll, floor, contexts, strict=True):
                    row = {"weights": spec, "id": sample.id, "context": c, "nll": n, "no_context": f}
                    row["precision"] = args.precision
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

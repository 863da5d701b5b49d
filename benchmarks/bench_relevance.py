"""Which relevance model finds a QMSum query's turns: recall of the relevant turns at a fixed budget.

    python benchmarks/bench_relevance.py [--qmsum ../shared/data/qmsum-train] [--meetings all|heldout]
        [--models package:all-minilm-l6-v2,package:all-mpnet-base-v2] [--budgets 0.1,0.2,0.33]
        [--units split|turns] [--sample N | --limit N] [--threads 1] [--seeds 5]

Question-aware compression spends a context's budget on the units most relevant to the question
(`promptpress.compressor.query_aware`). This measures that ranking alone, on meetings rather than
Wikipedia: every specific query of a QMSum meeting comes with the transcript turns that answer it
(`relevant_text_span`). Each meeting is one text, its turns ``Speaker: words`` lines (disfluency
markers removed, as in training); it is cut into units as `split_units` cuts it (`--units split`: one
paragraph, so groups of sentences of ~240+ characters, which may span turns) or one unit per turn
(`--units turns`: the turns joined by blank lines). For each query the units are ranked by cosine
similarity to the query and kept best first while they fit in X % of the meeting's tokens (tiktoken
cl100k; a unit that does not fit is skipped, smaller ones after it may still fit). A relevant turn
counts as found when at least half of its characters are in kept units; the figure is the share of
the query's relevant turns found, averaged over queries. Baselines on the same units and budget:
`position` (the meeting's first units), `random` (units in a seeded random order, mean over
`--seeds`) and `oracle` (units ranked by their share of relevant text: the most any ranking can find
at this budget). The embedders were not trained on QMSum, so every meeting is fair game (`--meetings
heldout`: only the meetings the compressor's training held out). Also prints each model's embedding
speed (units/s, tokens/s) over the run, and on the same `--speed-units` units embedded by each model
in turn for `--speed-rounds` rounds (medians and their ratio: fair when other jobs load the machine),
with `--threads` torch threads, batch 32.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Meeting:
    name: str
    units: list[str]
    tokens: list[int]  # per unit
    turn_units: list[list[tuple[int, int]]]  # per turn: (unit, characters of the turn in it)
    turn_chars: list[int]
    queries: list[tuple[str, list[int]]]  # (query, indices of its relevant turns)


def read_meeting(path: Path, units: str) -> Meeting:
    from promptpress.compressor.query_aware import split_units
    from promptpress.compressor.tokens import count_tokens
    from promptpress.compressor.training.qmsum import clean_turn

    data = json.loads(path.read_text())
    lines, index = [], {}  # index: turn number in the file -> line number (empty turns dropped)
    for i, turn in enumerate(data["meeting_transcripts"]):
        words = clean_turn(turn.get("content", ""))
        if words:
            index[i] = len(lines)
            lines.append(f"{turn.get('speaker', '?')}: {words}")
    text = ("\n\n" if units == "turns" else "\n").join(lines)
    unit_texts, _ = split_units(text)
    starts, pos = [], 0
    for unit in unit_texts:
        pos = text.index(unit, pos)
        starts.append(pos)
        pos += len(unit)
    turn_units: list[list[tuple[int, int]]] = []
    pos, u = 0, 0
    for line in lines:  # each turn's overlap with each unit, walking both in order
        a = text.index(line, pos)
        b = a + len(line)
        pos = b
        while u < len(unit_texts) and starts[u] + len(unit_texts[u]) <= a:
            u += 1
        overlaps, k = [], u
        while k < len(unit_texts) and starts[k] < b:
            overlap = min(b, starts[k] + len(unit_texts[k])) - max(a, starts[k])
            if overlap > 0:
                overlaps.append((k, overlap))
            k += 1
        turn_units.append(overlaps)
    queries = []
    for query in data.get("specific_query_list", []):
        relevant = sorted(
            {
                index[t]
                for s, e in query["relevant_text_span"]
                for t in range(int(s), int(e) + 1)
                if t in index
            }
        )
        if relevant:
            queries.append((query["query"].strip(), relevant))
    tokens = [count_tokens(u) for u in unit_texts]
    return Meeting(path.stem, unit_texts, tokens, turn_units, [len(x) for x in lines], queries)


def recall(meeting: Meeting, order: list[int], budget: float, relevant: list[int]) -> float:
    """Share of the relevant turns found when units are kept in `order` within `budget` of the tokens."""
    limit, spent, kept = budget * sum(meeting.tokens), 0, set()
    for unit in order:
        if spent + meeting.tokens[unit] <= limit:
            kept.add(unit)
            spent += meeting.tokens[unit]
    found = sum(
        1
        for t in relevant
        if 2 * sum(chars for unit, chars in meeting.turn_units[t] if unit in kept) >= meeting.turn_chars[t]
    )
    return found / len(relevant)


def oracle_order(meeting: Meeting, relevant: list[int]) -> list[int]:
    share = np.zeros(len(meeting.units))
    for t in relevant:
        for unit, chars in meeting.turn_units[t]:
            share[unit] += chars
    return sorted(range(len(meeting.units)), key=lambda k: -share[k] / max(1, meeting.tokens[k]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qmsum", type=Path, default=Path("../shared/data/qmsum-train"))
    parser.add_argument("--meetings", choices=["all", "heldout"], default="all")
    parser.add_argument("--models", default="package:all-minilm-l6-v2,package:all-mpnet-base-v2")
    parser.add_argument("--budgets", default="0.1,0.2,0.33")
    parser.add_argument("--units", choices=["split", "turns"], default="split")
    parser.add_argument(
        "--lexical-weights",
        default="0.2",
        help="also rank by cosine + W x BM25 (best unit = 1), as QuestionAwareCompressor scores; and BM25 alone",
    )
    parser.add_argument("--limit", type=int, default=None, help="the first N meetings only")
    parser.add_argument("--sample", type=int, default=None, help="N meetings evenly spread over the list")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seeds", type=int, default=5, help="shuffles of the random baseline")
    parser.add_argument("--speed-units", type=int, default=256, help="units of the speed comparison")
    parser.add_argument("--speed-rounds", type=int, default=3, help="rounds of the speed comparison")
    args = parser.parse_args()

    import torch

    from promptpress.compressor.lexical_relevance import bm25_scores
    from promptpress.compressor.query_aware import sentence_embedder
    from promptpress.compressor.training.qmsum import is_held_out

    torch.set_num_threads(args.threads)
    budgets = [float(b) for b in args.budgets.split(",")]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    weights = [float(w) for w in args.lexical_weights.split(",") if w.strip() and float(w) > 0]
    paths = sorted(args.qmsum.glob("*.json"))
    if args.meetings == "heldout":
        paths = [p for p in paths if is_held_out(p.stem, 0.1)]
    if args.sample:  # N meetings evenly spread over the sorted list (its corpora come in runs of names)
        paths = [paths[i * len(paths) // args.sample] for i in range(min(args.sample, len(paths)))]
    meetings = [read_meeting(p, args.units) for p in paths[: args.limit]]
    meetings = [m for m in meetings if m.queries]
    n_queries = sum(len(m.queries) for m in meetings)
    n_units = sum(len(m.units) for m in meetings)
    print(f"{len(meetings)} meetings, {n_queries} queries, {n_units} units ({args.units})", file=sys.stderr)

    table: dict[str, list[list[float]]] = {}  # method -> per budget, per query recall

    def add(method: str, meeting: Meeting, order: list[int], relevant: list[int]) -> None:
        rows = table.setdefault(method, [[] for _ in budgets])
        for i, budget in enumerate(budgets):
            rows[i].append(recall(meeting, order, budget, relevant))

    lexical: dict[tuple[str, str], np.ndarray] = {}  # (meeting, query) -> BM25 scaled to best = 1
    for meeting in meetings:
        for query, relevant in meeting.queries:
            bm25 = np.asarray(bm25_scores(query, meeting.units))
            lexical[(meeting.name, query)] = bm25 / (bm25.max() or 1.0)
            if weights:
                add("BM25", meeting, [int(k) for k in np.argsort(-bm25, kind="stable")], relevant)
            add("oracle", meeting, oracle_order(meeting, relevant), relevant)
            add("position", meeting, list(range(len(meeting.units))), relevant)
            rows = [[] for _ in budgets]
            for seed in range(args.seeds):
                order = list(range(len(meeting.units)))
                random.Random(f"{meeting.name}/{query}/{seed}").shuffle(order)
                for i, budget in enumerate(budgets):
                    rows[i].append(recall(meeting, order, budget, relevant))
            table.setdefault("random", [[] for _ in budgets])
            for i in range(len(budgets)):
                table["random"][i].append(statistics.fmean(rows[i]))

    speed: dict[str, tuple[float, float]] = {}
    for model in models:
        embed = sentence_embedder(model)
        embed(["warm-up: load the model before timing"])
        seconds = 0.0
        for n, meeting in enumerate(meetings, 1):
            start = time.perf_counter()
            vectors = np.asarray(embed(meeting.units))
            seconds += time.perf_counter() - start
            questions = np.asarray(embed([q for q, _ in meeting.queries]))
            for (query, relevant), q in zip(meeting.queries, questions):
                cosines = vectors @ q
                order = list(np.argsort(-cosines, kind="stable"))
                add(model, meeting, [int(k) for k in order], relevant)
                for w in weights:
                    mixed = cosines + w * lexical[(meeting.name, query)]
                    add(
                        f"{model} + {w:g} BM25",
                        meeting,
                        [int(k) for k in np.argsort(-mixed, kind="stable")],
                        relevant,
                    )
            print(f"{model}: meeting {n}/{len(meetings)}", file=sys.stderr)
        speed[model] = (n_units / seconds, sum(sum(m.tokens) for m in meetings) / seconds)
        done = ", ".join(f"{100 * statistics.fmean(rows):.1f} %" for rows in table[model])
        print(f"{model}: recall {done} ({n_units / seconds:.1f} units/s)", file=sys.stderr, flush=True)

    header = " | ".join(f"{100 * b:g} %" for b in budgets)
    print(f"\n| ranking | {header} |")
    print("|---|" + "---:|" * len(budgets))
    mixed_rows = [f"{m} + {w:g} BM25" for m in models for w in weights]
    for method in [*models, *mixed_rows, *(["BM25"] if weights else []), "position", "random", "oracle"]:
        cells = " | ".join(f"{100 * statistics.fmean(rows):.1f} %" for rows in table[method])
        print(f"| {method} | {cells} |")
    mean_tokens = sum(sum(m.tokens) for m in meetings) / n_units
    print(
        f"\nQMSum ({args.meetings} meetings, {len(meetings)}: {', '.join(m.name for m in meetings)}), "
        f"{n_queries} specific queries: relevant turns "
        f"found within X % of the meeting's tokens; units: {args.units} ({n_units}, {mean_tokens:.0f} tokens "
        f"on average); random: mean of {args.seeds} shuffles"
    )
    for model, (units_per_s, tokens_per_s) in speed.items():
        print(f"{model}: {units_per_s:.1f} units/s, {tokens_per_s:.0f} tokens/s over the run")
    sample = [u for m in meetings for u in m.units][: args.speed_units]
    if sample and len(models) > 1:  # the same units, models in turn: a ratio fair under a varying load
        rates: dict[str, list[float]] = {m: [] for m in models}
        for _ in range(args.speed_rounds):
            for model in models:
                start = time.perf_counter()
                sentence_embedder(model)(sample)
                rates[model].append(len(sample) / (time.perf_counter() - start))
        base = statistics.median(rates[models[0]])
        for model in models:
            median = statistics.median(rates[model])
            print(
                f"{model}: {median:.1f} units/s (median of {args.speed_rounds} rounds over the same "
                f"{len(sample)} units, models in turn), {median / base:.2f}x {models[0]}"
            )
    print(f"torch threads {args.threads}, batch 32")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

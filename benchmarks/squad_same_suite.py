"""Does a freshly built squad_longdoc suite hold the questions an earlier eval run measured?

    promptpress eval build-squad --out runs/squad-1x6 --questions-per-context 6 --contexts-per-article 1
    python benchmarks/squad_same_suite.py runs/squad-1x6 eval/reports/minilm-qmsum-v0/results.jsonl

Compares, for every squad_longdoc question of the results file (one row per question: method
`none`), its id, its position in the suite and its context length in words. Prints the counts and
exits 1 on any difference, so figures measured on one copy of SQuAD can be trusted on another.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from promptpress.eval.longbench import load_dataset
from promptpress.eval.report import latest_rows
from promptpress.eval.runner import read_results
from promptpress.eval.squad_longdoc import DATASET


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("suite", type=Path, help="directory holding squad_longdoc.jsonl")
    parser.add_argument("results", type=Path, help="results.jsonl of an earlier `promptpress eval run`")
    args = parser.parse_args()
    suite = load_dataset(args.suite, DATASET)
    where = {s.id: (i, s) for i, s in enumerate(suite)}
    rows = latest_rows(read_results(args.results))  # one row per question and method, as a report reads
    measured = [r for r in rows if r.get("dataset") == DATASET and r.get("method") == "none"]
    if not measured:
        print(f"{args.results} holds no {DATASET} rows of method none", file=sys.stderr)
        return 2
    missing = [r["_id"] for r in measured if r["_id"] not in where]
    moved = [r["_id"] for k, r in enumerate(measured) if r["_id"] in where and where[r["_id"]][0] != k]
    resized = [r["_id"] for r in measured if r["_id"] in where and where[r["_id"]][1].length != r["length"]]
    print(
        f"{len(measured)} questions measured; {len(suite)} in the suite; missing {len(missing)}, "
        f"at another position {len(moved)}, another context length {len(resized)}"
    )
    for name, ids in (("missing", missing), ("moved", moved), ("resized", resized)):
        if ids:
            print(f"  {name}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")
    return 1 if missing or moved or resized else 0


if __name__ == "__main__":
    sys.exit(main())

"""Structure-safe compression: what survives, what it costs, and what it changes on prose.

    python benchmarks/bench_structure.py [--rate 0.33] [--news 20] [--threads 4]

With the default model (`load_compressor()`), at `--rate`:
1. on every file of tests/data/structured (real prompts: markdown with code and tables, Python
   source, JSON documents, a log, a table document), structure on (the defaults) and off: the share of
   code lines, JSON documents and numbers the detector finds in the original that come out
   byte-exact (a kept unit covers the span and its text is in the output; a JSON document counts
   when it parses with the original's keys and non-string values), of the URLs anywhere (inside code
   and tables too) whose text is in the output, whether whole-file JSON
   still parses and keeps its keys and non-string values, the achieved rate, over-budget reports;
2. the achieved rate against the target where prose is at least half of the tokens: the LongBench
   multi_news contexts, alone and each with a fenced excerpt of render.py appended;
3. the detector's share of compression time on a ~10k-token mixed text (best of 3; timings on a
   shared machine are noisy);
4. on the first `--news` multi_news contexts (prose control): the share whose output is identical
   with structure on and off, and the agreement of keep decisions on words outside detected spans.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STRUCTURED = REPO / "tests" / "data" / "structured"
NEWS = Path(os.environ.get("PROMPTPRESS_SHARED_DATA", REPO.parent / "shared" / "data")) / "longbench"
KINDS = ("code", "json", "url", "number")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'`|]+")


def _covered(span: Any, words: list[Any]) -> bool:
    return any(w.keep and w.start <= span.start and w.end >= span.end for w in words)


def survival(text: str, result: Any) -> dict[str, list[int]]:
    """Per kind: [preserved, total] (code counted in non-blank lines, the rest in spans)."""
    from promptpress.compressor.structure import find_spans

    out: dict[str, list[int]] = {k: [0, 0] for k in KINDS}
    words = [w for w in result.words or [] if w.keep]
    for span in find_spans(text):
        if span.kind not in out:
            continue
        piece = text[span.start : span.end]
        weight = sum(1 for line in piece.splitlines() if line.strip()) if span.kind == "code" else 1
        exact = piece in result.compressed_text and _covered(span, words)
        if span.kind == "json":  # long string values compress by design: count valid, same-keyed docs
            exact = _json_kept(piece, result.compressed_text)
        out[span.kind][1] += weight
        out[span.kind][0] += weight * exact
    for match in _URL.finditer(text):  # URLs anywhere, also inside code and tables (substring check)
        url = match.group().rstrip(".,;:)]'\"`")
        out["url"][1] += 1
        out["url"][0] += url in result.compressed_text
    return out


def _shape(value: Any) -> Any:
    """Keys, numbers, booleans and nesting; strings only as 'a string'."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return "<str>" if isinstance(value, str) else value


def _json_kept(piece: str, output: str) -> bool:
    """The document (found in the output by its first line) parses and has the original's shape."""
    head = piece.splitlines()[0]
    start = output.find(head)
    if start < 0:
        return False
    try:
        value, _ = json.JSONDecoder().raw_decode(output, start)
    except ValueError:
        return False
    return _shape(value) == _shape(json.loads(piece))


def _pct(pair: list[int]) -> str:
    return f"{100 * pair[0] / pair[1]:.1f}% ({pair[0]}/{pair[1]})" if pair[1] else "-"


def structured_files(compressor: Any, rate: float) -> None:
    from promptpress.compressor import count_tokens

    print(f"## 1. tests/data/structured at rate {rate}: preserved byte-exact (structure on | off)\n")
    print("| file | tokens | code lines | JSON docs | URLs | numbers | rate on | rate off | over budget |")
    print("|---|---|---|---|---|---|---|---|---|")
    totals = {mode: {k: [0, 0] for k in KINDS} for mode in ("on", "off")}
    parses = [0, 0]
    for path in sorted(STRUCTURED.iterdir()):
        if path.name == "README.md":
            continue
        text = path.read_text(encoding="utf-8")
        row = {}
        results = {}
        for mode, structure in (("on", ()), ("off", "off")):
            results[mode] = compressor.compress(text, rate=rate, return_words=True, structure=structure)
            row[mode] = survival(text, results[mode])
            for k in KINDS:
                totals[mode][k][0] += row[mode][k][0]
                totals[mode][k][1] += row[mode][k][1]
        if path.suffix == ".json":
            parses[1] += 1
            try:
                parses[0] += _shape(json.loads(results["on"].compressed_text)) == _shape(json.loads(text))
            except ValueError:
                pass
        cells = [f"{_pct(row['on'][k])} \\| {_pct(row['off'][k])}" for k in KINDS]
        on, off = results["on"], results["off"]
        over = ", ".join(on.verbatim_tokens) if on.over_budget else "no"
        print(
            f"| {path.name} | {count_tokens(text)} | {' | '.join(cells)} | {on.rate:.3f} | {off.rate:.3f} | {over} |"
        )
    cells = [f"{_pct(totals['on'][k])} \\| {_pct(totals['off'][k])}" for k in KINDS]
    print(f"| **all** | | {' | '.join(cells)} | | | |")
    print(f"\nwhole-file JSON parses with the same keys and non-string values: {parses[0]}/{parses[1]}\n")


def _news(limit: int) -> list[str]:
    with (NEWS / "multi_news.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["context"] for line in fh][:limit]


def prose_rates(compressor: Any, rate: float, news: list[str]) -> None:
    from promptpress.compressor import count_tokens
    from promptpress.compressor.structure import find_spans

    excerpt = "\n".join((STRUCTURED / "render.py").read_text(encoding="utf-8").splitlines()[20:45])
    mixed = [f"{t}\n\n```python\n{excerpt}\n```\n" for t in news]
    print(f"## 2. achieved rate where prose is at least half the tokens (target {rate})\n")
    for name, texts in (("multi_news", news), ("multi_news + a fenced code excerpt", mixed)):
        rates, shares = [], []
        for text in texts:
            spans = find_spans(text)
            structured = count_tokens("".join(text[s.start : s.end] for s in spans))
            share = 1 - structured / max(count_tokens(text), 1)
            if share < 0.5:
                continue
            result = compressor.compress(text, rate=rate)
            rates.append(result.rate)
            shares.append(share)
        worst = max(abs(r - rate) / rate for r in rates)
        print(
            f"- {name}: {len(rates)} texts (prose {100 * min(shares):.0f}-{100 * max(shares):.0f}% of tokens): "
            f"achieved rate mean {sum(rates) / len(rates):.3f}, min {min(rates):.3f}, max {max(rates):.3f}; "
            f"worst relative error {100 * worst:.1f}%"
        )
    print()


def detector_cost(compressor: Any, rate: float, news: list[str]) -> None:
    from promptpress.compressor import count_tokens
    from promptpress.compressor.options import CompressOptions
    from promptpress.compressor.protect import protect

    parts = [(STRUCTURED / n).read_text(encoding="utf-8") for n in ("readme.md", "render.py")] + news
    text = parts[0]
    for part in parts[1:]:  # ~10k tokens: markdown with code and tables, Python source, then prose
        if count_tokens(text) >= 10_000:
            break
        text += "\n\n" + part
    policy = CompressOptions().structure_policy()
    detect = compress = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        protect(text, [], policy)
        detect = min(detect, time.perf_counter() - start)
        start = time.perf_counter()
        compressor.compress(text, rate=rate)
        compress = min(compress, time.perf_counter() - start)
    print("## 3. detector cost (best of 3; this machine runs background jobs, timings are noisy)\n")
    print(
        f"- {count_tokens(text)} tokens: detection {1000 * detect:.1f} ms of {1000 * compress:.0f} ms "
        f"compression = {100 * detect / compress:.2f}%\n"
    )


def prose_control(compressor: Any, rate: float, news: list[str]) -> None:
    from promptpress.compressor.structure import find_spans

    identical = agree = total = 0
    for text in news:
        on = compressor.compress(text, rate=rate, return_words=True)
        off = compressor.compress(text, rate=rate, return_words=True, structure="off")
        identical += on.compressed_text == off.compressed_text
        spans = find_spans(text)
        decided = {(w.start, w.end): w.keep for w in on.words or []}
        for w in off.words or []:
            if any(w.start < s.end and s.start < w.end for s in spans):
                continue
            total += 1
            agree += decided.get((w.start, w.end)) == w.keep
    print(f"## 4. prose control: multi_news, first {len(news)} contexts, rate {rate}\n")
    print(f"- output identical with structure on and off: {identical}/{len(news)}")
    print(
        f"- keep decisions agreeing on words outside detected spans: {100 * agree / total:.2f}% of {total}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=0.33)
    parser.add_argument("--news", type=int, default=20, help="multi_news contexts (prose control)")
    parser.add_argument("--threads", type=int, default=4, help="torch threads")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from promptpress.compressor import load_compressor

    compressor = load_compressor()
    news = _news(args.news)
    structured_files(compressor, args.rate)
    prose_rates(compressor, args.rate, news)
    detector_cost(compressor, args.rate, news)
    prose_control(compressor, args.rate, news)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

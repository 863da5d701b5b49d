"""QA F1 through the proxy, end to end (issue 16): openai client -> `promptpress serve --with-backend`
-> the local llama.cpp reader, on squad_longdoc prompts with the context and the question in ONE user
message.

    python benchmarks/bench_proxy_qa.py --data runs/squad-1x6 [--limit 36] [--rates 0.33,0.2]
        [--out runs/proxy-qa/results.jsonl] [--backend-threads 1] [--url http://127.0.0.1:8000]

Each question's prompt is the project's own squad_longdoc template (`promptpress.eval.longbench.
build_prompt`: instructions, `Article: <context>`, instructions, `Question: ...`, `Answer:`), sent as
one user message with the official `openai` client, once with compression off (`"promptpress":
{"compress": false}`) and once per rate (`"promptpress": {"rate": R}`). No question is given: the
proxy's `auto` rule must find it (`X-Promptpress-Question-Source: trailing`, recorded per row).
Answers are scored with the eval's QA F1 (`promptpress.eval.metrics.score_sample`); greedy, 32 new
tokens, as `promptpress eval run` reads squad_longdoc.

Without `--url` the benchmark starts `promptpress serve --with-backend` on a free port (one llama.cpp
thread by default, the compression timeout raised so a slow first compression is measured instead of
failing open, prompts logged so the compressed text can be inspected) and stops it, backend included,
however the run ends. Questions go context by context (off, then each rate) so the reader's prompt
cache serves the uncompressed context to the later questions on it. Every answer is one JSON line in
`--out`; rerunning the same command skips rows already there (resume). `--report` prints the table
from `--out` without asking anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from proxy_qa_summary import compare_eval, compressed_texts, render_table
from serve_process import ServeProcess

from promptpress.eval.longbench import Sample, build_prompt, load_dataset

DATASET = "squad_longdoc"
ROOT = Path(__file__).resolve().parents[1]


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("runs/squad-1x6"), help="suite directory")
    parser.add_argument("--limit", type=int, default=36, help="questions (file order; 0: all)")
    parser.add_argument("--offset", type=int, default=0, help="skip this many first questions")
    parser.add_argument("--rates", default="0.33,0.2", help="rates besides 'off' (comma-separated)")
    parser.add_argument("--out", type=Path, default=Path("runs/proxy-qa/results.jsonl"))
    parser.add_argument("--url", help="a running proxy (http://host:port); default: start one")
    parser.add_argument("--backend-threads", type=int, default=1, help="llama.cpp threads (default 1)")
    parser.add_argument("--compressor-threads", type=int, default=1, help="compressor threads (default 1)")
    parser.add_argument(
        "--compression-timeout", type=float, default=600.0, help="the started proxy's compression timeout (s)"
    )
    parser.add_argument("--startup-timeout", type=float, default=900.0)
    parser.add_argument("--request-timeout", type=float, default=1800.0)
    parser.add_argument("--serve-log", type=Path, help="server log (default: next to --out)")
    parser.add_argument(
        "--compare",
        type=Path,
        default=ROOT / "eval/reports/minilm-qmsum-v0/results.jsonl",
        help="a `promptpress eval run` results.jsonl to compare on the same questions",
    )
    parser.add_argument("--report", action="store_true", help="print the table from --out and exit")
    args = parser.parse_args(argv)
    if args.limit < 0 or args.offset < 0:
        parser.error("--limit and --offset must be >= 0")
    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates: not numbers: {args.rates!r}")
    if any(not 0 < r <= 1 for r in rates):
        parser.error("--rates must be in (0, 1]")
    args.modes = ["off", *(f"{r:g}" for r in rates)]
    args.serve_log = args.serve_log or args.out.with_name(args.out.stem + ".serve.log")
    return args


def select(args: argparse.Namespace) -> list[Sample]:
    samples = load_dataset(args.data, DATASET)[args.offset :]
    return samples[: args.limit] if args.limit else samples


def context_groups(samples: Sequence[Sample]) -> list[list[Sample]]:
    """Questions grouped by context, in file order (questions on one context are consecutive)."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(str(sample.extra.get("context_id", sample.context)), []).append(sample)
    return list(groups.values())


def plan(
    samples: Sequence[Sample], modes: Sequence[str], done: set[tuple[str, str]]
) -> Iterator[tuple[Sample, str]]:
    """Context by context: every question with compression off, then every question at each rate."""
    for group in context_groups(samples):
        for mode in modes:
            for sample in group:
                if (sample.id, mode) not in done:
                    yield sample, mode


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def policy_for(mode: str) -> dict[str, Any]:
    """The per-request body field: compression off, or a rate; the question is left to `auto`."""
    return {"compress": False} if mode == "off" else {"rate": float(mode)}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def ask(client: Any, model: str, sample: Sample, mode: str) -> dict[str, Any]:
    import openai

    from promptpress.eval.metrics import score_sample

    prompt = build_prompt(sample)  # the eval's squad_longdoc template: context and question in one text
    row: dict[str, Any] = {
        "_id": sample.id,
        "mode": mode,
        "context_id": sample.extra.get("context_id"),
        "answers": list(sample.answers),
        "prompt_chars": len(prompt.text),
    }
    start = time.perf_counter()
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": prompt.text}],
            max_tokens=prompt.max_new_tokens,
            temperature=0.0,
            extra_body={"promptpress": policy_for(mode)},
        )
        completion = raw.parse()
    except openai.APIError as exc:
        return {**row, "error": f"{type(exc).__name__}: {exc}"[:1000], "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    headers = raw.headers
    text = completion.choices[0].message.content or ""
    usage = completion.usage
    timings = (completion.model_extra or {}).get("timings") or {}
    return {
        **row,
        "prediction": text,
        "score": round(score_sample(DATASET, text, sample.answers), 6),
        "seconds": round(seconds, 3),
        "compression": headers.get("x-promptpress-compression"),
        "question_source": headers.get("x-promptpress-question-source"),
        "original_tokens": _int(headers.get("x-promptpress-original-tokens")),
        "compressed_tokens": _int(headers.get("x-promptpress-compressed-tokens")),
        "compression_ms": float(headers.get("x-promptpress-compression-ms") or 0.0),
        "request_id": headers.get("x-promptpress-request-id"),
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
        "cached_tokens": timings.get("cache_n"),
        "prompt_ms": timings.get("prompt_ms"),
    }


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def _stop_on_signals() -> None:
    """SIGTERM (and SIGHUP unless ignored, as under nohup) end the run through `finally`, so the server
    and its backend are stopped."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, handler)


def run(args: argparse.Namespace, samples: Sequence[Sample]) -> None:
    import openai
    from proxy_load import free_port

    done = {(r["_id"], r["mode"]) for r in read_rows(args.out) if "error" not in r}
    todo = list(plan(samples, args.modes, done))
    print(f"{len(todo)} requests to make ({len(done)} rows already in {args.out})", flush=True)
    if not todo:
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    server = None
    info: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "uptime_start": uptime(),
    }
    _stop_on_signals()
    try:
        if args.url:
            url = args.url.rstrip("/")
        else:
            env = {
                "PROMPTPRESS_COMPRESSION_TIMEOUT": str(args.compression_timeout),
                "PROMPTPRESS_COMPRESSOR_THREADS": str(args.compressor_threads),
                "PROMPTPRESS_LOG_PROMPTS": "true",  # the compressed texts, for `summary.compressed_texts`
            }
            print(f"starting promptpress serve --with-backend (log: {args.serve_log}) ...", flush=True)
            server = ServeProcess(
                free_port(), backend_threads=args.backend_threads, env=env, log_path=args.serve_log
            )
            server.start(args.startup_timeout)
            url = server.url
            info["serve"] = {"command": server.command, "env": env}
        client = openai.OpenAI(
            base_url=url + "/v1", api_key="unused", timeout=args.request_timeout, max_retries=0
        )
        model = client.models.list().data[0].id
        info.update(url=url, model=model)
        with args.out.open("a", encoding="utf-8") as fh:
            for i, (sample, mode) in enumerate(todo, 1):
                row = ask(client, model, sample, mode)
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                print(
                    f"[{i}/{len(todo)}] {sample.id} {mode:>4}: "
                    + (
                        f"F1 {row['score']:.2f} {row['seconds']:.1f} s, {row['prompt_tokens']} prompt tokens, "
                        f"{row['compression']}/{row['question_source']} -> {row['prediction'][:60]!r}"
                        if "error" not in row
                        else row["error"][:200]
                    ),
                    flush=True,
                )
    finally:
        if server is not None:
            left = server.stop()
            print(
                "server stopped" + (f"; STILL RUNNING: {left}" if left else ", no process left"), flush=True
            )
        info["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        info["uptime_end"] = uptime()
        with args.out.with_name(args.out.stem + ".runs.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(info) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    samples = select(args)
    if not samples:
        print("no questions selected", file=sys.stderr)
        return 2
    if not args.report:
        run(args, samples)
    rows = read_rows(args.out)
    texts = compressed_texts(args.serve_log) if args.serve_log.is_file() else {}
    print(render_table(rows, samples, args.modes, texts))
    if args.compare.is_file():
        print(compare_eval(args.compare, samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())

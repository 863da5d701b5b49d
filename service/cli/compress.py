"""``promptpress compress``: compress a file or stdin with the token classifier."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from promptpress.cache import open_cache
from promptpress.cache.factory import is_redis_spec
from promptpress.compressor.extras import require
from promptpress.compressor.structure import KINDS

from .args import CLIError, positive_int, rate, unescape

if TYPE_CHECKING:
    from promptpress.compressor import CompressionResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "compress",
        help="compress a text file (or stdin) with the token classifier",
        description="Compress FILE (or stdin with '-') and print the compressed text; statistics go to stderr.",
    )
    p.add_argument("file", nargs="?", default="-", help="text file to compress, '-' for stdin (default)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--rate", type=rate, default=0.5, help="fraction of tokens to keep, in (0, 1] (default 0.5)"
    )
    budget.add_argument("--target-tokens", type=positive_int, help="token budget instead of a rate")
    _add_selection_flags(p)
    _add_structure_flags(p)
    p.add_argument(
        "--split", metavar="SEP", help="split the input into several contexts at SEP (e.g. '\\n\\n\\n')"
    )
    p.add_argument(
        "--question",
        metavar="TEXT",
        help="question-aware: the paragraphs (or sentence groups) of the input share the budget by "
        "embedding relevance to TEXT, relevant ones keeping more",
    )
    p.add_argument(
        "--embedding-model",
        metavar="SPEC",
        default=None,
        help="with --question: the relevance model, package:all-minilm-l6-v2 (default, in the base "
        "install), package:all-mpnet-base-v2 (bigger; see docs/compression.md for its install), or a "
        "local sentence-transformers directory",
    )
    p.add_argument(
        "--model",
        default=None,
        help="builtin:NAME (promptpress's own; default builtin:minilm-qmsum-v0), package:NAME "
        "(`promptpress models`), a local checkpoint directory or a hub id",
    )
    p.add_argument(
        "--backend",
        choices=("onnx", "onnx-int8", "torch", "bf16", "int8", "auto"),
        default="onnx",
        help="inference path: ONNX Runtime fp32 (default; the same output as torch fp32, and once the "
        "first run has exported the model, no torch import), ONNX Runtime int8, torch fp32, torch bf16 "
        "(faster on long inputs, but it imports torch), torch int8, or auto (the Python API's default: "
        "bf16 where the CPU has native bf16, else torch)",
    )
    p.add_argument(
        "--cache", metavar="URL", help="segment cache: redis://host:port/0, memory://, disk:///path"
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument(
        "--words", action="store_true", help="with --json: include per-word probabilities and labels"
    )
    p.set_defaults(handler=run)


def _add_selection_flags(p: argparse.ArgumentParser) -> None:
    """What is always kept, and how the budget is applied."""
    p.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="TOKEN",
        help="keep every occurrence of TOKEN (repeatable; '\\n' for newline)",
    )
    p.add_argument("--force-digits", action="store_true", help="keep every word containing a digit")
    p.add_argument(
        "--drop-consecutive",
        action="store_true",
        help="collapse repeated force tokens with nothing kept between",
    )
    p.add_argument(
        "--budget",
        choices=("global", "window"),
        default="global",
        help="global budget (default) or llmlingua's per-window percentile",
    )
    p.add_argument(
        "--windowing",
        choices=("stable", "greedy"),
        default="stable",
        help="stable (default): windows cut where the text says so, so a passage scores the same in "
        "any prompt and its scores can be cached; greedy: llmlingua's full windows",
    )


def _add_structure_flags(parser: argparse.ArgumentParser) -> None:
    structure = parser.add_argument_group(
        "structure",
        "code, JSON, tables, URLs, e-mail addresses, paths, numbers and overlong tokens are found first; "
        "by default each is kept verbatim (JSON keeps keys and structure and compresses long string "
        "values; a token over 200 characters is cut to its ends around a marker). KINDS: a comma list "
        f"of {', '.join(KINDS)}",
    )
    for flag, policy, text in (
        ("--keep", "keep", "keep these kinds verbatim"),
        ("--compress", "compress", "compress these kinds word by word, as prose"),
        ("--drop", "drop", "remove these kinds from the output"),
        ("--whole", "whole", "keep or drop each span of these kinds whole, by its score like a word"),
    ):
        structure.add_argument(
            flag,
            dest=f"structure_{policy}",
            metavar="KINDS",
            type=kinds,
            action="extend",
            default=[],
            help=text,
        )
    structure.add_argument(
        "--no-structure", action="store_true", help="no structure detection: compress everything as prose"
    )


def kinds(value: str) -> list[str]:
    """argparse type: a comma list of structure kinds."""
    names = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in names if k not in KINDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown kind(s) {', '.join(unknown) or value!r}; known: {', '.join(KINDS)}"
        )
    return names


def _structure(args: argparse.Namespace) -> tuple[tuple[str, str], ...] | Literal["off"]:
    """The `structure` option from --keep/--compress/--drop/--whole/--no-structure."""
    if args.no_structure:
        return "off"
    policy: dict[str, str] = {}
    for name in ("keep", "compress", "drop", "whole"):
        for kind in getattr(args, f"structure_{name}"):
            if policy.get(kind, name) != name:
                raise CLIError(f"kind {kind!r} given to --{policy[kind]} and --{name}")
            policy[kind] = name
    return tuple(policy.items())


def _read_input(name: str) -> str:
    if name == "-":
        data = sys.stdin.buffer.read()
        source = "stdin"
    else:
        path = Path(name)
        if not path.exists():
            raise CLIError(f"{name}: no such file")
        if path.is_dir():
            raise CLIError(f"{name}: is a directory")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CLIError(f"{name}: cannot read: {exc.strerror or exc}") from exc
        source = name
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CLIError(f"{source}: not valid UTF-8 text (byte {exc.start})") from exc
    if not text.strip():
        raise CLIError(f"{source}: input is empty")
    return text


def run(args: argparse.Namespace) -> int:
    if args.backend.startswith("onnx"):
        require("the ONNX backends (--backend onnx, onnx-int8)", "fast")
    if args.cache and is_redis_spec(args.cache):
        require("the Redis cache (--cache redis://...)", "redis")
    if args.embedding_model is not None and args.question is None:
        raise CLIError("--embedding-model chooses the relevance model of --question: give --question too")
    text = _read_input(args.file)
    from promptpress.compressor import AssetError, ModelError, OptionsError, load_compressor
    from promptpress.compressor.options import CompressOptions

    contexts: list[str] | str = text.split(unescape(args.split)) if args.split else text
    cache = None
    if args.cache:
        cache = open_cache(args.cache)
    try:
        compressor = load_compressor(args.model, backend=args.backend, cache=cache)
    except (AssetError, ModelError) as exc:
        raise CLIError(str(exc)) from exc
    try:
        options = CompressOptions(
            rate=args.rate,
            target_tokens=args.target_tokens,
            force_tokens=tuple(unescape(t) for t in args.force),
            force_reserve_digit=args.force_digits,
            drop_consecutive=args.drop_consecutive,
            budget=args.budget,
            windowing=args.windowing,
            return_words=args.words,
            structure=_structure(args),
        ).validate()
        if args.question is not None:
            if args.budget != "global":
                raise CLIError("--question needs --budget global (the question sets each context's budget)")
            from promptpress.compressor.query_aware import (
                DEFAULT_EMBEDDING_MODEL,
                QuestionAwareCompressor,
                sentence_embedder,
            )

            embed = sentence_embedder(args.embedding_model or DEFAULT_EMBEDDING_MODEL)
            result = QuestionAwareCompressor(compressor, embed).compress_for_question(
                contexts, args.question, args.rate, options=options
            )
        else:
            result = compressor.compress(contexts, options)
    # ImportError: --question without sentence-transformers; AssetError: a missing relevance model
    except (OptionsError, ImportError, AssetError) as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        json.dump(result.to_dict(include_words=args.words), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.compressed_text + "\n")
    _print_stats(result, compressor.backend)
    return 0


def _print_stats(result: CompressionResult, backend: str) -> None:
    """The statistics line on stderr (one line; names the kinds kept verbatim when over budget)."""
    over = ""
    if result.over_budget:  # what had to be kept exceeded the budget: say which kinds
        forced_by = sorted(result.verbatim_tokens, key=lambda k: -result.verbatim_tokens[k])
        over = "; over budget, kept verbatim: " + (", ".join(forced_by) or "marked spans")
    print(
        f"promptpress: {result.original_tokens} -> {result.compressed_tokens} tokens "
        f"(rate {result.rate:.3f}, {result.ratio:.2f}x) with {result.model} [{backend}]{over}",
        file=sys.stderr,
    )

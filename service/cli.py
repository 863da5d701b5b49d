"""The ``promptpress`` command line.

``promptpress compress`` lives here; other sub-commands are registered by the module that owns them
(``register(subparsers)`` in ``service/commands.py``, ``eval/commands.py``, ...), imported lazily so
that ``promptpress --help`` stays fast and a missing optional extra disables one command only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

PLUGINS = (
    "promptpress.service.commands",
    "promptpress.compressor.commands",
    "promptpress.compressor.soft.commands",
    "promptpress.eval.commands",
)


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate must be a number in (0, 1], got {value!r}") from None
    if not 0.0 < rate <= 1.0:
        raise argparse.ArgumentTypeError(f"rate must be in (0, 1], got {value}")
    return rate


def positive_int(value: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def _add_compress(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compress",
        help="compress a text file (or stdin) with the token classifier",
        description="Compress FILE (or stdin with '-') and print the compressed text; statistics go to stderr.",
    )
    p.add_argument("file", nargs="?", default="-", help="text file to compress, '-' for stdin (default)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--rate", type=_rate, default=0.5, help="fraction of tokens to keep, in (0, 1] (default 0.5)"
    )
    budget.add_argument("--target-tokens", type=positive_int, help="token budget instead of a rate")
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
    p.add_argument("--windowing", choices=("stable", "greedy"), default="stable")
    p.add_argument(
        "--split", metavar="SEP", help="split the input into several contexts at SEP (e.g. '\\n\\n\\n')"
    )
    p.add_argument(
        "--question",
        metavar="TEXT",
        help="question-aware: the contexts (or the paragraphs of one text) share the budget by "
        "embedding relevance to TEXT, relevant ones keeping more (needs sentence-transformers)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="checkpoint: local path, package:NAME or hub id (default: the shipped model)",
    )
    p.add_argument("--backend", choices=("torch", "int8", "onnx", "onnx-int8"), default="torch")
    p.add_argument(
        "--cache", metavar="URL", help="segment cache: redis://host:port/0, memory://, disk:///path"
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument(
        "--words", action="store_true", help="with --json: include per-word probabilities and labels"
    )
    p.set_defaults(handler=_run_compress)


def _unescape(text: str) -> str:
    # backslash escapes such as "\\n" become the character; other characters stay as typed
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape") if "\\" in text else text


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


def _run_compress(args: argparse.Namespace) -> int:
    text = _read_input(args.file)
    from promptpress.compressor import AssetError, ModelError, OptionsError, load_compressor
    from promptpress.compressor.options import CompressOptions

    contexts: list[str] | str = text.split(_unescape(args.split)) if args.split else text
    cache = None
    if args.cache:
        from promptpress.cache import open_cache

        cache = open_cache(args.cache)
    try:
        compressor = load_compressor(args.model, backend=args.backend, cache=cache)
    except (AssetError, ModelError) as exc:
        raise CLIError(str(exc)) from exc
    try:
        options = CompressOptions(
            rate=args.rate,
            target_tokens=args.target_tokens,
            force_tokens=tuple(_unescape(t) for t in args.force),
            force_reserve_digit=args.force_digits,
            drop_consecutive=args.drop_consecutive,
            budget=args.budget,
            windowing=args.windowing,
            return_words=args.words,
        ).validate()
        if args.question is not None:
            if args.budget != "global":
                raise CLIError("--question needs --budget global (the question sets each context's budget)")
            from promptpress.compressor.query_aware import QuestionAwareCompressor

            result = QuestionAwareCompressor(compressor).compress_for_question(
                contexts, args.question, args.rate, options=options
            )
        else:
            result = compressor.compress(contexts, options)
    except (OptionsError, ImportError) as exc:  # ImportError: --question without sentence-transformers
        raise CLIError(str(exc)) from exc
    if args.json:
        json.dump(result.to_dict(include_words=args.words), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.compressed_text + "\n")
    print(
        f"promptpress: {result.original_tokens} -> {result.compressed_tokens} tokens "
        f"(rate {result.rate:.3f}, {result.ratio:.2f}x) with {result.model} [{args.backend}]",
        file=sys.stderr,
    )
    return 0


def _add_models(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the models shipped in packages")
    p.set_defaults(handler=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from promptpress.compressor.assets import PACKAGED
    from promptpress.compressor.model import DEFAULT_MODEL
    from promptpress.compressor.training.package import available

    def marker(spec: str) -> str:
        return " (default compressor)" if spec == DEFAULT_MODEL else ""

    for name, asset in sorted(PACKAGED.items()):
        print(f"package:{name}{marker(f'package:{name}')}\n    {asset.description}")
    for name in available():
        spec = f"builtin:{name}"
        print(f"{spec}{marker(spec)}\n    trained by promptpress (see compressor/models/README.md)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptpress", description="Prompt and context compression for LLMs."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_compress(subparsers)
    _add_models(subparsers)
    for module_name in PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except CLIError as exc:
        print(f"promptpress: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `promptpress compress ... | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())

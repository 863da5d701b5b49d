"""The ``promptpress`` command line: one module per sub-command.

Each module's ``register(subparsers)`` adds its parser using the standard library only, and its
handler imports what it needs when it runs, so ``promptpress --help`` is fast and a missing extra
turns into one line (`promptpress.compressor.extras.MissingExtra`, exit status 2) instead of a
traceback or a vanished command.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from promptpress.compressor.extras import MissingExtra

from . import compress, evaluation, models, serve, soft, train
from .args import CLIError, positive_int

__all__ = ["CLIError", "build_parser", "main", "positive_int"]

COMMANDS = (compress, models, serve, train, soft, evaluation)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptpress", description="Prompt and context compression for LLMs."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except (CLIError, MissingExtra) as exc:
        print(f"promptpress: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `promptpress compress ... | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""argparse value types shared by the sub-commands (stdlib only: parsing never loads a model)."""

from __future__ import annotations

import argparse


class CLIError(Exception):
    """A user-facing error: printed as one line without a traceback, exit status 2."""


def rate(value: str) -> float:
    """argparse type: a fraction of tokens to keep, in (0, 1]."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate must be a number in (0, 1], got {value!r}") from None
    if not 0.0 < number <= 1.0:
        raise argparse.ArgumentTypeError(f"rate must be in (0, 1], got {value}")
    return number


def positive_int(value: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def non_negative_int(value: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return number


def unescape(text: str) -> str:
    """Backslash escapes typed on a command line ("\\n") become the character; the rest stays as typed."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape") if "\\" in text else text

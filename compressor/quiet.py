"""Silence transformers' load reports, warnings and progress bars around model loads and saves.

promptpress prints its own one-line status; a newcomer's `promptpress compress` shows no "Loading
weights" bars or FutureWarnings from the libraries underneath.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No load reports, warnings or progress bars from transformers while building the checkpoint."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()

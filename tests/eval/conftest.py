"""Fixtures of the eval tests: where the shared LongBench files and the SQuAD source live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def longbench_dir() -> Path:
    """`../shared/data/longbench` next to the repository (override: PROMPTPRESS_LONGBENCH_DIR)."""
    path = Path(os.environ.get("PROMPTPRESS_LONGBENCH_DIR") or REPO.parent / "shared" / "data" / "longbench")
    assert (path / "multi_news.jsonl").is_file(), (
        f"LongBench test data not found at {path}: set PROMPTPRESS_LONGBENCH_DIR to the folder holding "
        "multi_news.jsonl (see ../shared/data/README.md)"
    )
    return path


@pytest.fixture(scope="session")
def squad_path() -> Path:
    """The verified SQuAD v1.1 dev json: PROMPTPRESS_SQUAD_JSON, or fetched once per test session
    (bigbench sdist from the package index, only the json extracted) into the promptpress cache."""
    from promptpress.eval.squad_longdoc import squad_json

    if os.environ.get("PROMPTPRESS_SQUAD_JSON"):
        return Path(os.environ["PROMPTPRESS_SQUAD_JSON"])
    return squad_json()

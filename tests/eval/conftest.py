"""Fixtures of the eval tests: where the shared LongBench files live, and a SQuAD-shaped file of real text.

The SQuAD v1.1 dev set itself is on no offline source (its PyPI copy, bigbench==1.0.0, was withdrawn
on 2026-12-04), so the suite builder is tested on a file in SQuAD's schema made from LongBench
multi_news: real news paragraphs, grouped six stories to an article, each with questions whose
answers are real spans of their paragraph (a word that occurs once in the article and the next one).
"""

from __future__ import annotations

import json
import os
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

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


def _word(token: str) -> str:
    return token.strip(string.punctuation + "“”‘’").lower()


def _paragraphs(context: str, min_words: int = 60) -> list[str]:
    """A multi_news context's news paragraphs, short ones merged with the next up to `min_words`."""
    parts = [" ".join(p.split()) for p in re.split(r"NEWLINE_CHAR|\n", context)]
    paragraphs: list[str] = []
    pending = ""
    for part in parts:
        if not part or re.fullmatch(r"Passage \d+:", part):
            continue
        pending = f"{pending} {part}".strip()
        if len(pending.split()) >= min_words:
            paragraphs.append(pending)
            pending = ""
    return paragraphs + ([pending] if pending else [])


def _questions(paragraph: str, counts: Counter[str], prefix: str) -> list[dict[str, Any]]:
    """Up to two questions on `paragraph`, each answered by a word found once in the article plus the
    word after it (punctuation at the ends stripped, as SQuAD's spans are)."""
    words = paragraph.split()
    qas = []
    for j in range(1, len(words) - 1):
        if len(qas) == 2:
            break
        if len(_word(words[j])) >= 4 and counts[_word(words[j])] == 1:
            answer = " ".join(words[j : j + 2]).strip(string.punctuation + "“”‘’")
            if not answer or answer not in paragraph:
                continue
            before = " ".join(words[max(0, j - 6) : j])
            qas.append(
                {
                    "id": f"{prefix}-{len(qas)}",
                    "question": f"Which words follow “{before}” in this story?",
                    "answers": [{"text": answer, "answer_start": paragraph.index(answer)}],
                }
            )
    return qas


def squad_shaped(longbench_dir: Path, articles: int = 4, stories_per_article: int = 6) -> dict[str, Any]:
    rows = [json.loads(line) for line in (longbench_dir / "multi_news.jsonl").open(encoding="utf-8")]
    data = []
    for a in range(articles):
        stories = rows[a * stories_per_article : (a + 1) * stories_per_article]
        paragraphs = [p for row in stories for p in _paragraphs(row["context"])]
        counts = Counter(_word(w) for p in paragraphs for w in p.split())
        data.append(
            {
                "title": f"multi_news {stories[0]['_id'][:12]}",
                "paragraphs": [
                    {"context": p, "qas": _questions(p, counts, f"mn{a}-{i}")}
                    for i, p in enumerate(paragraphs)
                ],
            }
        )
    return {"version": "1.1", "data": data}


@pytest.fixture(scope="session")
def squad_path(longbench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQuAD v1.1-shaped json of real multi_news text (see the module docstring)."""
    path = tmp_path_factory.mktemp("squad") / "squad_shaped.json"
    path.write_text(json.dumps(squad_shaped(longbench_dir)), encoding="utf-8")
    return path

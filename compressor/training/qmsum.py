"""Context / question / answer triples for distillation, from QMSum training meetings.

QMSum's specific queries come with an answer and the transcript turns that support it
(`relevant_text_span`); those turns, as ``Speaker: words`` lines, are the context. Disfluency
markers such as ``{disfmarker}`` are removed. Meetings, not queries, are split between training
and held-out data, so no held-out context was seen in training.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_MARKER = re.compile(r"\{[a-z_]+\}")
_SPACES = re.compile(r"\s+")
_PUNCT_SPACE = re.compile(r" ([,.?!;:'])")


@dataclass(frozen=True)
class QAExample:
    context: str
    question: str
    answer: str
    source: str  # meeting id and query index


def clean_turn(text: str) -> str:
    text = _MARKER.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    return _PUNCT_SPACE.sub(r"\1", text)


def is_held_out(meeting_id: str, held_out_fraction: float) -> bool:
    """Deterministic meeting-level split (a hash, so adding meetings does not reshuffle others)."""
    bucket = int(hashlib.sha256(meeting_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < held_out_fraction


def read_meeting(path: Path) -> Iterator[QAExample]:
    data = json.loads(path.read_text())
    turns = data.get("meeting_transcripts")
    if not isinstance(turns, list):
        raise ValueError(f"{path} is not a QMSum meeting (no meeting_transcripts list)")
    lines = [f"{t.get('speaker', '?')}: {clean_turn(t.get('content', ''))}" for t in turns]
    for q_index, query in enumerate(data.get("specific_query_list", [])):
        for span in query.get("relevant_text_span", [])[:1]:
            start, end = int(span[0]), int(span[1])
            context = "\n".join(line for line in lines[start : end + 1] if not line.endswith(": "))
            if context and query.get("answer"):
                yield QAExample(
                    context, query["query"].strip(), query["answer"].strip(), f"{path.stem}#{q_index}"
                )


def qmsum_examples(
    directory: str | Path, split: str = "train", held_out_fraction: float = 0.1
) -> list[QAExample]:
    """Examples of the `train` or `heldout` split of a directory of QMSum meeting JSON files."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    root = Path(directory)
    files = sorted(root.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no QMSum meeting files (*.json) in {root}")
    out: list[QAExample] = []
    for path in files:
        if is_held_out(path.stem, held_out_fraction) == (split == "heldout"):
            out.extend(read_meeting(path))
    return out


def meeting_texts(directory: str | Path) -> dict[str, list[str]]:
    """Every query, answer and topic a QMSum meeting file holds (general and specific), by meeting
    id (the file's stem): what people asked and wrote about the meeting, for label mixing."""
    root = Path(directory)
    files = sorted(root.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no QMSum meeting files (*.json) in {root}")
    out: dict[str, list[str]] = {}
    for path in files:
        data = json.loads(path.read_text())
        texts = [t.get("topic", "") for t in data.get("topic_list", [])]
        for key in ("general_query_list", "specific_query_list"):
            for query in data.get(key, []):
                texts += [query.get("query", ""), query.get("answer", "")]
        out[path.stem] = [t.strip() for t in texts if t and t.strip()]
    return out

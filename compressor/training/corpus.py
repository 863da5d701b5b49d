"""Training windows from QMSum meetings (or any folder of QMSum-format JSON files).

A meeting's turns become ``Speaker: words`` lines (disfluency markers removed, as the soft
compressor's data does); consecutive lines are packed into windows of at most `max_tokens`
encoder tokens (a turn longer than that is cut at word boundaries). Every window keeps the
QMSum specific queries whose relevant turns overlap it (query, gold answer, overlapping turns),
for question-conditioned teaching and for the answer-retention check. Meetings, never windows,
are split between training and held-out data (a hash of the meeting id, stable as files are added).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .qmsum import clean_turn, is_held_out
from .wordsplit import WordSplitter


@dataclass
class Query:
    query: str
    answer: str
    overlap: int  # turns of the window inside the query's relevant spans


@dataclass
class Window:
    id: str  # "<meeting>:<index>"
    meeting: str
    split: str  # "train" | "heldout"
    text: str
    turns: tuple[int, int]  # first and last transcript turn (inclusive)
    queries: list[Query] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        queries = [Query(**q) for q in data.get("queries", [])]
        return cls(data["id"], data["meeting"], data["split"], data["text"], tuple(data["turns"]), queries)


def meeting_files(directory: str | Path) -> list[Path]:
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {root} does not exist (QMSum meeting JSON files expected)")
    files = sorted(root.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no QMSum meeting files (*.json) in {root}")
    return files


def _pieces(line: str, turn: int, max_tokens: int, splitter: WordSplitter) -> list[tuple[int, str, int]]:
    """A line as (turn, text, tokens) pieces of at most `max_tokens` tokens each."""
    (n,) = splitter.count_tokens([line])
    if n <= max_tokens:
        return [(turn, line, n)]
    words = line.split(" ")
    pieces, start = [], 0
    per_piece = max(1, len(words) * max_tokens // n)
    while start < len(words):
        size = per_piece
        while True:
            text = " ".join(words[start : start + size])
            (count,) = splitter.count_tokens([text])
            if count <= max_tokens or size == 1:
                break
            size = max(1, size * 9 // 10)
        pieces.append((turn, text, count))
        start += size
    return pieces


def meeting_windows(
    path: Path, splitter: WordSplitter, max_tokens: int = 400, held_out_fraction: float = 0.1
) -> list[Window]:
    data = json.loads(path.read_text())
    turns = data.get("meeting_transcripts")
    if not isinstance(turns, list):
        raise ValueError(f"{path} is not a QMSum meeting (no meeting_transcripts list)")
    meeting = path.stem
    split = "heldout" if is_held_out(meeting, held_out_fraction) else "train"
    lines = [(i, f"{t.get('speaker', '?')}: {clean_turn(t.get('content', ''))}") for i, t in enumerate(turns)]
    lines = [(i, line) for i, line in lines if not line.endswith(": ")]
    counts = splitter.count_tokens([line for _, line in lines]) if lines else []
    pieces: list[tuple[int, str, int]] = []
    for (i, line), n in zip(lines, counts):
        pieces.extend([(i, line, n)] if n <= max_tokens else _pieces(line, i, max_tokens, splitter))
    spans = [
        (q, [(int(a), int(b)) for a, b in q.get("relevant_text_span", [])])
        for q in data.get("specific_query_list", [])
        if q.get("answer") and q.get("query")
    ]
    windows: list[Window] = []
    current: list[tuple[int, str, int]] = []
    total = 0

    def flush() -> None:
        if not current:
            return
        first, last = current[0][0], current[-1][0]
        window = Window(
            f"{meeting}:{len(windows):04d}",
            meeting,
            split,
            "\n".join(p[1] for p in current),
            (first, last),
        )
        for query, ranges in spans:
            overlap = sum(max(0, min(last, b) - max(first, a) + 1) for a, b in ranges)
            if overlap:
                window.queries.append(Query(query["query"].strip(), query["answer"].strip(), overlap))
        window.queries.sort(key=lambda q: -q.overlap)
        windows.append(window)

    for piece in pieces:
        extra = piece[2] + (1 if current else 0)  # the newline between lines is a token at most
        if current and total + extra > max_tokens:
            flush()
            current, total = [], 0
            extra = piece[2]
        current.append(piece)
        total += extra
    flush()
    return windows


def build_corpus(
    directory: str | Path, splitter: WordSplitter, max_tokens: int = 400, held_out_fraction: float = 0.1
) -> Iterator[Window]:
    for path in meeting_files(directory):
        yield from meeting_windows(path, splitter, max_tokens, held_out_fraction)


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with Path(path).open() as fh:
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{line_no} is not valid JSON: {exc}") from exc


def read_windows(path: str | Path) -> list[Window]:
    return [Window.from_json(r) for r in read_jsonl(path)]


def sample_windows(
    windows: list[Window], split: str, limit: int | None, seed: int = 0, prefer_queries: bool = False
) -> list[Window]:
    """Up to `limit` windows of `split`, drawn at random (seeded) across meetings; with
    `prefer_queries` the windows that carry a QMSum query come first (the retention check needs them)."""
    pool = [w for w in windows if w.split == split]
    rng = random.Random(seed)
    rng.shuffle(pool)
    if prefer_queries:
        pool.sort(key=lambda w: not w.queries)
    return pool if limit is None else pool[:limit]

"""Windows cut from real QMSum meetings."""

from __future__ import annotations

import json

from promptpress.compressor.training.corpus import meeting_files, meeting_windows, read_windows, write_jsonl
from promptpress.compressor.training.qmsum import is_held_out


def test_windows_cover_a_meeting_within_the_token_limit(qmsum_dir, splitter):
    path = meeting_files(qmsum_dir)[0]
    windows = meeting_windows(path, splitter, max_tokens=200)
    counts = splitter.count_tokens([w.text for w in windows])
    assert len(windows) > 5 and max(counts) <= 200
    assert min(counts) > 0
    # consecutive, ordered turns; every transcript word lands in some window
    assert all(a.turns[1] <= b.turns[0] for a, b in zip(windows, windows[1:]))
    meeting = json.loads(path.read_text())
    last_turn = max(i for i, t in enumerate(meeting["meeting_transcripts"]) if t["content"].strip())
    assert windows[-1].turns[1] == last_turn
    n_words = sum(len(w.text.split()) for w in windows)
    assert n_words >= 0.9 * sum(len(t["content"].split()) for t in meeting["meeting_transcripts"])
    assert all(line.split(":", 1)[0] for w in windows for line in w.text.splitlines())


def test_windows_carry_the_queries_whose_spans_overlap(qmsum_dir, splitter):
    path = meeting_files(qmsum_dir)[0]
    meeting = json.loads(path.read_text())
    windows = meeting_windows(path, splitter, max_tokens=300)
    query = meeting["specific_query_list"][0]
    a, b = (int(x) for x in query["relevant_text_span"][0])
    inside = [w for w in windows if w.turns[0] <= b and w.turns[1] >= a]
    outside = [w for w in windows if w.turns[1] < a or w.turns[0] > b]
    assert inside and all(any(q.query == query["query"].strip() for q in w.queries) for w in inside)
    assert all(q.query != query["query"].strip() for w in outside for q in w.queries)
    assert all(q.answer for w in windows for q in w.queries)


def test_split_is_by_meeting_and_round_trips(qmsum_dir, splitter, tmp_path):
    files = meeting_files(qmsum_dir)
    held = next(p for p in files if is_held_out(p.stem, 0.1))
    train = next(p for p in files if not is_held_out(p.stem, 0.1))
    windows = meeting_windows(held, splitter, 400) + meeting_windows(train, splitter, 400)
    assert {w.split for w in windows if w.meeting == held.stem} == {"heldout"}
    assert {w.split for w in windows if w.meeting == train.stem} == {"train"}
    write_jsonl(tmp_path / "c.jsonl", (w.to_json() for w in windows))
    assert read_windows(tmp_path / "c.jsonl") == windows


def test_a_turn_longer_than_a_window_is_cut(qmsum_dir, splitter):
    path = meeting_files(qmsum_dir)[0]
    windows = meeting_windows(path, splitter, max_tokens=24)
    assert max(splitter.count_tokens([w.text for w in windows])) <= 24

"""The lexical teacher, label mixing and `promptpress train mix`, on real QMSum meetings."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from promptpress.compressor.training.lexical import LexicalTeacher, lexical_scores
from promptpress.compressor.training.wordsplit import top_k_mask


def _score_of(text: str, splitter, word: str) -> float:
    enc = splitter.encode(text)
    scores = lexical_scores(text, enc.spans)
    return float(scores[enc.words().index(word)])


def test_lexical_scores_rank_names_numbers_and_rare_words_over_function_words(splitter):
    text = "Then the team met Hannibal in 1995 and they discussed the LCD remote, um, for a while."
    enc = splitter.encode(text)
    scores = dict(zip(enc.words(), lexical_scores(text, enc.spans)))
    for informative in ("Hannibal", "1995", "LCD"):
        for common in ("the", "and", "they", "a", "um", ","):
            assert scores[informative] > scores[common], (informative, common)
    # a capitalised word starting the sentence is not a name; a mid-sentence one is
    assert _score_of("Then we left.", splitter, "Then") < _score_of("we left Then.", splitter, "Then")


def test_lexical_scores_keep_spans_together(splitter):
    # "Clara" alone is a fairly common word; next to a name it rides on its neighbour's score
    text = "We drove to Santa Clara and then to the city before the night."
    enc = splitter.encode(text)
    words = enc.words()
    keep = top_k_mask(lexical_scores(text, enc.spans), 0.25)
    kept = {w for w, k in zip(words, keep) if k}
    assert {"Santa", "Clara"} <= kept


def test_lexical_teacher_labels_the_rate_share_of_every_window(qmsum_dir, splitter):
    from promptpress.compressor.training.corpus import meeting_files, meeting_windows

    teacher = LexicalTeacher(rate=0.4)
    for window in meeting_windows(meeting_files(qmsum_dir)[0], splitter, 300)[:5]:
        enc = splitter.encode(window.text)
        labels = teacher.label(enc)
        assert len(labels.keep) == enc.n_words
        assert labels.keep.sum() == round(0.4 * enc.n_words)
        kept = {w.lower() for w, k in zip(enc.words(), labels.keep) if k}
        assert not kept & {"um", "uh", ",", "."}
    with pytest.raises(ValueError):
        LexicalTeacher(rate=1.0)


def _windows(qmsum_dir, splitter, n=4):
    from promptpress.compressor.training.corpus import meeting_files, meeting_windows

    windows = meeting_windows(meeting_files(qmsum_dir)[0], splitter, 300)
    return windows[:n]


def _labelled(windows, splitter, scores_of, teacher):
    from promptpress.compressor.training.labels import LabelledWindow

    out = []
    for w in windows:
        n = splitter.encode(w.text).n_words
        scores = scores_of(n).astype(np.float32)
        out.append(LabelledWindow(w, top_k_mask(scores, 0.5), scores, {}, teacher, 1.0))
    return out


def test_mix_weighs_sources_by_rank_and_adds_the_meetings_topic_words(qmsum_dir, splitter):
    from promptpress.compressor.training.answers import answer_targets
    from promptpress.compressor.training.mix import mix_labels
    from promptpress.compressor.training.qmsum import meeting_texts

    windows = _windows(qmsum_dir, splitter)
    early = _labelled(windows, splitter, lambda n: np.arange(n)[::-1].copy(), "early")
    late = _labelled(windows[1:], splitter, lambda n: np.arange(n) * 100.0, "late")

    # only windows every source labelled; equal weights of opposite rankings cancel out
    tie = mix_labels([(early, 1.0), (late, 1.0)], rate=0.5)
    assert [r.window.id for r in tie] == [w.id for w in windows[1:]]
    assert all(np.allclose(r.scores, r.scores[0]) for r in tie)
    assert tie[0].teacher == "mix(early:1+late:1)"
    # a heavier source decides the order
    assert mix_labels([(early, 1.0), (late, 3.0)], rate=0.5)[0].keep[-1]

    topics = meeting_texts(qmsum_dir)
    window = windows[0]
    assert window.meeting in topics and len(topics[window.meeting]) > 2
    mixed = mix_labels([(early, 1.0)], topics=topics, topic_weight=1.0, rate=0.5, splitter=splitter)[0]
    words = splitter.encode(window.text).words()
    targets = answer_targets(words, topics[window.meeting])
    assert 0 < targets.sum() < len(words) // 2
    assert mixed.keep[targets].all() and mixed.keep.sum() == round(0.5 * len(words))

    held = [replace(early[0], window=replace(window, split="heldout"))]
    same = mix_labels([(held, 1.0)], topics=topics, topic_weight=1.0, rate=0.5, splitter=splitter)[0]
    assert np.array_equal(same.keep, early[0].keep)  # no topic bonus on held-out windows

    with pytest.raises(ValueError, match="splitter"):
        mix_labels([(early, 1.0)], topics=topics, topic_weight=1.0)
    with pytest.raises(ValueError):
        mix_labels([], rate=0.5)


def test_train_mix_command_writes_a_labels_file_fit_can_read(qmsum_dir, splitter, tmp_path, capsys):
    from promptpress.compressor.training.corpus import write_jsonl
    from promptpress.compressor.training.labels import read_labelled
    from promptpress.service.cli import main

    windows = _windows(qmsum_dir, splitter, 3)
    first = tmp_path / "a.jsonl"
    second = tmp_path / "b.jsonl"
    write_jsonl(
        first, (r.to_json() for r in _labelled(windows, splitter, lambda n: np.arange(n)[::-1].copy(), "a"))
    )
    write_jsonl(
        second, (r.to_json() for r in _labelled(windows, splitter, lambda n: np.arange(n) * 1.0, "b"))
    )
    out = tmp_path / "mixed.jsonl"
    code = main(
        ["train", "mix", "--labels", str(first), "--labels", f"{second}:2", "--out", str(out),
         "--data", str(qmsum_dir), "--topic-weight", "0", "--rate", "0.3"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["windows"] == 3 and summary["teacher"] == "mix(a:1+b:2)"
    records = read_labelled(out)
    assert [r.window.id for r in records] == [w.id for w in windows]
    for r in records:
        assert r.keep.sum() == round(0.3 * len(r.keep))
        assert r.keep[-1] and not r.keep[0]  # the heavier source (late words) wins

    with pytest.raises(SystemExit, match="not a number"):
        main(["train", "mix", "--labels", f"{first}:x", "--out", str(out), "--topic-weight", "0"])


def test_train_all_fits_on_topic_mixed_labels_and_exports(qmsum_dir, tmp_path, monkeypatch, capsys):
    """`train all --topic-weight` runs corpus, label, mix, fit, evaluate and export; the fit reads
    the mixed labels (the lexical teacher stands in for the 0.5B surprisal LM)."""
    from promptpress.compressor.training.labels import read_labelled
    from promptpress.compressor.training.lexical import LexicalTeacher
    from promptpress.service.cli import main, train_steps

    seen = {}

    def teacher(args, splitter):
        seen["precision"] = args.precision
        return LexicalTeacher(rate=args.rate), None

    monkeypatch.setattr(train_steps, "_teacher", teacher)
    work = tmp_path / "run"
    code = main(
        ["train", "all", "--workdir", str(work), "--data", str(qmsum_dir), "--train-windows", "4",
         "--heldout-windows", "2", "--precision", "bf16", "--topic-weight", "1", "--steps", "2",
         "--batch-size", "2", "--export", str(tmp_path / "export" / "tiny"), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    assert seen["precision"] == "bf16"
    plain = read_labelled(work / "labels.jsonl")
    mixed = read_labelled(work / "labels-mixed.jsonl")
    assert [r.window.id for r in mixed] == [r.window.id for r in plain] and len(plain) == 6
    assert mixed[0].teacher.startswith("mix(") and mixed[0].teacher.endswith("+topics:1)")
    train = [(p, m) for p, m in zip(plain, mixed) if p.window.split == "train"]
    assert any(not np.array_equal(p.keep, m.keep) for p, m in train)  # topic words moved labels
    log = (work / "model" / "train.log").read_text()
    assert '"step": 2' in log
    assert (tmp_path / "export" / "tiny.safetensors").is_file()
    assert (work / "eval.json").is_file()

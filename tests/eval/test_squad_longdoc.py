"""The SQuAD long-document suite, built from a SQuAD-shaped file of real text (tests/eval/conftest.py)."""

import json
from pathlib import Path

import pytest

from promptpress.compressor.tokens import count_tokens
from promptpress.eval import squad_longdoc as sq
from promptpress.eval import squad_source as src
from promptpress.eval.longbench import build_prompt, load_dataset
from promptpress.eval.metrics import score_sample


def test_build_two_articles(tmp_path: Path, squad_path: Path) -> None:
    cfg = sq.BuildConfig(max_articles=2, seed=3)
    path = sq.build_suite(tmp_path, cfg, squad_json_path=squad_path)
    samples = load_dataset(tmp_path, "squad_longdoc")
    squad = json.loads(squad_path.read_text())
    titles = {a["title"] for a in squad["data"][:2]}
    assert samples and {s.extra["title"] for s in samples} == titles
    contexts = {s.context for s in samples}
    assert len(contexts) >= 2
    for context in contexts:
        assert cfg.min_tokens <= count_tokens(context) <= cfg.max_tokens + 10  # joins add a token or two
    paragraphs = {p["context"].strip(): a["title"] for a in squad["data"][:2] for p in a["paragraphs"]}
    for s in samples:
        parts = s.context.split("\n\n")
        assert all(p in paragraphs for p in parts)  # whole, real paragraphs
        # the question's answer is in its context and the gold answer scores 1
        assert any(a in s.context for a in s.answers)
        assert score_sample("squad_longdoc", s.answers[0], s.answers) == 1.0
    positions = [s.extra["answer_position"] for s in samples]
    assert min(positions) < 0.34 and max(positions) > 0.66  # answers early and late in the context
    meta = json.loads(path.with_name("squad_longdoc.meta.json").read_text())
    assert meta["samples"] == len(samples) and meta["source_file"] == str(squad_path)
    # the meta names the source by its sha256, and says it is not one of the known copies of SQuAD
    assert meta["source_sha256"] == src.sha256_file(squad_path) and meta["source_verified"] is False
    prompt = build_prompt(samples[0])
    assert prompt.max_new_tokens == 32 and samples[0].input in prompt.text
    # seeded: the same config builds the same suite, another seed another one
    again = sq.build_samples(squad, cfg)
    assert [s.id for s in again] == [s.id for s in samples]
    other = sq.build_samples(squad, sq.BuildConfig(max_articles=2, seed=4))
    assert [s.id for s in other] != [s.id for s in samples]


def test_contexts_per_article_spreads_a_few_contexts_over_each_article(squad_path: Path) -> None:
    squad = json.loads(squad_path.read_text())
    full = sq.build_samples(squad, sq.BuildConfig(max_articles=4, questions_per_context=6))
    one = sq.build_samples(
        squad, sq.BuildConfig(max_articles=4, questions_per_context=6, contexts_per_article=1)
    )
    by_article = {}
    for s in one:
        by_article.setdefault(s.extra["title"], set()).add(s.extra["context_id"])
    assert len(by_article) == 4 and all(len(c) == 1 for c in by_article.values())  # every article, once
    first = squad["data"][0]["title"]
    full_first = {s.extra["context_id"] for s in full if s.extra["title"] == first}
    assert len(full_first) > 1 and by_article[first] <= full_first  # one of that article's windows
    paragraphs = {p["context"].strip(): a["title"] for a in squad["data"][:4] for p in a["paragraphs"]}
    for s in one:  # whole paragraphs of its own article, within the length bounds, up to 6 questions
        assert all(paragraphs[p] == s.extra["title"] for p in s.context.split("\n\n"))
        assert 2000 <= count_tokens(s.context) <= 4010
    counts = [sum(1 for t in one if t.extra["context_id"] == c) for c in {t.extra["context_id"] for t in one}]
    assert max(counts) == 6
    # unset, the suite is the default one: the option draws nothing from the seeded generator
    assert [s.id for s in sq.build_samples(squad, sq.BuildConfig(max_articles=4))] == [
        s.id for s in sq.build_samples(squad, sq.BuildConfig(max_articles=4, contexts_per_article=None))
    ]


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="contexts_per_article"):
        sq.BuildConfig(contexts_per_article=0).validate()
    with pytest.raises(ValueError, match="min_tokens"):
        sq.BuildConfig(min_tokens=5000, max_tokens=4000).validate()


def test_a_known_source_is_marked_verified(tmp_path: Path, squad_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(src.KNOWN, src.sha256_file(squad_path), "SQuAD v1.1 dev, test copy")
    path = sq.build_suite(tmp_path, sq.BuildConfig(max_articles=1), squad_json_path=squad_path)
    meta = json.loads(path.with_name("squad_longdoc.meta.json").read_text())
    assert meta["source_verified"] is True and meta["source"] == "SQuAD v1.1 dev, test copy"


def test_a_file_that_is_not_squad_gets_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    cases = [
        ("not json", "cannot read .* as JSON"),
        ("[]", 'no non-empty "data"'),
        ('{"data": [{"title": "t"}]}', 'article 0 needs a "title" and a "paragraphs"'),
        ('{"data": [{"title": "t", "paragraphs": [{"qas": []}]}]}', 'paragraph 0 needs "context"'),
        ('{"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": "1"}]}]}]}', '"question"'),
    ]
    for text, message in cases:
        bad.write_text(text)
        with pytest.raises(src.SourceError, match=message):
            sq.build_suite(tmp_path / "out", squad_json_path=bad)
    assert not (tmp_path / "out").exists()  # nothing half-written

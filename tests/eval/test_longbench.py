"""Loader, templates and truncation on the shared LongBench files."""

import json
from pathlib import Path

import pytest

from promptpress.eval import longbench as lb
from promptpress.eval.metrics import score_sample


def test_multi_news_loads_in_schema(longbench_dir: Path) -> None:
    samples = lb.load_dataset(longbench_dir, "multi_news")
    assert len(samples) == 200
    ids = {s.id for s in samples}
    assert len(ids) == 200
    first = samples[0]
    assert first.dataset == "multi_news" and first.language == "en"
    assert first.context.startswith("Passage 1:") and first.answers and first.answers[0]
    assert lb.load_dataset(longbench_dir, "multi_news", limit=3) == samples[:3]
    subset = lb.load_dataset(longbench_dir, "multi_news", limit=5, shuffle_seed=1)
    assert subset == lb.load_dataset(longbench_dir, "multi_news", limit=5, shuffle_seed=1)
    assert subset != samples[:5] and all(s in samples for s in subset)


def test_offset_leaves_out_the_first_samples(longbench_dir: Path) -> None:
    samples = lb.load_dataset(longbench_dir, "multi_news")
    assert lb.load_dataset(longbench_dir, "multi_news", offset=3, limit=4) == samples[3:7]
    assert lb.load_dataset(longbench_dir, "multi_news", offset=198) == samples[198:]
    seeded = lb.load_dataset(longbench_dir, "multi_news", offset=100, limit=5, shuffle_seed=1)
    assert len(seeded) == 5 and all(s in samples[100:] for s in seeded)
    with pytest.raises(lb.DatasetError, match="holds 200 samples: offset 200 leaves none"):
        lb.load_dataset(longbench_dir, "multi_news", offset=200)
    with pytest.raises(ValueError, match="offset must be >= 0"):
        lb.load_dataset(longbench_dir, "multi_news", offset=-1)


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_cli_rejects_an_offset_that_is_not_a_whole_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptpress.service.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["eval", "run", "--datasets", "multi_news", "--out", "unused", "--offset", value])
    assert exit_.value.code == 2
    assert (
        f"argument --offset: expected a whole number >= 0, got {value if value == '-1' else repr(value)}"
        in (capsys.readouterr().err)
    )


def test_prompt_and_middle_truncation(longbench_dir: Path) -> None:
    sample = lb.load_dataset(longbench_dir, "multi_news", limit=1)[0]
    tok = lb.TiktokenTokenizer()
    full = lb.build_prompt(sample)
    assert full.chat and full.max_new_tokens == 512 and not full.truncated
    assert full.text.startswith("You are given several news passages.") and sample.context in full.text
    cut = lb.build_prompt(sample, max_length=300, tokenizer=tok)
    assert cut.truncated
    assert len(tok.encode(cut.text)) <= 302  # re-tokenising the seam may merge or split a token
    assert cut.text.startswith("You are given several news passages.")
    assert cut.text.endswith("Now, write a one-page summary of all the news.\n\nSummary:")
    compressed = lb.build_prompt(sample, context="short news")
    assert "News:\nshort news\n\n" in compressed.text


def test_chinese_sets_and_retrieval_answers(longbench_dir: Path) -> None:
    qa = lb.load_dataset(longbench_dir, "multifieldqa_zh", limit=2)
    assert qa[0].language == "zh" and qa[0].input
    prompt = lb.build_prompt(qa[0])
    assert prompt.text.startswith("阅读以下文字并用中文简短回答") and qa[0].input in prompt.text
    retrieval = lb.load_dataset(longbench_dir, "passage_retrieval_zh")
    # the gold answer scores 1 with LongBench's own metric on every real sample
    assert all(score_sample("passage_retrieval_zh", s.answers[0], s.answers) == 1.0 for s in retrieval)


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(lb.DatasetError, match=r"no multi_news\.jsonl"):
        lb.load_dataset(tmp_path, "multi_news")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"input": "q", "context": "c", "_id": "1"}) + "\n")
    with pytest.raises(lb.DatasetError, match="answers"):
        lb.load_dataset(tmp_path, "bad")
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(lb.DatasetError, match=r"broken\.jsonl:1: not JSON"):
        lb.load_dataset(tmp_path, "broken")
    with pytest.raises(lb.DatasetError, match="no prompt template"):
        lb.dataset_config("my_set")
    assert lb.dataset_config("multi_news_e") == lb.dataset_config("multi_news")

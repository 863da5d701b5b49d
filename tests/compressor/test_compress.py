"""End-to-end compression: budgets, forcing, markers, multiple contexts, odd inputs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from promptpress.compressor import CompressOptions, OptionsError, count_tokens


@pytest.mark.parametrize("rate", [0.5, 0.33, 0.2])
def test_global_budget_hits_the_target_for_any_length(tiny, multi_news, rate):
    for text in (multi_news[3][:1500], multi_news[4], "\n\n".join(multi_news[:6])):
        result = tiny.compress(text, rate=rate)
        target = rate * result.original_tokens
        assert result.compressed_tokens == count_tokens(result.compressed_text)
        assert abs(result.compressed_tokens - target) <= max(0.05 * target, 2), (
            len(text),
            result.compressed_tokens,
            target,
        )


def test_target_tokens_across_contexts(tiny, multi_news):
    result = tiny.compress(multi_news[:4], target_tokens=600)
    assert abs(result.compressed_tokens - 600) <= 30
    assert len(result.contexts) == 4
    assert sum(c.original_tokens for c in result.contexts) <= result.original_tokens


@pytest.mark.parametrize("target", [100, 300, 1000])
def test_small_targets_on_markdown_stay_within_five_percent(tiny, target):
    # line breaks and paragraph gaps between kept words cost tokens the words themselves do not
    # count; a plain error-correction step oscillated and ended 5.3 % short at 300 tokens
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    text = "\n\n".join([text] * max(1, 4000 // count_tokens(text)))
    # the search itself, word by word: with structure on, the README's code and tables alone exceed
    # these targets (test_structure_compress covers that report)
    result = tiny.compress(text, target_tokens=target, structure="off")
    assert abs(result.compressed_tokens - target) <= 0.05 * target, result.compressed_tokens


def test_window_mode_misses_where_global_does_not(tiny, multi_news):
    # short windows (one sentence each) make llmlingua's per-window percentile overshoot
    text = "\n".join(re.split(r"(?<=\.) ", multi_news[5])[:60])
    window = tiny.compress(text, rate=0.2, budget="window", windowing="greedy", chunk_end_tokens=("\n",))
    global_ = tiny.compress(text, rate=0.2)
    target = 0.2 * global_.original_tokens
    assert abs(global_.compressed_tokens - target) <= 0.05 * target
    assert abs(window.compressed_tokens - target) > abs(global_.compressed_tokens - target)


def test_kept_words_are_copied_from_the_original(tiny, multi_news):
    text = multi_news[6]
    result = tiny.compress(text, rate=0.4, return_words=True)
    kept = [w for w in result.words if w.keep]
    assert kept and len(kept) < len(result.words)
    assert all(text[w.start : w.end] == w.text for w in result.words)
    # the output is the kept words, in order, with nothing else but whitespace between them
    pos = 0
    for word in kept:
        found = result.compressed_text.find(word.text, pos)
        assert found >= 0 and result.compressed_text[pos:found].strip() == ""
        pos = found + len(word.text)


def test_rate_one_returns_the_input_unchanged(tiny, multi_news):
    result = tiny.compress(multi_news[0], rate=1.0)
    assert result.compressed_text == multi_news[0]
    assert result.compressed_tokens == result.original_tokens


def test_force_tokens_survive_every_occurrence(tiny, multi_news):
    text = multi_news[7]
    force = ("\n", "Obama", "?")
    result = tiny.compress(text, rate=0.2, force_tokens=force)
    for token in force:
        assert result.compressed_text.count(token) >= text.count(token) > 0 or text.count(token) == 0
    assert result.compressed_text.count("\n") == text.count("\n")


def test_multi_token_force_string_is_one_unit(tiny):
    text = "Question: what is the capital? Answer: Paris is the capital of France. " * 8
    result = tiny.compress(text, rate=0.2, force_tokens=("Answer:",), return_words=True)
    units = [w for w in result.words if w.forced]
    assert {w.text for w in units} == {"Answer:"}
    assert result.compressed_text.count("Answer:") == 8


def test_drop_consecutive_collapses_repeated_force_tokens(tiny):
    text = "alpha beta gamma.\n\n\n\n\ndelta epsilon zeta eta theta iota kappa lambda mu nu xi."
    kept = tiny.compress(text, rate=0.3, force_tokens=("\n",))
    dropped = tiny.compress(text, rate=0.3, force_tokens=("\n",), drop_consecutive=True)
    assert kept.compressed_text.count("\n") == 5
    assert dropped.compressed_text.count("\n") < 5


def test_force_reserve_digit_keeps_numbers(tiny, multi_news):
    text = multi_news[8]
    result = tiny.compress(text, rate=0.2, force_reserve_digit=True, return_words=True)
    numbers = [w for w in result.words if any(c.isdigit() for c in w.text)]
    assert numbers and all(w.keep for w in numbers)


def test_keep_markers_keep_spans_verbatim_and_are_removed(tiny, multi_news):
    text = (
        multi_news[9][:2000]
        + " <keep>Keep THIS sentence, exactly as written!</keep> "
        + multi_news[9][2000:4000]
    )
    result = tiny.compress(text, rate=0.2)
    assert "Keep THIS sentence, exactly as written!" in result.compressed_text
    assert "<keep>" not in result.compressed_text
    unmatched = tiny.compress("an <keep> opening marker alone stays text", rate=1.0)
    assert unmatched.compressed_text == "an <keep> opening marker alone stays text"


def test_context_filter_drops_low_scoring_contexts(tiny, multi_news):
    contexts = [m[:1500] for m in multi_news[:6]]
    result = tiny.compress(contexts, rate=0.5, context_filter=True, force_contexts=(5,))
    kept = [c.kept for c in result.contexts]
    assert kept[5] and 0 < sum(kept) < 6
    scores = np.array([c.probability for c in result.contexts])
    assert min(scores[[i for i in range(5) if kept[i]]]) >= max(scores[[i for i in range(5) if not kept[i]]])
    assert all(c.text == "" for c in result.contexts if not c.kept)
    target = 0.5 * result.original_tokens
    assert abs(result.compressed_tokens - target) <= 0.05 * target


def test_empty_short_and_huge_inputs(tiny, multi_news):
    empty = tiny.compress("", rate=0.5)
    assert (empty.compressed_text, empty.original_tokens, empty.compressed_tokens) == ("", 0, 0)
    mixed = tiny.compress(["", "Short text here.", ""], rate=0.5)
    assert [c.index for c in mixed.contexts] == [0, 1, 2]
    short = tiny.compress("Hi.", rate=0.5)
    assert short.compressed_tokens <= short.original_tokens
    huge_text = "\n\n".join(multi_news) * 2  # ~60k tokens
    huge = tiny.compress(huge_text, rate=0.1)
    assert huge.original_tokens > 40000
    assert abs(huge.compressed_tokens - 0.1 * huge.original_tokens) <= 0.05 * 0.1 * huge.original_tokens


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"target_tokens": -3}, "target_tokens"),
        ({"budget": "percentile"}, "budget"),
        ({"force_tokens": "\n"}, "force_tokens"),
        ({"nonsense": 1}, "unknown option"),
    ],
)
def test_bad_options_are_rejected_clearly(tiny, overrides, message):
    with pytest.raises(OptionsError, match=message):
        tiny.compress("some text to compress", **overrides)


@pytest.mark.parametrize("bad", [b"bytes", [], [1, 2], None, 42])
def test_bad_context_types(tiny, bad):
    with pytest.raises(OptionsError):
        tiny.compress(bad)


def test_options_object_and_result_serialisation(tiny, multi_news):
    options = CompressOptions(rate=0.3, return_words=True)
    result = tiny.compress(multi_news[0][:2000], options)
    data = result.to_dict()
    assert data["words"] and data["rate"] == round(result.rate, 4)
    assert "words" not in result.to_dict(include_words=False)


def test_context_budgets_give_each_context_its_own_budget(tiny, multi_news):
    contexts = [multi_news[0][:3000], multi_news[1][:3000], multi_news[2][:3000]]
    budgets = (300, 60, 150)
    result = tiny.compress(contexts, context_budgets=budgets)
    for ctx, budget in zip(result.contexts, budgets):
        assert abs(ctx.compressed_tokens - budget) <= max(0.05 * budget, 3), (ctx.compressed_tokens, budget)
    # the same as compressing each context alone with its own target
    alone = [tiny.compress(text, target_tokens=b).compressed_text for text, b in zip(contexts, budgets)]
    assert [c.text for c in result.contexts] == alone
    with pytest.raises(OptionsError, match="entries"):
        tiny.compress(contexts, context_budgets=(10, 20))
    with pytest.raises(OptionsError, match="global"):
        tiny.compress(contexts, context_budgets=budgets, budget="window")

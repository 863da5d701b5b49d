"""The alignment of an LLM's compressed words back onto the original (hand-made cases)."""

from __future__ import annotations

import pytest

from promptpress.compressor.training.align import align, normalize, quality_filter


def kept(original: str, compressed: str, window: int = 150) -> list[str]:
    words = original.split()
    result = align(words, compressed.split(), window)
    return [w if k else "_" for w, k in zip(words, result.keep)]


def test_plain_deletion_keeps_exactly_the_remaining_words():
    assert kept("the cat sat on the mat", "cat sat mat") == ["_", "cat", "sat", "_", "_", "mat"]


def test_repeated_words_are_matched_in_order_each_once():
    # "the" twice in the compression: the two first occurrences in reading order, never the same one twice
    assert kept("the dog and the cat and the bird", "the dog the cat") == [
        "the",
        "dog",
        "_",
        "the",
        "cat",
        "_",
        "_",
        "_",
    ]
    result = align(["a", "a", "a"], ["a", "a", "a", "a"])
    assert result.keep.tolist() == [True, True, True]
    assert result.matched_to.tolist() == [0, 1, 2, -1]  # the fourth has no unused original left


def test_repeated_word_prefers_the_occurrence_after_the_previous_match():
    # the compressed "report" follows "budget", so it is the second "report" of the original
    assert kept("report first then budget report", "budget report") == ["_", "_", "_", "budget", "report"]


def test_reordered_words_are_found_by_the_backward_search():
    result = align(["alpha", "beta", "gamma", "delta"], ["gamma", "alpha", "delta"])
    assert result.keep.tolist() == [True, False, True, True]
    assert result.matched_to.tolist() == [2, 0, 3]


def test_case_and_inflection_differences_still_match():
    assert kept("The Meetings were Discussed quickly", "meeting discussing quick") == [
        "_",
        "Meetings",
        "_",
        "Discussed",
        "quickly",
    ]


def test_words_absent_from_the_original_count_as_variation():
    result = align(["we", "agreed", "on", "the", "budget"], ["we", "approved", "the", "new", "budget"])
    assert result.keep.tolist() == [True, False, False, True, True]
    assert result.variation_rate == pytest.approx(2 / 5)  # "approved", "new"
    assert result.hitting_rate == pytest.approx(3 / 5)
    assert result.matching_rate == pytest.approx(3 / 5)
    assert result.alignment_gap == pytest.approx(0.0)


def test_the_search_window_limits_how_far_a_match_may_be():
    original = ["x"] * 10 + ["target"]
    assert not align(original, ["target"], window=5).keep.any()
    assert align(original, ["target"], window=20).keep[-1]


def test_alignment_gap_counts_present_words_that_could_not_be_placed():
    # "b" occurs once in the original but twice in the compression: present, but only one placed
    result = align(["a", "b", "c"], ["b", "b"])
    assert result.hitting_rate == pytest.approx(2 / 3)
    assert result.matching_rate == pytest.approx(1 / 3)
    assert result.alignment_gap == pytest.approx(1 / 3)


def test_normalize_stems_lowercases_and_keeps_punctuation():
    assert normalize("Running") == normalize("runs") == "run"
    assert normalize("Budget,") == "budget"
    assert normalize(",") == ","
    assert normalize("3.5") == "3.5"


def test_quality_filter_drops_windows_the_teacher_did_not_compress():
    qualities = [{"variation_rate": 0.0, "alignment_gap": 0.0, "matching_rate": m} for m in (0.4, 0.99)]
    assert quality_filter(qualities, variation_quantile=1.0).tolist() == [True, False]


def test_quality_filter_drops_high_variation_and_large_gaps():
    qualities = [
        {"variation_rate": v, "alignment_gap": g} for v, g in [(0.0, 0.0), (0.1, 0.0), (0.9, 0.0), (0.0, 0.5)]
    ]
    keep = quality_filter(qualities, variation_quantile=0.7, max_gap=0.1)
    assert keep.tolist() == [True, True, False, False]


def test_bad_window_is_rejected():
    with pytest.raises(ValueError):
        align(["a"], ["a"], window=0)


def test_empty_inputs():
    result = align([], ["a"])
    assert len(result.keep) == 0 and result.variation_rate == 1.0
    assert not align(["a", "b"], []).keep.any()

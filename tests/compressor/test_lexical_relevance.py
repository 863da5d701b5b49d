"""BM25 of a question's words over one call's units, and how it joins the embeddings' cosines."""

from __future__ import annotations

import pytest

from promptpress.compressor.lexical_relevance import bm25_scores, terms
from promptpress.compressor.query_aware import QuestionAwareCompressor, split_units

UNITS = [
    "The Rhine rises in the Swiss Alps and reaches the North Sea near Rotterdam.",
    "Duisburg has the largest inland port of Europe, on the Rhine and the Ruhr.",
    "Sourdough bread is leavened by a starter of wild yeast and lactic acid bacteria.",
]


def test_bm25_rewards_shared_rare_words_and_ignores_function_words() -> None:
    scores = bm25_scores("Which city has the largest inland port?", UNITS)
    assert scores[1] > 0 and scores[0] == scores[2] == 0.0  # "largest inland port" only in unit 1
    # "Rhine" is in two units, "Ruhr" in one: the rarer word weighs more
    rhine, ruhr = bm25_scores("Rhine", UNITS), bm25_scores("Ruhr", UNITS)
    assert rhine[0] > 0 and rhine[1] > 0 and ruhr[1] > rhine[1]
    assert bm25_scores("What is the of and?", UNITS) == [0.0, 0.0, 0.0]  # only stop words
    assert bm25_scores("anything", []) == []
    assert terms("Rhine-Ruhr, 1,200 km") == ["rhine", "ruhr", "1", "200", "km"]


def test_lexical_weight_adds_scaled_bm25_to_the_cosines() -> None:
    flat = lambda texts: [[1.0, 0.0] for _ in texts]  # noqa: E731 - every unit equally similar
    question = "Which port is the largest inland port?"
    blind = QuestionAwareCompressor(object(), flat, lexical_weight=0)  # type: ignore[arg-type]
    assert blind.scores(question, UNITS) == pytest.approx([1.0, 1.0, 1.0])
    lexical = QuestionAwareCompressor(object(), flat, lexical_weight=0.2)  # type: ignore[arg-type]
    assert lexical.scores(question, UNITS) == pytest.approx([1.0, 1.2, 1.0])  # best unit: + the weight
    with pytest.raises(ValueError, match="lexical_weight"):
        QuestionAwareCompressor(object(), flat, lexical_weight=-1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="units"):
        QuestionAwareCompressor(object(), flat, units="words")  # type: ignore[arg-type]


def test_units_are_sentence_groups_within_paragraphs_or_the_paragraphs() -> None:
    long_sentence = "The committee met on Monday and discussed the budget for the next year at length. "
    paragraph_a = (long_sentence * 6).strip()  # ~500 characters: two or more groups of >= 240
    paragraph_b = "A short closing paragraph."
    text = f"{paragraph_a}\n\n{paragraph_b}"
    units, gaps = split_units(text)
    assert len(units) >= 3 and units[-1] == paragraph_b and gaps[-1] == "\n\n"  # never across the break
    assert all(len(u) >= 240 for u in units[:-1])
    assert "".join(g + u for g, u in zip(gaps, units)) == text  # the text's own whitespace puts it back
    four = "\n\n".join([paragraph_a, paragraph_b, paragraph_a, paragraph_b])
    assert split_units(four, units="paragraphs")[0] == [paragraph_a, paragraph_b, paragraph_a, paragraph_b]
    assert split_units(text, units="paragraphs") == (units, gaps)  # < 4 paragraphs: sentence groups

"""Question-aware budgets over a list of contexts, with a given embedding function and the default one."""

from __future__ import annotations

import pytest

from promptpress.compressor import load_compressor
from promptpress.compressor.options import CompressOptions, OptionsError
from promptpress.compressor.query_aware import (
    DEFAULT_EMBEDDING_MODEL,
    QuestionAwareCompressor,
    paragraphs,
    question_aware,
)
from promptpress.compressor.tokens import count_tokens

# three short documents on unrelated subjects (written for this test)
DOCS = [
    "The Rhine rises in the Swiss Alps and flows north through Germany and the Netherlands before it "
    "reaches the North Sea near Rotterdam. Duisburg on its lower course has a large inland port.",
    "Sourdough bread is leavened by a starter of wild yeast and lactic acid bacteria, fed with flour "
    "and water every day; a long, cool fermentation gives the loaf its sour taste.",
    "The violin has four strings tuned in perfect fifths, and its bow is strung with horsehair coated "
    "in rosin. Stradivari built his most famous instruments in Cremona.",
]


@pytest.fixture(scope="module")
def classifier():  # type: ignore[no-untyped-def]
    return load_compressor()


def test_the_embedding_decides_which_context_keeps_its_words(classifier) -> None:  # type: ignore[no-untyped-def]
    # a hand-made embedding: the question points at whichever document says "violin"
    def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] if ("violin" in t or t.startswith("Q:")) else [0.0, 1.0] for t in texts]

    qa = QuestionAwareCompressor(classifier, embed)
    result = qa.compress_for_question(DOCS, "Q: which instrument?", 0.4)
    assert [c.index for c in result.contexts] == [0, 1, 2]
    shares = [c.compressed_tokens / c.original_tokens for c in result.contexts]
    assert shares[2] > 0.8 and max(shares[:2]) < 0.3
    assert "Stradivari" in result.compressed_text
    total = sum(count_tokens(d) for d in DOCS)
    assert abs(result.compressed_tokens - 0.4 * total) <= 0.1 * total


def test_default_embedding_and_a_token_target(classifier) -> None:  # type: ignore[no-untyped-def]
    qa = QuestionAwareCompressor(classifier)
    result = qa.compress_for_question(
        "\n\n".join(DOCS), "How is sourdough bread leavened?", options=CompressOptions(target_tokens=40)
    )
    assert len(result.contexts) == 3  # the paragraphs of one text
    assert max(result.contexts, key=lambda c: c.compressed_tokens).index == 1
    assert abs(result.compressed_tokens - 40) <= 8


def test_bad_input_is_an_options_error(classifier) -> None:  # type: ignore[no-untyped-def]
    qa = QuestionAwareCompressor(classifier, lambda texts: [[1.0]] * len(texts))
    with pytest.raises(OptionsError, match="question must be a string"):
        qa.compress_for_question(DOCS, None)  # type: ignore[arg-type]
    with pytest.raises(OptionsError, match="rate must be in"):
        qa.compress_for_question(DOCS, "q", 1.5)
    with pytest.raises(OptionsError, match="context_budgets"):
        qa.compress_for_question(DOCS, "q", options=CompressOptions(context_budgets=(1, 2, 3)))
    with pytest.raises(OptionsError, match="budget='global'"):
        qa.compress_for_question(DOCS, "q", options=CompressOptions(budget="window"))
    with pytest.raises(ValueError, match="temperature"):
        QuestionAwareCompressor(classifier, temperature=0)


def test_paragraphs() -> None:
    assert paragraphs("a\n\n  b c \n \n\nd\n") == ["a", "b c", "d"]
    assert paragraphs("one line\nanother") == ["one line\nanother"]


def test_a_second_question_on_the_same_context_reuses_scores_and_embeddings(tiny_checkpoint, multi_news):
    # the segment cache keeps each window's keep probabilities, the embedding cache each unit's
    # vector: a later question costs one question embedding and the selection, no model call
    from promptpress.cache import MemoryCache
    from promptpress.compressor import TokenClassifierCompressor

    compressor = TokenClassifierCompressor(tiny_checkpoint, cache=MemoryCache())
    calls = []
    keep_probs = compressor.runtime.keep_probs
    compressor.runtime.keep_probs = lambda *a: calls.append(1) or keep_probs(*a)  # type: ignore[method-assign]
    embedded: list[str] = []

    def embed(texts: list[str]) -> list[list[float]]:
        embedded.extend(texts)
        return [[float(len(t) % 7), 1.0] for t in texts]

    qa = QuestionAwareCompressor(compressor, embed)
    context = multi_news[0]
    first = qa.compress_for_question(context, "Who was arrested?", 0.33)
    n_units = len(embedded) - 1
    assert calls and n_units >= 4
    calls.clear()
    embedded.clear()
    second = qa.compress_for_question(context, "When did it happen?", 0.33)
    assert calls == []  # every window was scored for the first question
    assert embedded == ["When did it happen?"]  # only the new question is embedded
    assert first.original_tokens == second.original_tokens


def test_few_paragraphs_fall_back_to_sentence_groups_and_keep_the_text_shape(classifier):
    article = " ".join(DOCS)  # one paragraph of six sentences
    qa = QuestionAwareCompressor(classifier)
    result = qa.compress_for_question(article, "Who built famous violins in Cremona?", 0.5)
    assert len(result.contexts) >= 2  # sentence groups, not one paragraph
    assert "\n\n" not in result.compressed_text  # put back together with the original spaces
    assert "Stradivari" in result.compressed_text
    assert all(c.relevance is not None for c in result.contexts)


def test_one_question_aware_compressor_per_compressor_and_relevance_model(classifier):
    default = question_aware(classifier)
    assert question_aware(classifier, DEFAULT_EMBEDDING_MODEL) is default  # its embedding cache is shared
    mpnet = question_aware(classifier, "package:all-mpnet-base-v2")
    assert mpnet is not default and question_aware(classifier, "package:all-mpnet-base-v2") is mpnet
    question = "Who built famous violins in Cremona?"
    by_mpnet = mpnet.compress_for_question("\n\n".join(DOCS), question, 0.4)
    assert len(mpnet.embed([question])[0]) == 768 and len(default.embed([question])[0]) == 384
    best = max(by_mpnet.contexts, key=lambda c: c.relevance or 0.0)
    assert best.index == 2 and "Stradivari" in by_mpnet.compressed_text


def test_numbers_of_off_topic_units_are_whole_but_not_forced(classifier) -> None:  # type: ignore[no-untyped-def]
    """By default numbers are kept or dropped whole by their score: an off-topic unit full of them
    does not take the relevant unit's budget. With ``numbers="keep"`` they are always kept, the
    unit overruns its share and the excess comes out of the others: the call still meets its rate."""
    figures = " ".join(f"In {1900 + i} the port handled {3 * i + 1}.{i} million tonnes." for i in range(12))
    violin = " ".join([DOCS[2], DOCS[2].replace("Cremona", "Mantua"), DOCS[2].replace("four", "five")])
    docs = [figures, DOCS[1], violin]

    def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] if ("violin" in t or t.startswith("Q:")) else [0.0, 1.0] for t in texts]

    total = sum(count_tokens(d) for d in docs)
    whole = QuestionAwareCompressor(classifier, embed).compress_for_question(
        docs, "Q: which instrument?", 0.4
    )
    kept = QuestionAwareCompressor(classifier, embed, numbers="keep")
    forced = kept.compress_for_question(docs, "Q: which instrument?", 0.4)
    for result in (whole, forced):
        assert result.compressed_tokens <= 0.4 * total * 1.05
    assert "1911" in forced.contexts[0].text  # kept: the numbers of the off-topic text stay ...
    assert (
        forced.contexts[2].compressed_tokens < whole.contexts[2].compressed_tokens
    )  # ... at the violin's cost
    assert whole.contexts[0].compressed_tokens < forced.contexts[0].compressed_tokens
    words = whole.contexts[0].text.split()
    for i in range(12):  # whole or not at all, never cut
        assert f"{3 * i + 1}.{i}" in words or f"{3 * i + 1}" not in words
    # the call's options win: a policy named for numbers is used as given
    named = QuestionAwareCompressor(classifier, embed).compress_for_question(
        docs, "Q: which instrument?", 0.4, options=CompressOptions(structure={"number": "keep"})
    )
    assert named.compressed_text == forced.compressed_text
    # without sharing, each unit meets only its own share: forced numbers overrun the call's budget
    budget = kept.budgets(docs, kept.scores("Q: which instrument?", docs), CompressOptions(rate=0.4))
    apart = classifier.compress(docs, CompressOptions(context_budgets=budget))
    assert apart.compressed_tokens > 0.4 * total * 1.1
    assert forced.contexts[2].compressed_tokens < apart.contexts[2].compressed_tokens
    with pytest.raises(ValueError, match="numbers"):
        QuestionAwareCompressor(classifier, embed, numbers="verbatim")  # type: ignore[arg-type]

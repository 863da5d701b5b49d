"""`classifier_qa`: the paragraphs of a context share its budget by relevance to the question."""

from __future__ import annotations

import pytest
import topic_paragraphs

from promptpress.compressor.query_aware import QuestionAwareCompressor
from promptpress.compressor.tokens import count_tokens
from promptpress.eval import methods as mt
from promptpress.eval.runner import _CompressionMemo

PARAGRAPHS = topic_paragraphs.PARAGRAPHS[:3]
CONTEXT = "\n\n".join(PARAGRAPHS)
QUESTION = topic_paragraphs.RHINE_QUESTION


@pytest.fixture(scope="module")
def method() -> mt.Method:
    return mt.make_method("classifier_qa")


def test_the_relevant_paragraph_keeps_more_of_its_words(method: mt.Method) -> None:
    assert method.question_aware and not mt.make_method("truncate").question_aware
    assert isinstance(method.compressor, mt.QuestionAware)
    result = method.compressor.compress_for_question(CONTEXT, QUESTION, 0.4)
    assert len(result.contexts) == 3
    shares = [c.compressed_tokens / c.original_tokens for c in result.contexts]
    assert shares[0] > 0.6 and shares[0] > 2 * max(shares[1:])
    assert "Duisburg" in result.compressed_text
    total = sum(count_tokens(p) for p in PARAGRAPHS)
    assert abs(result.compressed_tokens - 0.4 * total) <= 0.1 * total


def test_one_paragraph_or_no_question_is_the_plain_classifier(method: mt.Method) -> None:
    plain = mt.make_method("classifier").compressor
    assert plain is not None and method.compressor is not None
    one = PARAGRAPHS[0]
    qa = method.compressor.compress_for_question(one, QUESTION, 0.5)  # type: ignore[attr-defined]
    assert qa.compressed_text == plain.compress(one, rate=0.5).compressed_text
    blind = method.compressor.compress_for_question(CONTEXT, " ", 0.5)  # type: ignore[attr-defined]
    assert blind.compressed_text == plain.compress(CONTEXT, rate=0.5).compressed_text


def test_compressions_are_reused_per_question(method: mt.Method) -> None:
    memo = _CompressionMemo()
    first = memo.get(method, 0.4, CONTEXT, QUESTION)
    again = memo.get(method, 0.4, CONTEXT, QUESTION)
    other = memo.get(method, 0.4, CONTEXT, "How is sourdough bread leavened?")
    assert not first.reused and again.reused and again.text == first.text
    assert not other.reused and other.text != first.text


def test_a_sample_without_a_question_is_compressed_plainly(method: mt.Method) -> None:
    # summarisation sets (multi_news) have no question: classifier_qa used to call a `compress` that
    # QuestionAwareCompressor does not have
    from promptpress.eval.runner import _compress

    plain = mt.make_method("classifier")
    ours = _compress(method, 0.4, CONTEXT, None)
    reference = _compress(plain, 0.4, CONTEXT, None)
    assert ours.text == reference.text and ours.compressed_tokens < ours.original_tokens


def test_the_relevance_model_is_part_of_the_method_spec() -> None:
    spec = "classifier_qa@package:all-mpnet-base-v2"
    mpnet = mt.make_method(spec)
    assert mpnet.name == spec and mpnet.question_aware
    assert isinstance(mpnet.compressor, QuestionAwareCompressor)
    assert len(mpnet.compressor.embed([QUESTION])[0]) == 768  # all-mpnet-base-v2, not MiniLM (384)
    result = mpnet.compressor.compress_for_question(CONTEXT, QUESTION, 0.4)
    assert (
        max(result.contexts, key=lambda c: c.relevance or 0.0).index == 0
        and "Duisburg" in result.compressed_text
    )
    names = [m.name for m in mt.parse_methods(f"classifier_qa,{spec}")]
    assert names == ["classifier_qa", spec]  # both relevance models side by side in one run
    for bad, message in (
        ("classifier@package:all-mpnet-base-v2", "classifier_qa only"),
        ("classifier_qa@", "classifier_qa only"),
        ("classifier_qa@package:nope", "unknown packaged model"),
    ):
        with pytest.raises(mt.MethodError, match=message):
            mt.make_method(bad)

"""LongBench metrics on hand-computed cases."""

import pytest

from promptpress.eval import metrics as m


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("The Denver Broncos", "Denver Broncos", 1.0),  # articles and case are normalised away
        ("Denver Broncos won!", "Denver Broncos", 0.8),  # P=2/3, R=1
        ("the cat sat", "a dog sat", 0.5),  # "cat sat" vs "dog sat": P=R=1/2
        ("nothing in common", "Denver", 0.0),
        ("", "Denver", 0.0),
    ],
)
def test_qa_f1(prediction: str, reference: str, expected: float) -> None:
    assert m.qa_f1_score(prediction, reference) == pytest.approx(expected)


def test_qa_f1_zh() -> None:
    # jieba: 中国/的/首都/是/北京 vs 北京 -> P=1/5, R=1, F1=1/3; punctuation tokens are dropped
    assert m.qa_f1_zh_score("中国的首都是北京。", "北京") == pytest.approx(1 / 3)
    assert m.qa_f1_zh_score("北京！", "北京") == pytest.approx(1.0)
    assert m.qa_f1_zh_score("上海", "北京") == 0.0


def test_rouge_l_en() -> None:
    # LCS(the cat sat on the mat, the cat is on the mat) = 5 of 6 tokens each side
    assert m.rouge_score("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    assert m.rouge_score("The Cat.", "the cat") == pytest.approx(1.0)
    assert m.rouge_score("", "the cat") == 0.0


def test_rouge_l_zh() -> None:
    # jieba: 我/爱/北京/天安门 vs 我/爱/北京 -> LCS 3, P=3/4, R=1, F=6/7
    assert m.rouge_zh_score("我爱北京天安门", "我爱北京") == pytest.approx(6 / 7)


def test_classification() -> None:
    classes = ["Location", "Description", "Entity", "event", "sports event"]
    assert m.classification_score("Location", "Location", all_classes=classes) == 1.0
    assert m.classification_score("Location or Description", "Location", all_classes=classes) == 0.5
    assert m.classification_score("no idea", "Location", all_classes=classes) == 0.0
    # "event" is a strict substring of the reference "sports event": not counted as a second match
    assert m.classification_score("sports event", "sports event", all_classes=classes) == 1.0
    assert m.classification_score("event", "sports event", all_classes=classes) == 0.0


def test_retrieval_and_count() -> None:
    assert m.retrieval_score("Paragraph 3", "Paragraph 3") == 1.0
    assert m.retrieval_score("Paragraph 3 or Paragraph 5", "Paragraph 3") == 0.5
    assert m.retrieval_score("I cannot tell", "Paragraph 3") == 0.0
    assert m.retrieval_zh_score("答案是段落12", "段落12") == 1.0
    assert m.retrieval_zh_score("段落1", "段落12") == 0.0
    assert m.count_score("There are 7 unique paragraphs out of 10", "7") == 0.5
    with pytest.raises(ValueError, match="does not match"):
        m.retrieval_score("Paragraph 3", "three")


def test_code_similarity() -> None:
    # the first line without ``` / # / // is compared
    assert m.code_sim_score("```python\nx = foo(1)\n```", "x = foo(1)") == 1.0
    # Indel ratio: 1 - 2 / (10 + 12)
    assert m.code_sim_score("# add\nreturn a+b", "return a + b") == pytest.approx(1 - 2 / 22)


def test_scorer_max_over_references_and_first_line_rule() -> None:
    assert m.score_sample("hotpotqa", "Paris", ["London", "Paris"]) == 1.0
    # triviaqa keeps only the first line of the prediction
    assert m.score_sample("triviaqa", "\nParis\nQuestion: what else", ["Paris"]) == 1.0
    assert m.score_sample("hotpotqa", "Paris\nQuestion: what else", ["Paris"]) < 1.0
    assert m.score_dataset("hotpotqa", ["Paris", "Rome"], [["Paris"], ["London"]]) == 50.0
    with pytest.raises(TypeError):
        m.score_sample("hotpotqa", "Paris", "Paris")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no metric"):
        m.score_sample("unknown_set", "x", ["x"])


def test_every_longbench_dataset_has_a_metric_and_template() -> None:
    from promptpress.eval.longbench import LONGBENCH_DATASETS, packaged_configs

    configs = packaged_configs()
    for name in LONGBENCH_DATASETS:
        assert name in m.DATASET2METRIC and name in configs
    assert len(LONGBENCH_DATASETS) == 21
    assert configs["multi_news"].max_new_tokens == 512 and configs["trec"].chat is False


def test_answer_kept_counts_normalised_answer_words_in_the_context() -> None:
    context = "In 1879, the Edison lamp lit Menlo Park; Edison's rivals waited."
    assert m.answer_kept("squad_longdoc", context, ["Menlo Park"]) == 1.0
    assert m.answer_kept("squad_longdoc", "In 1879 the lamp lit Park", ["Menlo Park"]) == 0.5
    # case, punctuation and articles are normalised away, as the QA F1 metric does
    assert m.answer_kept("squad_longdoc", "the lamp, in MENLO park.", ["The Menlo Park"]) == 1.0
    # a multiset: one "new" in the context covers one of the two in the answer
    assert m.answer_kept("hotpotqa", "New York is big", ["New New York"]) == pytest.approx(2 / 3)
    # the best reference counts; no reference, nothing kept
    assert m.answer_kept("squad_longdoc", "lamp 1879", ["Menlo Park", "1879"]) == 1.0
    assert m.answer_kept("squad_longdoc", "lamp", []) == 0.0
    assert m.answer_kept("multifieldqa_zh", "他在北京大学读书", ["北京大学"]) == 1.0
    assert m.answer_kept("multifieldqa_zh", "他在上海读书", ["北京大学"]) == 0.0
    # summaries, classes and code are not spans of the context
    assert m.answer_kept("multi_news", "any text", ["a summary"]) is None
    assert m.answer_kept("trec", "any text", ["Location"]) is None

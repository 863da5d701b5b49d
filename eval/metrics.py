"""LongBench's metrics, reimplemented (THUDM/LongBench `metrics.py` and `eval.py`).

Every metric takes ``(prediction, ground_truth, *, all_classes=...)`` and returns a value in [0, 1];
`score_sample` takes the maximum over a sample's reference answers and `score_dataset` reports the
mean x 100, as LongBench's `scorer` does.

Deliberate differences from the original, all documented where they occur:
- ROUGE-L uses Google's `rouge-score` (LCS over the whole text) instead of the unmaintained `rouge`
  package (summary-level LCS over "."-split sentences); English text is lower-cased and tokenised by
  `rouge-score`'s default tokenizer, Chinese text by jieba.
- Fuzzy ratios come from `rapidfuzz` (`fuzz.ratio`, the same formula as `fuzzywuzzy`'s).
- `classification_score` drops partial matches with a list comprehension (the original removes items
  from the list it iterates, which can skip one); like the original in effect, a prediction that names
  no class scores 0 (the original's fallback branch is unreachable: it tests ``list != 0``).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

Metric = Callable[..., float]

_ZH_PUNCTUATION = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
_EN_PUNCTUATION = frozenset(string.punctuation)
_ALL_PUNCTUATION = frozenset(string.punctuation + _ZH_PUNCTUATION)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"\d+")

# Datasets whose prediction is cut to its first non-empty line before scoring (LongBench eval.py).
FIRST_LINE_DATASETS = frozenset({"trec", "triviaqa", "samsum", "lsht"})


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _EN_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_zh_answer(text: str) -> str:
    """Lower case, drop Chinese and ASCII punctuation and all whitespace."""
    return "".join("".join(ch for ch in text.lower() if ch not in _ALL_PUNCTUATION).split())


def _jieba_cut(text: str) -> list[str]:
    import jieba

    jieba.setLogLevel(60)  # silence "Building prefix dict..." on first use
    return list(jieba.cut(text, cut_all=False))


def f1_tokens(prediction: Sequence[str], ground_truth: Sequence[str]) -> float:
    """Bag-of-tokens F1 between two token lists."""
    common = Counter(prediction) & Counter(ground_truth)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction)
    recall = same / len(ground_truth)
    return 2 * precision * recall / (precision + recall)


def _qa_words(text: str) -> list[str]:
    return normalize_answer(text).split()


def _qa_zh_words(text: str) -> list[str]:
    return [t for t in (normalize_zh_answer(tok) for tok in _jieba_cut(text)) if t]


def qa_f1_score(prediction: str, ground_truth: str, **_: Any) -> float:
    return f1_tokens(_qa_words(prediction), _qa_words(ground_truth))


def qa_f1_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    return f1_tokens(_qa_zh_words(prediction), _qa_zh_words(ground_truth))


class _WhitespaceTokenizer:
    """rouge-score tokenizer for text already split into words (jieba output for Chinese)."""

    def tokenize(self, text: str) -> list[str]:
        return text.lower().split()


@lru_cache(maxsize=2)
def _rouge_scorer(chinese: bool) -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_WhitespaceTokenizer() if chinese else None)


def rouge_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """ROUGE-L F-measure (rouge-score's default English tokenizer: lower case, [a-z0-9]+ words)."""
    if not prediction.strip() or not ground_truth.strip():
        return 0.0
    return float(_rouge_scorer(False).score(ground_truth, prediction)["rougeL"].fmeasure)


def rouge_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """ROUGE-L F-measure over jieba words."""
    pred = " ".join(_jieba_cut(prediction))
    ref = " ".join(_jieba_cut(ground_truth))
    if not pred.strip() or not ref.strip():
        return 0.0
    return float(_rouge_scorer(True).score(ref, pred)["rougeL"].fmeasure)


def _share_of_numbers(prediction: str, target: str) -> float:
    """Fraction of the numbers in `prediction` that equal `target` (0 when it has no number)."""
    numbers = _NUMBER.findall(prediction)
    if not numbers:
        return 0.0
    return sum(n == target for n in numbers) / len(numbers)


def count_score(prediction: str, ground_truth: str, **_: Any) -> float:
    return _share_of_numbers(prediction, str(ground_truth))


def _retrieval(pattern: str, prediction: str, ground_truth: str) -> float:
    match = re.search(pattern, ground_truth)
    if match is None:
        raise ValueError(f"reference answer {ground_truth!r} does not match {pattern!r}")
    return _share_of_numbers(prediction, match.group(1))


def retrieval_score(prediction: str, ground_truth: str, **_: Any) -> float:
    return _retrieval(r"Paragraph (\d+)", prediction, ground_truth)


def retrieval_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    return _retrieval(r"段落(\d+)", prediction, ground_truth)


def code_sim_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """Fuzzy ratio between the first code-looking line of the prediction and the reference."""
    from rapidfuzz import fuzz

    line = next(
        (
            ln
            for ln in prediction.lstrip("\n").split("\n")
            if "`" not in ln and "#" not in ln and "//" not in ln
        ),
        "",
    )
    return float(fuzz.ratio(line, ground_truth)) / 100


def classification_score(
    prediction: str, ground_truth: str, *, all_classes: Iterable[str] = (), **_: Any
) -> float:
    """1/k when the reference is among the k class names found in the prediction, else 0.

    Class names that are a strict substring of the reference do not count as matches.
    """
    matches = [c for c in all_classes if c in prediction]
    matches = [c for c in matches if not (c in ground_truth and c != ground_truth)]
    return 1.0 / len(matches) if ground_truth in matches else 0.0


DATASET2METRIC: dict[str, Metric] = {
    "narrativeqa": qa_f1_score,
    "qasper": qa_f1_score,
    "multifieldqa_en": qa_f1_score,
    "multifieldqa_zh": qa_f1_zh_score,
    "hotpotqa": qa_f1_score,
    "2wikimqa": qa_f1_score,
    "musique": qa_f1_score,
    "dureader": rouge_zh_score,
    "gov_report": rouge_score,
    "qmsum": rouge_score,
    "multi_news": rouge_score,
    "vcsum": rouge_zh_score,
    "trec": classification_score,
    "triviaqa": qa_f1_score,
    "samsum": rouge_score,
    "lsht": classification_score,
    "passage_retrieval_en": retrieval_score,
    "passage_count": count_score,
    "passage_retrieval_zh": retrieval_zh_score,
    "lcc": code_sim_score,
    "repobench-p": code_sim_score,
    # promptpress's own long-document suite (see squad_longdoc.py)
    "squad_longdoc": qa_f1_score,
    # QMSum's specific queries over their relevant turns, held-out meetings (see qmsum_qa.py)
    "qmsum_heldout": qa_f1_score,
}


def metric_for(dataset: str) -> Metric:
    try:
        return DATASET2METRIC[dataset]
    except KeyError:
        known = ", ".join(sorted(DATASET2METRIC))
        raise KeyError(f"no metric for dataset {dataset!r}; known datasets: {known}") from None


def postprocess_prediction(dataset: str, prediction: str) -> str:
    """LongBench's first-line rule: few-shot datasets keep only the prediction's first line."""
    if dataset in FIRST_LINE_DATASETS:
        return prediction.lstrip("\n").split("\n")[0]
    return prediction


def score_sample(
    dataset: str, prediction: str, answers: Sequence[str], all_classes: Sequence[str] | None = None
) -> float:
    """Best score of `prediction` over the reference `answers`, in [0, 1]."""
    if isinstance(answers, str):
        raise TypeError("answers must be a list of reference strings, not one string")
    metric = metric_for(dataset)
    prediction = postprocess_prediction(dataset, prediction)
    return max((metric(prediction, ref, all_classes=all_classes or ()) for ref in answers), default=0.0)


def score_dataset(
    dataset: str,
    predictions: Sequence[str],
    answers: Sequence[Sequence[str]],
    all_classes: Sequence[str] | None = None,
) -> float:
    """Mean best-over-references score x 100, rounded to 2 decimals (LongBench's `scorer`)."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions but {len(answers)} answer lists")
    if not predictions:
        raise ValueError("no predictions to score")
    total = sum(score_sample(dataset, p, a, all_classes) for p, a in zip(predictions, answers, strict=True))
    return round(100 * total / len(predictions), 2)


def _recall(context: Sequence[str], answer: Sequence[str]) -> float:
    if not answer:
        return 0.0
    return sum((Counter(context) & Counter(answer)).values()) / len(answer)


# the word split of each span-based QA metric, shared by the metric and `answer_kept`
_ANSWER_WORDS: dict[Metric, Callable[[str], list[str]]] = {
    qa_f1_score: _qa_words,
    qa_f1_zh_score: _qa_zh_words,
}


def answer_kept(dataset: str, context: str, answers: Sequence[str]) -> float | None:
    """Share of a reference answer's words still in a (compressed) context, best over references.

    A reader-free diagnostic of extractive QA sets (those scored by QA F1): it separates "the
    compressor dropped the answer" from "the reader failed on compressed text". Words are normalised
    as the metric normalises them (SQuAD rules; jieba words for Chinese) and counted as a multiset, so
    an answer word that appears twice needs two occurrences. None for datasets whose references are
    not spans of the context (summaries, classes, code).
    """
    words = _ANSWER_WORDS.get(metric_for(dataset))
    if words is None:
        return None
    context_words = words(context)
    return max((_recall(context_words, words(ref)) for ref in answers), default=0.0)

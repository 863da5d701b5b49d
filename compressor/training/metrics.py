"""Label metrics without scikit-learn: F1 of the keep class and ROC AUC (rank formula, ties averaged)."""

from __future__ import annotations

import numpy as np


def f1_keep(truth: np.ndarray, predicted: np.ndarray) -> float:
    truth = np.asarray(truth, dtype=bool)
    predicted = np.asarray(predicted, dtype=bool)
    tp = int((truth & predicted).sum())
    if tp == 0:
        return 0.0
    precision = tp / int(predicted.sum())
    recall = tp / int(truth.sum())
    return 2 * precision * recall / (precision + recall)


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random keep word scores above a random drop word (nan if one class is empty)."""
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))

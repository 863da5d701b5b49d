"""The question sets the answer-kept benchmarks share: a squad_longdoc suite, optionally without the
contexts of another suite (a dev split beside the test one), and its answerable questions.

Imported by `bench_answer_kept.py`, `tune_question_split.py` and `check_number_policy.py`, which
run from this folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from promptpress.eval.longbench import Sample, load_dataset
from promptpress.eval.metrics import answer_kept
from promptpress.eval.squad_longdoc import DATASET


def load_suite(data: Path, exclude: Path | None = None, limit: int | None = None) -> list[Sample]:
    """The first `limit` questions of the suite in `data`, after dropping every question whose
    context also occurs in the suite `exclude`."""
    samples = load_dataset(data, DATASET)
    if exclude is not None:
        seen = {s.context for s in load_dataset(exclude, DATASET)}
        samples = [s for s in samples if s.context not in seen]
    return samples[:limit]


def answerable(dataset: str, samples: Sequence[Sample]) -> tuple[list[Sample], dict[str, float]]:
    """The questions whose gold answer's words occur in their context, and for each id the share
    that does (what an answer-kept figure is divided by)."""
    full = {s.id: answer_kept(dataset, s.context, s.answers) or 0.0 for s in samples}
    return [s for s in samples if full[s.id] > 0], full


def by_context(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """The questions grouped by their context, in order."""
    contexts: dict[str, list[Sample]] = {}
    for sample in samples:
        contexts.setdefault(sample.context, []).append(sample)
    return contexts

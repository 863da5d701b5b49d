"""Gold-answer words of a window: the content words of QMSum answers, normalised like the alignment.

Used by the evaluation (answer retention) and, optionally, to mix answer supervision into teacher
labels (`labels.mix_answer_words`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .align import normalize

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no
    nor not now of off on once only or other our ours out over own same she should so some such than
    that the their them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours also um uh yeah
    okay ok mm hmm well like group team they discuss discussed said think thought
    """.split()  # noqa: SIM905
)


def content_words(text: str) -> str:
    """`text` without its stop words (the words `answer_targets` ignores), in order."""
    return " ".join(
        t
        for t in text.split()
        if normalize(t) not in STOPWORDS and t.lower().strip(".,;:!?'\"()") not in STOPWORDS
    )


def answer_targets(words: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """Which window words are content words of the gold answers (bool per word)."""
    vocab = set()
    for answer in answers:
        for token in answer.split():
            norm = normalize(token)
            if (
                norm.isalnum()
                and norm not in STOPWORDS
                and token.lower().strip(".,;:!?'\"()") not in STOPWORDS
            ):
                vocab.add(norm)
    return np.fromiter(
        (normalize(w) in vocab and w.lower() not in STOPWORDS for w in words), dtype=bool, count=len(words)
    )

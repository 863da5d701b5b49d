"""A lexical teacher: keep the words a reader cannot guess — rare words, names, numbers — and their
neighbours.

LLMLingua-2's GPT-4 labels keep entities, numbers and content words and drop function words and
fillers; a small LM's surprisal misses much of that (a meeting's topic words recur, so the LM
predicts them and scores them low). This teacher scores each encoder word without any model:

- **informativeness**: ``8 - zipf`` of the word in general English (wordfreq's Zipf scale, 0-8:
  "the" 7.7, "meeting" 5.2, "LCD" 3.5; unseen words get 8), clipped to 0..8;
- **numbers**: +3 for a word with a digit;
- **names**: +4 for a capitalised word that does not start a sentence or a line and is not a
  common word in any case (zipf of its lower case below 5: "Santa", "Hannibal", not "I" or "OK");
- **fillers and punctuation**: disfluencies ("um", "uh", "mm") and words without a letter or
  digit score lowest;
- **spans**: the scores are standardised per window and each word gets half of its better
  neighbour's positive score, so "city council" and "Santa Clara" stay whole (with the article
  before a name: excluding common words from the share lowered the figure below to 81.5 %);
  punctuation and fillers get no share.

The ``rate`` share of top-scoring words is labelled keep. The weights were chosen on the SQuAD
long-document suite's first 102 questions (answer words kept at rate 0.33 by the scores alone:
73.0 % informativeness only, 80.5 % with numbers and names, 84.3 % with spans, on whitespace
words; 85.7 % on the encoder's words); see the model card.
Thousands of words per second on one core; needs ``wordfreq`` (the ``train`` extra).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .teachers import WordLabels
from .wordsplit import EncodedWords, top_k_mask

FILLERS = frozenset("um uh umm uhm hmm mm mhm huh ah er erm eh oh".split())  # noqa: SIM905
NUMBER_BONUS = 3.0
NAME_BONUS = 4.0
NAME_MAX_ZIPF = 5.0  # a capitalised word this common in lower case is not taken for a name
SPAN_SHARE = 0.5
_SENTENCE_ENDS = frozenset(".?!:;")


@lru_cache(maxsize=200_000)
def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def lexical_scores(text: str, spans: np.ndarray) -> np.ndarray:
    """One informativeness score per word (words given as character spans of `text`)."""
    words = [text[s:e] for s, e in np.asarray(spans).reshape(-1, 2).tolist()]
    raw = np.zeros(len(words), dtype=np.float64)
    content = np.zeros(len(words), dtype=bool)
    for i, word in enumerate(words):
        core = word.strip("'\"()[]{}.,;:!?-")
        if not any(c.isalnum() for c in core) or core.lower() in FILLERS:
            continue
        content[i] = True
        score = min(8.0, max(0.0, 8.0 - zipf(core)))
        if any(c.isdigit() for c in core):
            score += NUMBER_BONUS
        if (
            core[0].isupper()
            and not _starts_sentence(text, words, spans, i)
            and zipf(core.lower()) < NAME_MAX_ZIPF
        ):
            score += NAME_BONUS
        raw[i] = score
    if len(raw) < 2 or raw.std() == 0:
        return raw
    z = (raw - raw.mean()) / raw.std()
    left = np.r_[-np.inf, z[:-1]]
    right = np.r_[z[1:], -np.inf]
    out = z + SPAN_SHARE * np.clip(np.maximum(left, right), 0.0, None)
    out[~content] = z.min()  # punctuation and fillers never ride on a neighbour
    return out


def _starts_sentence(text: str, words: list[str], spans: np.ndarray, i: int) -> bool:
    if i == 0:
        return True
    if words[i - 1] and words[i - 1][-1] in _SENTENCE_ENDS:
        return True
    start = int(spans[i][0])
    return "\n" in text[int(spans[i - 1][1]) : start]


class LexicalTeacher:
    """`Teacher` from word statistics alone (no model); `question` is ignored."""

    name = "lexical"

    def __init__(self, rate: float = 0.5) -> None:
        if not 0.0 < rate < 1.0:
            raise ValueError(f"rate must be in (0, 1), got {rate}")
        self.rate = rate

    def label(self, words: EncodedWords, question: str | None = None) -> WordLabels:
        scores = lexical_scores(words.text, words.spans)
        return WordLabels(top_k_mask(scores, self.rate), scores.astype(np.float32))

    def close(self) -> None:
        return None

"""Lexical relevance: BM25 of a question's content words over the units of one call.

Sentence embeddings (`query_aware`) judge what a unit is about; they are weak at the exact
words a question shares with the sentence that answers it (a name, a date, a rare term), which is
what BM25 rewards. `QuestionAwareCompressor` adds ``lexical_weight x`` these scores (scaled so the
best unit of the call scores 1) to the cosine similarities. The statistics (document frequencies,
average length) are those of the units of the call itself, so it needs no corpus and no model.

Words are runs of letters and digits, lower-cased; a short list of English function words is left
out of the question. Scripts written without spaces (Chinese, Japanese) give one "word" per run, so
there BM25 matches little and the embeddings decide.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["STOPWORDS", "bm25_scores", "terms"]

WORD = re.compile(r"\w+")
# function words and question words: matching them says nothing about relevance
_FUNCTION_WORDS = """a an and are as at be been but by can could did do does for from had has have he her his
how i if in into is it its may might more most much must not of on or our she should so such than that
the their them then there these they this those to was we were what when where which while who whom
whose why will with would you your"""
STOPWORDS = frozenset(_FUNCTION_WORDS.split())
K1 = 1.2  # term-frequency saturation
B = 0.75  # length normalisation


def terms(text: str) -> list[str]:
    """The lower-cased words of `text`, stop words included (see `STOPWORDS`)."""
    return WORD.findall(text.lower())


def bm25_scores(query: str, documents: Sequence[str]) -> list[float]:
    """Okapi BM25 of `query`'s content words (each counted once) in each of `documents`, with the
    document frequencies and average length of `documents` themselves; 0 for a document sharing no
    content word with the query."""
    words = {w for w in terms(query) if w not in STOPWORDS}
    docs = [Counter(terms(d)) for d in documents]
    if not words or not docs:
        return [0.0] * len(docs)
    lengths = [sum(c.values()) for c in docs]
    average = sum(lengths) / len(lengths) or 1.0
    n = len(docs)
    idf = {w: math.log(1 + (n - df + 0.5) / (df + 0.5)) for w in words if (df := sum(w in c for c in docs))}
    scores = []
    for counts, length in zip(docs, lengths):
        norm = K1 * (1 - B + B * length / average)
        scores.append(sum(idf[w] * counts[w] * (K1 + 1) / (counts[w] + norm) for w in idf if counts[w]))
    return scores

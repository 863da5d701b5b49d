"""LangChain adapters: one import for the document compressor, the LCEL prompt step and local embeddings.

>>> from promptpress.adapters.langchain import PromptpressDocumentCompressor, PromptCompressorRunnable

Both use the same `Compressor` object (and so the same segment cache) as the promptpress service:
pass yours with ``compressor=``, or let them share one default loaded on first use (``cache=`` picks
its segment cache, e.g. ``"redis://127.0.0.1:6379/0"``).
"""

from .documents import PromptpressDocumentCompressor
from .embeddings import LocalEmbeddings
from .prompt import PromptCompressorRunnable
from .relevance import relevance_scores, split_budget
from .shared import shared_compressor

__all__ = [
    "LocalEmbeddings",
    "PromptCompressorRunnable",
    "PromptpressDocumentCompressor",
    "relevance_scores",
    "shared_compressor",
    "split_budget",
]

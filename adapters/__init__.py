"""Framework glue. LangChain: ``from promptpress.adapters.langchain import ...`` (needs langchain-core).

The names are also importable from ``promptpress.adapters`` itself; LangChain is imported only then.
"""

from __future__ import annotations

from typing import Any

_LANGCHAIN = {
    "LocalEmbeddings",
    "PromptCompressorRunnable",
    "PromptpressDocumentCompressor",
    "relevance_scores",
    "shared_compressor",
    "split_budget",
}

__all__ = sorted(_LANGCHAIN)


def __getattr__(name: str) -> Any:
    if name in _LANGCHAIN:
        from . import langchain

        return getattr(langchain, name)
    raise AttributeError(f"module 'promptpress.adapters' has no attribute {name!r}")

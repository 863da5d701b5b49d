"""Fixtures for the LangChain adapter tests: real news paragraphs, the shipped compressor, MiniLM
embeddings and an in-memory vector store over the paragraphs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from langchain_core.documents import Document

DATA = Path(
    os.environ.get("PROMPTPRESS_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
)
_PASSAGE = re.compile(r"Passage \d+:\s*")


def _samples(count: int) -> list[str]:
    path = DATA / "longbench" / "multi_news.jsonl"
    if not path.is_file():
        pytest.fail(f"shared data not found at {path}; set PROMPTPRESS_SHARED_DATA")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(next(fh))["context"] for _ in range(count)]


@pytest.fixture(scope="session")
def articles() -> list[str]:
    """Whole multi_news contexts (several news articles each, thousands of tokens)."""
    return [c.replace("NEWLINE_CHAR", "\n") for c in _samples(6)]


@pytest.fixture(scope="session")
def paragraphs() -> list[Document]:
    """RAG-sized chunks of news articles (consecutive paragraphs merged to 500-1500 characters), with
    their provenance as metadata."""
    docs = []
    for s, context in enumerate(_samples(6)):
        for p, passage in enumerate(x for x in _PASSAGE.split(context) if x.strip()):
            chunk: list[str] = []
            for para in passage.split("NEWLINE_CHAR NEWLINE_CHAR"):
                text = " ".join(para.replace("NEWLINE_CHAR", " ").split())
                if text and len(text) + sum(len(c) for c in chunk) > 1500:
                    chunk = []  # too long to merge: start again from this paragraph
                if text:
                    chunk.append(text)
                if sum(len(c) for c in chunk) >= 500:
                    meta = {"source": "multi_news", "sample": s, "passage": p, "chunk": len(docs)}
                    docs.append(
                        Document(page_content="\n\n".join(chunk), metadata=meta, id=f"doc-{len(docs)}")
                    )
                    chunk = []
    assert len(docs) >= 20, "expected real news text in the multi_news file"
    return docs


@pytest.fixture(scope="session")
def compressor():
    """The shipped default compressor, the very object the adapters share when given none."""
    from promptpress.adapters.shared import shared_compressor

    return shared_compressor()


@pytest.fixture(scope="session")
def embeddings():
    from promptpress.adapters.embeddings import LocalEmbeddings

    return LocalEmbeddings()


@pytest.fixture(scope="session")
def vector_store(paragraphs, embeddings):
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(embeddings)
    store.add_documents(paragraphs)
    return store

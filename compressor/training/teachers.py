"""The teacher interface: a window in, one keep/drop label and score per encoder word out.

Backends: `surprisal.SurprisalTeacher` (a local causal LM's self-information) and
`llm_teacher.LLMTeacher` (an OpenAI-compatible chat endpoint asked to delete words).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .wordsplit import EncodedWords


@dataclass
class WordLabels:
    keep: np.ndarray  # bool per word
    scores: np.ndarray  # float per word (higher = more worth keeping)
    quality: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.keep) != len(self.scores):
            raise ValueError(f"{len(self.keep)} labels but {len(self.scores)} scores")


class Teacher(Protocol):
    name: str

    def label(self, words: EncodedWords, question: str | None = None) -> WordLabels:
        """Labels for the words of one window (optionally conditioned on a question)."""
        ...

    def close(self) -> None: ...

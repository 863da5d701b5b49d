"""Helpers shared by the adapter tests."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(any(w == x for x in it) for w in short)

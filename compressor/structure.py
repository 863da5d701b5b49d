"""Find the parts of a text that are not prose: code, JSON, tables, URLs, e-mail addresses, paths,
numbers and overlong tokens, so that compression can keep them verbatim instead of dropping their
words one by one.

`find_spans(text)` returns non-overlapping `Span`s (start, end, kind) in text order; what is not in a
span is prose. Each kind has a policy (`keep`: verbatim; `compress`: as prose; `drop`: removed; `whole`: below) and
`DEFAULT_POLICY` is what users expect: code, JSON structure, tables, URLs, addresses, paths and
numbers kept. A JSON document keeps its keys and punctuation and lets long string values be
compressed (`Span.inner`: the ranges inside the span that may still be compressed), so it stays
valid JSON. A token longer than `LONG_TOKEN_CHARS` characters (a base64 blob, a minified line) is
its own kind, `long`, whatever else it looks like: by default it is cut to its ends around a
visible marker (`cut_long`), so it neither vanishes nor eats the budget. A fourth policy, `whole`,
makes a span one unit that is kept or dropped whole by its score, like a word, instead of always kept:
never mangled, but not paid for where the budget has no room (question-aware compression uses it for
numbers: those of irrelevant passages no longer crowd out the relevant passage).

Only the standard library: regular expressions and `json`'s decoder; linear in the text's length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Policy = Literal["keep", "compress", "drop", "whole"]
KINDS = ("code", "json", "table", "url", "email", "path", "number", "long")
POLICIES: tuple[Policy, ...] = ("keep", "compress", "drop", "whole")
DEFAULT_POLICY: Mapping[str, Policy] = {
    "code": "keep",
    "json": "keep",
    "table": "keep",
    "url": "keep",
    "email": "keep",
    "path": "keep",
    "number": "keep",
    "long": "keep",  # kept as its two ends around a marker (see `cut_long`)
}
LONG_TOKEN_CHARS = 200  # ~50-100 model tokens for base64 or hex; no English word comes close
LONG_KEEP_CHARS = 32  # of an overlong token, this many characters are kept at each end
JSON_MIN_STRING_WORDS = 8  # a JSON string value with at least this many words may be compressed


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    inner: tuple[tuple[int, int], ...] = field(default=())  # sub-ranges compressible as prose


_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}\1[ \t]*$|\Z)", re.M | re.S)
_INDENTED = re.compile(r"(?:(?<=\n\n)|\A)((?:(?: {4}|\t)[^\n]*(?:\n|\Z)|[ \t]*\n(?=(?: {4}|\t)))+)")
_INLINE_CODE = re.compile(r"(`+)(?=\S)[^\n]*?(?<=\S)\1")
_TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$|^[ \t]*\+[-=+]+\+[ \t]*$", re.M)
_TABLE_RULE = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$|^[ \t]*\+[-=+]+\+"
)
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'`]+|\bwww\.[^\s<>\"'`]+\.[^\s<>\"'`]+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_PATH = re.compile(
    r"(?<![\w/.~-])(?:~|\.{1,2})?/(?:[\w.-]+/)*[\w.-]+/?"  # /usr/bin/env, ./run, ~/x/y
    r"|(?<![\w/.-])[A-Za-z]:\\(?:[\w .-]+\\)*[\w .-]*"  # C:\Users\x
    r"|(?<![\w/.-])(?:[\w.-]+/)+[\w-]+\.[A-Za-z0-9]{1,8}\b"  # compressor/models/README.md
)
_NUMBER = re.compile(
    r"(?<![\w.])[-+]?[$€£¥]?\d[\d,_]*(?:\.\d+)?(?:[eE][-+]?\d+)?"
    r"(?:\s?(?:%|‰|[kMGTP]?i?[Bb](?:/s)?|[kmµn]?s|ms|h|min|[kmc]?m|kg|g|°[CF]?|x|USD|EUR|GBP)(?![\w]))?"
)
_TRAILING = ".,;:!?)]}'\""
_CODE_SYMBOLS = frozenset("(){}[]=<>;")
_BULLET = re.compile(r"(?:[-*+]|\d+[.)])\s+\S")
_COMMENT_STARTS = ("#", "//", "/*", "*", '"""', "'''")
_CODE_KEYWORD = re.compile(
    r"^\s*(?:def|class|import|from\s+\S+\s+import|return|if|elif|else\s*:|for|while|try\s*:|except|"
    r"finally\s*:|with|raise|yield|async\s+def|await|const|let|var|function|public|private|protected|"
    r"static|#include|package|func|fn|@\w+)\b"
)
CODE_MIN_LINES = 3  # a run of unfenced code needs this many code-shaped lines
CODE_MIN_SHARE = 0.6  # ... making up this share of its non-blank lines
_LONG = re.compile(rf"\S{{{LONG_TOKEN_CHARS},}}")
_JSON_START = re.compile(r"^[ \t]*[\[{]", re.M)
_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_DECODER = json.JSONDecoder()


def find_spans(text: str) -> list[Span]:
    """Non-prose spans of `text`, non-overlapping, in order (block kinds win over inline ones)."""
    taken: list[Span] = []
    for finder in (_long_spans, _code_blocks, _json_spans, _tables, _code_lines, _inline_code, _inline_kinds):
        for span in finder(text):
            if not _overlaps(span, taken):
                taken.append(span)
        taken.sort(key=lambda s: s.start)
    return taken


def _overlaps(span: Span, taken: list[Span]) -> bool:
    return any(span.start < t.end and t.start < span.end for t in taken)


def _long_spans(text: str) -> Iterable[Span]:
    for m in _LONG.finditer(text):
        yield Span(m.start(), m.end(), "long")


def _code_blocks(text: str) -> Iterable[Span]:
    for m in _FENCE.finditer(text):
        yield Span(m.start(), m.end(), "code")
    for m in _INDENTED.finditer(text):
        block = m.group(1)
        end = m.start(1) + len(block.rstrip("\n"))
        if block.strip() and not _looks_like_list(block):
            yield Span(m.start(1), end, "code")


def _code_line(line: str) -> bool | None:
    """True for a line shaped like source code, False for prose, None for blank or comment lines."""
    stripped = line.strip()
    if not stripped or stripped.startswith(_COMMENT_STARTS):
        return None
    if _CODE_KEYWORD.match(line):
        return True
    if _BULLET.match(stripped):  # a markdown list item is prose, whatever its inline code
        return False
    rest = _INLINE_CODE.sub("", stripped).strip()  # inline code does not make its line code
    if len(rest) < 10:
        return None
    symbols = sum(c in _CODE_SYMBOLS for c in rest)
    return symbols / len(rest) >= 0.06 and (rest[-1] in ":{;(,[)]}" or "=" in rest)


def _code_lines(text: str) -> Iterable[Span]:
    """Runs of unfenced source code: at least `CODE_MIN_LINES` code-shaped lines that make up
    `CODE_MIN_SHARE` of the run's non-blank lines (two prose-shaped lines may sit inside a run)."""
    lines: list[tuple[int, int, bool | None]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        lines.append((pos, pos + len(line.rstrip("\r\n")), _code_line(line)))
        pos += len(line)
    i = 0
    while i < len(lines):
        if lines[i][2] is not True:
            i += 1
            continue
        j, last_code, gap = i, i, 0
        while j + 1 < len(lines) and gap < 2:
            j += 1
            kind = lines[j][2]
            if kind is True:
                last_code, gap = j, 0
            elif kind is False:
                gap += 1
        run = [k for _, _, k in lines[i : last_code + 1]]
        code, prose = run.count(True), run.count(False)
        if code >= CODE_MIN_LINES and code >= CODE_MIN_SHARE * (code + prose):
            yield Span(lines[i][0], lines[last_code][1], "code")
        i = last_code + 1


def _looks_like_list(block: str) -> bool:
    first = block.lstrip()
    return bool(re.match(r"(?:[-*+]|\d+[.)])\s", first))


def _json_spans(text: str) -> Iterable[Span]:
    stripped = text.strip()
    if stripped[:1] in "[{":
        try:
            _DECODER.decode(stripped)
        except ValueError:
            pass
        else:
            start = text.index(stripped[0])
            yield _json_span(text, start, start + len(stripped))
            return
    pos = 0
    for m in _JSON_START.finditer(text):
        start = m.end() - 1
        if start < pos:
            continue
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, (dict, list)) and value and end - start >= 20:
            pos = end
            yield _json_span(text, start, end)


def _json_span(text: str, start: int, end: int) -> Span:
    """The JSON document's span with its long string values (not keys) marked compressible."""
    inner = []
    for m in _JSON_STRING.finditer(text, start, end):
        after = text[m.end() : m.end() + 50].lstrip()
        is_key = after.startswith(":")
        body = m.group()[1:-1]
        if not is_key and len(body.split()) >= JSON_MIN_STRING_WORDS:
            inner.append((m.start() + 1, m.end() - 1))
    return Span(start, end, "json", tuple(inner))


def _tables(text: str) -> Iterable[Span]:
    rows = list(_TABLE_ROW.finditer(text))
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1].start() == rows[j].end() + 1:
            j += 1
        block = rows[i : j + 1]
        if len(block) >= 2 and any(_TABLE_RULE.match(r.group()) for r in block):
            yield Span(block[0].start(), block[-1].end(), "table")
        i = j + 1


def _inline_code(text: str) -> Iterable[Span]:
    for m in _INLINE_CODE.finditer(text):
        yield Span(m.start(), m.end(), "code")


def _inline_kinds(text: str) -> Iterable[Span]:
    found: list[Span] = []
    for kind, pattern in (("url", _URL), ("email", _EMAIL), ("path", _PATH), ("number", _NUMBER)):
        for m in pattern.finditer(text):
            start, end = m.start(), m.end()
            while end > start and text[end - 1] in _TRAILING and not _balanced(text[start:end]):
                end -= 1
            if kind == "number" and not any(c.isdigit() for c in text[start:end]):
                continue
            span = Span(start, end, kind)
            if end > start and not _overlaps(span, found):
                found.append(span)
    return found


def _balanced(token: str) -> bool:
    """A closing bracket at the end belongs to the token when it opens one too (Wikipedia URLs)."""
    closing = token[-1]
    opening = {")": "(", "]": "[", "}": "{"}.get(closing)
    return opening is not None and token.count(opening) >= token.count(closing)


def cut_long(token: str, keep: int = LONG_KEEP_CHARS) -> str:
    """An overlong token shortened to its two ends around a marker that says how much went."""
    if len(token) <= 2 * keep + 16:
        return token
    return f"{token[:keep]}…[{len(token) - 2 * keep} chars cut]…{token[-keep:]}"


def resolve_policy(overrides: Mapping[str, str] | None = None) -> dict[str, Policy]:
    """`DEFAULT_POLICY` with `overrides` applied; unknown kinds or policies are a ValueError."""
    policy: dict[str, Policy] = dict(DEFAULT_POLICY)
    for kind, value in (overrides or {}).items():
        if kind not in KINDS:
            raise ValueError(f"unknown structure kind {kind!r}; known: {', '.join(KINDS)}")
        if value not in POLICIES:
            raise ValueError(
                f"structure policy for {kind!r} must be one of {', '.join(POLICIES)}, got {value!r}"
            )
        policy[kind] = value
    return policy

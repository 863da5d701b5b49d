"""The structure detector: each kind on real shapes, and near misses that stay prose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptpress.compressor.structure import (
    LONG_TOKEN_CHARS,
    cut_long,
    find_spans,
    resolve_policy,
)


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, text[s.start : s.end]) for s in find_spans(text)]


def test_fenced_code_block_is_one_span_with_its_fences():
    text = "Install it:\n\n```bash\npip install -e '.[serve]'\npromptpress serve --port 8000\n```\n\nThen call it."
    found = kinds(text)
    assert found[0][0] == "code" and found[0][1].startswith("```bash") and found[0][1].endswith("```")
    assert "Then call it." not in found[0][1]


def test_unclosed_fence_runs_to_the_end():
    text = "Log:\n```\nline one\nline two"
    assert kinds(text) == [("code", "```\nline one\nline two")]


def test_indented_code_after_a_blank_line_but_not_a_list():
    code = "Example:\n\n    def f(x):\n        return x + 1\n\nMore prose here."
    assert ("code", "    def f(x):\n        return x + 1") in kinds(code)
    nested_list = "Steps:\n\n    - first step of the plan\n    - second step\n"
    assert all(k != "code" for k, _ in kinds(nested_list))


def test_inline_code_urls_emails_paths_numbers():
    text = (
        "Run `promptpress serve` and open https://example.org/docs/page_(x)?a=1&b=2. "
        "Mail ops@example.com about /var/log/syslog or compressor/models/README.md; "
        "latency fell 42% to 3.5 ms and costs $1,200.50 a month."
    )
    found = kinds(text)
    assert ("code", "`promptpress serve`") in found
    assert ("url", "https://example.org/docs/page_(x)?a=1&b=2") in found  # trailing '.' is not the URL's
    assert ("email", "ops@example.com") in found
    assert ("path", "/var/log/syslog") in found and ("path", "compressor/models/README.md") in found
    assert ("number", "42%") in found and ("number", "3.5 ms") in found and ("number", "$1,200.50") in found


def test_near_misses_stay_prose():
    text = "He said yes/no was fine, e.g. the 'and/or' case, at 5 o'clock; a backtick ` alone."
    found = kinds(text)
    assert all(kind in ("number",) for kind, _ in found), found
    assert ("number", "5") in found


def test_markdown_and_ascii_tables():
    md = "Results:\n| method | F1 |\n|---|---|\n| none | 38.6 |\n| ours | 39.9 |\n\nDone."
    assert kinds(md)[0] == ("table", "| method | F1 |\n|---|---|\n| none | 38.6 |\n| ours | 39.9 |")
    ascii_table = "+----+----+\n| a  | b  |\n+----+----+\n| 1  | 2  |\n+----+----+"
    assert kinds(ascii_table) == [("table", ascii_table)]
    pipes_in_prose = "| this line has pipes | but no rule\nnext line"
    assert all(k != "table" for k, _ in kinds(pipes_in_prose))


def test_a_whole_message_that_is_json_and_json_inside_prose():
    doc = {
        "id": "call_42",
        "status": "ok",
        "summary": "The quarterly report shows revenue grew in every region except the north east",
        "items": [{"name": "widget", "price": 3.5}],
    }
    text = json.dumps(doc, indent=2)
    [span] = find_spans(text)
    assert span.kind == "json" and (span.start, span.end) == (0, len(text))
    inner = [text[a:b] for a, b in span.inner]
    assert inner == [doc["summary"]]  # keys and short values are structure, long strings compress
    embedded = "The tool returned:\n" + text + "\nSummarise it."
    assert any(s.kind == "json" and embedded[s.start : s.end] == text for s in find_spans(embedded))
    assert all(s.kind != "json" for s in find_spans("{not json at all, just braces}"))


def test_overlong_tokens_win_over_other_kinds_and_are_cut_visibly():
    url = "https://example.org/" + "a" * 3000
    found = kinds(f"see {url} now")
    assert found == [("long", url)]
    blob = "x" * (LONG_TOKEN_CHARS - 1)
    assert all(k != "long" for k, _ in kinds(blob))
    cut = cut_long("Q" * 20000)
    assert cut.startswith("Q" * 32) and cut.endswith("Q" * 32) and "19936 chars cut" in cut


def test_policy_overrides_and_errors():
    assert resolve_policy({"number": "compress"})["number"] == "compress"
    assert resolve_policy()["code"] == "keep"
    with pytest.raises(ValueError, match="unknown structure kind"):
        resolve_policy({"prose": "keep"})
    with pytest.raises(ValueError, match="must be one of"):
        resolve_policy({"code": "maybe"})


DATA = Path(__file__).resolve().parents[1] / "data" / "structured"


def test_unfenced_source_code_is_found_and_prose_with_brackets_is_not():
    source = (DATA / "render.py").read_text(encoding="utf-8")
    code = [s for s in find_spans(source) if s.kind == "code"]
    covered = sum(s.end - s.start for s in code)
    assert covered > 0.7 * len(source)
    assert any("def render(" in source[s.start : s.end] for s in code)
    prose = (
        "The committee (chaired by the mayor) met on Monday; it decided to delay the vote.\n"
        "Members said the plan [which had been drafted in May] needed more work.\n"
        "A second meeting is planned for June, when the budget is known.\n"
    )
    assert all(s.kind != "code" for s in find_spans(prose))


def test_a_log_keeps_its_numbers_as_spans():
    log = (DATA / "dpkg.log").read_text(encoding="utf-8")
    first = log.splitlines()[0]
    spans = [s for s in find_spans(first) if s.kind == "number"]
    assert spans and first[spans[0].start : spans[0].end][:4].isdigit()  # the timestamp's date

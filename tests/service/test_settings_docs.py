"""docs/service.md's settings table is `settings_table()` as it is now: a changed default or
description fails here until the table is regenerated (the command under the table)."""

from pathlib import Path

from promptpress.service.settings import settings_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "service.md"


def test_the_documented_settings_table_is_the_generated_one():
    doc_rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    generated = [line for line in settings_table().splitlines() if line.startswith("| `")]
    assert len(generated) > 30  # every setting is a row
    stale = [row for row in generated if row not in doc_rows]
    assert not stale, f"docs/service.md is stale; regenerate its settings table. First stale row: {stale[0]}"

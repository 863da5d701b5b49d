"""Structure-safe compression through `compress`: each kind kept as written at rate 0.33, the
policies and their overrides, overlong tokens, never-empty output and the over-budget report."""

from __future__ import annotations

import json

import pytest

from promptpress.compressor import CompressOptions, OptionsError, count_tokens

CODE = (
    "```python\n"
    "def total(items):\n"
    "    if not items:\n"
    "        return 0  # nothing to add\n"
    "    return sum(i.price for i in items)\n"
    "```"
)
TABLE = "| model | rate | F1 |\n|---|---|---|\n| minilm | 0.33 | 0.41 |\n| bert | 0.50 | 0.47 |"
INDENTED = "    for line in open(path):\n        print(line.rstrip())"


@pytest.fixture(scope="module")
def prose(multi_news) -> str:
    return multi_news[2][:3000]


def test_each_kind_survives_rate_033_byte_exact(tiny, prose):
    text = (
        f"{prose[:800]}\n\nThe function:\n\n{CODE}\n\n{prose[800:1600]}\n\nResults:\n\n{TABLE}\n\n"
        f"Example:\n\n{INDENTED}\n\nDocs at https://example.org/docs/v2/api?lang=en#compress took "
        f"42.5 ms on /usr/local/bin/python3; mail ops@example.com. {prose[1600:]}"
    )
    result = tiny.compress(text, rate=0.33)
    out = result.compressed_text
    for part in (CODE, TABLE, INDENTED, "https://example.org/docs/v2/api?lang=en#compress", "42.5 ms"):
        assert part in out, part
    assert "/usr/local/bin/python3" in out and "ops@example.com" in out
    assert "\n\n    for line" in out  # the indented block's first indentation and its line break
    assert result.compressed_tokens < 0.6 * result.original_tokens
    assert {"code", "table", "url", "number"} <= set(result.verbatim_tokens)
    assert not result.over_budget


def _json_doc(prose: str) -> str:
    sentences = [s.strip() for s in prose.split(".") if len(s.split()) > 12][:4]
    doc = {
        "id": "run-7",
        "items": [
            {"title": f"story {i}", "summary": s + ".", "score": 0.5 + i} for i, s in enumerate(sentences)
        ],
        "note": 'a "quoted" word and a\nnewline escape in a long enough string value to compress',
    }
    return json.dumps(doc, indent=2)


def test_json_stays_valid_keys_kept_long_strings_shortened(tiny, prose):
    text = _json_doc(prose)
    result = tiny.compress(text, rate=0.33)
    parsed = json.loads(result.compressed_text)
    original = json.loads(text)
    assert parsed["id"] == "run-7" and len(parsed["items"]) == len(original["items"])
    assert [sorted(i) for i in parsed["items"]] == [sorted(i) for i in original["items"]]
    assert [i["score"] for i in parsed["items"]] == [i["score"] for i in original["items"]]
    shorter = [len(a["summary"]) < len(b["summary"]) for a, b in zip(parsed["items"], original["items"])]
    assert any(shorter)
    embedded = tiny.compress(f"Tool result:\n{text}\nSummarise it.", rate=0.33).compressed_text
    json.loads(embedded[embedded.index("{") : embedded.rindex("}") + 1])


def test_policies_compress_and_drop(tiny, prose):
    text = f"{prose[:1200]}\n\n{CODE}\n\n{prose[1200:2400]}"
    compressed = tiny.compress(text, rate=0.33, structure={"code": "compress"}, return_words=True)
    code_words = [w for w in compressed.words if "total" in w.text or "items" in w.text]
    assert len(code_words) >= 3 and not any(w.forced for w in code_words)  # word by word, as prose
    dropped = tiny.compress(text, rate=0.33, structure={"code": "drop"})
    assert "def total" not in dropped.compressed_text and "```" not in dropped.compressed_text
    everything_else = tiny.compress(text, rate=1.0, structure={"code": "drop"})
    assert "```" not in everything_else.compressed_text  # dropped even when the budget fits it all
    assert prose[:200] in everything_else.compressed_text


def test_policy_whole_keeps_or_drops_each_span_whole_by_its_score(tiny, prose):
    figures = "1,234,567", "3.5%", "$4.2", "2010"
    text = f"{prose[:1500]} In 2010 it had 1,234,567 people, 3.5% more, and $4.2 million. {prose[1500:2500]}"
    for rate in (0.2, 0.5, 0.8):
        result = tiny.compress(text, rate=rate, structure={"number": "whole"}, return_words=True)
        numbers = [w for w in result.words if any(c.isdigit() for c in w.text)]
        assert {w.text for w in numbers} >= set(figures)  # one unit each, never split
        assert not any(w.forced for w in numbers)  # ... scored like words, not forced
        out = result.compressed_text
        for w in numbers:  # and rendered whole or not at all
            assert w.keep == (w.text in out) or any(
                w.text in x.text for x in numbers if x is not w and x.keep
            )
        kept_numbers = sum(w.keep for w in numbers)
        if rate == 0.2:
            assert kept_numbers < len(numbers)  # not all paid for: the budget decides
    forced = tiny.compress(text, rate=0.2, return_words=True)  # the default: numbers always kept
    assert all(w.forced and w.keep for w in forced.words if any(c.isdigit() for c in w.text))


def test_overrides_are_normalised_and_validated():
    opts = CompressOptions(structure={"url": "drop", "code": "compress"}).validate()
    assert opts.structure == (("code", "compress"), ("url", "drop"))
    assert hash(opts) and opts.structure_policy()["url"] == "drop"
    assert opts.structure_policy()["table"] == "keep"  # the default for kinds not named
    assert CompressOptions().with_overrides(structure=[["json", "drop"]]).structure == (("json", "drop"),)
    assert CompressOptions(structure="off").validate().structure_policy() is None
    assert CompressOptions(structure={"number": "whole"}).validate().structure_policy()["number"] == "whole"
    for bad in ({"cod": "keep"}, {"code": "verbatim"}, 5, "no"):
        with pytest.raises(OptionsError, match="structure"):
            CompressOptions().with_overrides(structure=bad)


def test_structure_off_compresses_code_word_by_word(tiny, prose):
    text = f"{prose[:1500]}\n\n{CODE}\n\n{prose[1500:]}"
    off = tiny.compress(text, rate=0.33, structure="off", return_words=True)
    assert not any(w.forced for w in off.words)
    assert CODE not in off.compressed_text and not off.verbatim_tokens


def test_one_megabyte_word_is_cut_not_emptied(tiny):
    word = "x" * 1_000_000
    result = tiny.compress(word, rate=0.33)
    out = result.compressed_text
    assert out.startswith("x" * 32) and out.endswith("x" * 32) and "chars cut]" in out
    assert result.original_tokens == count_tokens(word) > 100_000
    assert result.compressed_tokens < 50 and result.verbatim_tokens.get("long")
    with_chat = tiny.compress(f"Please check this blob: {word} and tell me what it is.", rate=0.33)
    assert "chars cut]" in with_chat.compressed_text


def test_summarise_a_long_word_is_never_empty(tiny):
    result = tiny.compress("Summarise this: " + "a" * 20000 + " please.", rate=0.33)
    assert "a" * 32 in result.compressed_text and "chars cut]" in result.compressed_text
    kept = tiny.compress("Summarise this: " + "a" * 20000 + " please.", rate=0.33, structure={"long": "drop"})
    assert kept.compressed_text.strip()  # the long word dropped, the words around it not emptied


def test_a_3000_character_url_does_not_eat_the_budget(tiny, prose):
    url = "https://example.org/search?q=" + "abcdefghij" * 297
    assert len(url) > 2990
    text = f"{prose[:1500]} See {url} for the source. {prose[1500:]}"
    result = tiny.compress(text, rate=0.5)
    out = result.compressed_text
    assert url[:32] in out and url[-32:] in out and "chars cut]" in out
    prose_tokens = count_tokens(text.replace(url, ""))
    assert result.compressed_tokens < 0.6 * prose_tokens  # not 3,001 of 3,006 tokens any more
    assert len(out.replace(" ", "")) > 0.3 * len(text.replace(url, "").replace(" ", ""))


def test_a_context_with_text_never_compresses_to_empty(tiny, multi_news):
    result = tiny.compress([multi_news[0][:2000], "Short words here."], context_budgets=(300, 0))
    assert result.contexts[1].text.strip()
    assert tiny.compress("Hello.", target_tokens=1).compressed_text.strip()
    off = tiny.compress(
        [multi_news[0][:2000], "Short words here."], context_budgets=(300, 0), structure="off"
    )
    assert off.contexts[1].text.strip()


def test_keep_markers_and_force_tokens_work_with_policies(tiny, prose):
    text = (
        f"{prose[:1000]} <keep>Keep THIS sentence, exactly as written!</keep>\nAnswer: yes.\n\n{CODE}\n\n"
        f"Answer: no. {prose[1000:2000]} <keep>and `this` too</keep>"
    )
    result = tiny.compress(text, rate=0.2, force_tokens=("Answer:",), structure={"code": "drop"})
    out = result.compressed_text
    assert "Keep THIS sentence, exactly as written!" in out and "<keep>" not in out
    assert out.count("Answer:") == 2 and "and `this` too" in out
    assert "def total" not in out
    kept = tiny.compress(text, rate=0.2, force_tokens=("Answer:",))
    assert CODE in kept.compressed_text and kept.compressed_text.count("Answer:") == 2


def test_drop_wins_over_force_tokens_and_digits_but_not_over_keep_markers(tiny, prose):
    text = f"{prose[:1200]}\n\n{CODE}\n\n{prose[1200:2400]}\n\n<keep>{TABLE}</keep>"
    opts = {"structure": {"code": "drop", "table": "drop"}, "force_tokens": ("\n", "?")}
    result = tiny.compress(text, rate=0.33, force_reserve_digit=True, **opts)
    assert "def total" not in result.compressed_text and "return 0" not in result.compressed_text
    assert TABLE in result.compressed_text


def test_keep_markers_shown_in_a_code_sample_stay_literal(tiny, prose):
    sample = '```python\nresult = compress(["<keep>Answer in French.</keep> doc three"])\n```'
    text = f"{prose[:800]} <keep>Kept as is.</keep>\n\n{sample}\n\n{prose[800:1600]}"
    out = tiny.compress(text, rate=0.33).compressed_text
    assert sample in out and "Kept as is." in out and "<keep>Kept" not in out


def test_over_budget_is_reported_with_the_kinds_that_forced_it(tiny, prose):
    text = f"{prose[:300]}\n\n{CODE}\n\n{TABLE}\n\n{CODE.replace('total', 'count')}"
    result = tiny.compress(text, rate=0.2)
    assert result.over_budget and result.compressed_tokens > 0.3 * result.original_tokens
    assert set(result.verbatim_tokens) >= {"code", "table"}
    data = result.to_dict()
    assert data["over_budget"] is True and data["verbatim_tokens"]["code"] > 0
    assert CODE in result.compressed_text and TABLE in result.compressed_text
    assert not tiny.compress(prose, rate=0.33).over_budget


def test_cli_structure_flags_and_over_budget_stats(tiny_checkpoint, prose, tmp_path, capsys):
    from promptpress.service.cli import main

    path = tmp_path / "doc.md"
    path.write_text(f"{prose[:1500]}\n\n{CODE}\n\nSee https://example.org/x for more.\n", encoding="utf-8")
    model = ["--model", str(tiny_checkpoint)]
    assert main(["compress", str(path), "--rate", "0.33", *model]) == 0
    out, err = capsys.readouterr()
    assert CODE in out and "https://example.org/x" in out and "over budget" not in err
    assert main(["compress", str(path), "--rate", "0.33", "--drop", "code,url", *model]) == 0
    out, _ = capsys.readouterr()
    assert "def total" not in out and "example.org" not in out
    assert main(["compress", str(path), "--rate", "0.33", "--no-structure", *model]) == 0
    assert CODE not in capsys.readouterr().out
    code_only = tmp_path / "code.md"
    code_only.write_text(f"Look:\n\n{CODE}\n\n{TABLE}\n", encoding="utf-8")
    assert main(["compress", str(code_only), "--rate", "0.2", *model]) == 0
    err = capsys.readouterr().err
    assert "over budget, kept verbatim: " in err and "code" in err and len(err.strip().splitlines()) == 1
    assert main(["compress", str(path), "--rate", "0.33", "--whole", "code", *model]) == 0
    assert "over budget" not in capsys.readouterr().err  # scored, not forced: never over budget
    assert main(["compress", str(path), "--keep", "code", "--drop", "code", *model]) == 2
    with pytest.raises(SystemExit):
        main(["compress", str(path), "--keep", "cod"])

"""Same checkpoint, same settings: our per-window mode agrees with llmlingua 0.2.2's LLMLingua-2 path."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def _llmlingua_labels(compressor, text, **kwargs):
    result = compressor.compress_prompt(text, return_word_label=True, **kwargs)
    pairs = [item.rsplit(" ", 1) for item in result["fn_labeled_original_prompt"].split("\t\t|\t\t")]
    return [(word, int(label)) for word, label in pairs]


def test_word_decisions_match_llmlingua(minilm_checkpoint, minilm, multi_news):
    from promptpress.compressor import ensure_tiktoken_offline

    ensure_tiktoken_offline()  # llmlingua builds its tiktoken encoding at construction
    from llmlingua import PromptCompressor

    reference = PromptCompressor(str(minilm_checkpoint), use_llmlingua2=True, device_map="cpu")
    total = agree = 0
    for text in multi_news[:3]:
        for rate in (0.5, 0.33):
            theirs = _llmlingua_labels(reference, text, rate=rate)
            # structure off: llmlingua knows no structure (numbers, URLs... would be one unit each)
            ours = minilm.compress(
                text, rate=rate, budget="window", windowing="greedy", return_words=True, structure="off"
            )
            mine = [(w.text.lower(), int(w.keep)) for w in ours.words]
            # the same words, in the same order (uncased model: llmlingua reports lower-cased pieces)
            assert [w for w, _ in mine] == [w for w, _ in theirs]
            total += len(mine)
            agree += sum(a[1] == b[1] for a, b in zip(mine, theirs))
    assert total > 5000
    assert agree / total >= 0.99, f"agreement {agree / total:.4f} on {total} words"

"""Windowing: model-length windows cut at chunk ends; stable windows independent of what precedes."""

from __future__ import annotations

import numpy as np

from promptpress.compressor.windows import end_flags, greedy_windows, stable_windows


def _encode(compressor, text):
    enc = compressor._tokenizer.encode(text, add_special_tokens=False)
    return np.asarray(enc.ids), np.asarray(enc.offsets)


def test_greedy_windows_fill_to_length_and_cut_after_sentence_ends(tiny, multi_news):
    text = multi_news[0]
    ids, offsets = _encode(tiny, text)
    ends, _ = end_flags(text, offsets, (".", "\n"))
    windows = greedy_windows(ends, 510)
    assert windows[0][0] == 0 and windows[-1][1] == len(ids)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))  # contiguous, nothing lost
    assert all(0 < e - s <= 510 for s, e in windows)
    for s, e in windows[:-1]:
        assert ends[e - 1], "a window must end after a chunk-end token when one exists"
        assert e - s > 400  # greedy: filled close to the limit


def test_newline_ends_chunks_even_for_tokenizers_that_drop_whitespace(tiny):
    text = "first line without period\nsecond line\n\nthird paragraph"
    ids, offsets = _encode(tiny, text)
    ends, paragraphs = end_flags(text, offsets, (".", "\n"))
    words = [text[s:e] for s, e in offsets.tolist()]
    assert [w for w, f in zip(words, ends) if f] == ["period", "line"]
    assert [w for w, f in zip(words, paragraphs) if f] == ["line"]
    ends_no_newline, _ = end_flags(text, offsets, (".",))
    assert not ends_no_newline.any()


def test_window_cut_forced_when_no_chunk_end(tiny):
    text = " ".join(["word"] * 1200)
    ids, offsets = _encode(tiny, text)
    ends, paragraphs = end_flags(text, offsets, (".", "\n"))
    for windows in (greedy_windows(ends, 100), stable_windows(ids, ends, paragraphs, 100)):
        assert [e - s for s, e in windows] == [100] * 12


def test_stable_windows_do_not_depend_on_the_prefix(tiny, multi_news):
    doc = multi_news[1]
    for prefix in ("", "Some unrelated preface. It has two sentences.\n\n", multi_news[2][:3000] + " "):
        text = prefix + doc
        ids, offsets = _encode(tiny, text)
        ends, paragraphs = end_flags(text, offsets, (".", "\n"))
        windows = stable_windows(ids, ends, paragraphs, 510)
        doc_start = int(np.searchsorted(offsets[:, 0], len(prefix)))
        # express the windows lying inside the document in document-relative character offsets
        spans = {
            (int(offsets[s, 0]) - len(prefix), int(offsets[e - 1, 1]) - len(prefix))
            for s, e in windows
            if s >= doc_start
        }
        if prefix == "":
            reference = spans
            assert len(reference) >= 3
        else:
            # every window after the first cut inside the document is identical
            shared = reference & spans
            assert len(shared) >= len(reference) - 1


def test_stable_windows_cut_at_paragraph_breaks(tiny):
    text = "Alpha beta gamma\n\nDelta epsilon\n\nZeta"
    ids, offsets = _encode(tiny, text)
    ends, paragraphs = end_flags(text, offsets, (".", "\n"))
    windows = stable_windows(ids, ends, paragraphs, 510)
    pieces = [text[offsets[s, 0] : offsets[e - 1, 1]] for s, e in windows]
    assert pieces == ["Alpha beta gamma", "Delta epsilon", "Zeta"]

import pytest
from soft_helpers import ALICE

from promptpress.compressor.soft.segmenter import segment_text, segment_texts, split_words


def test_words_rejoin_to_the_text():
    text = "  leading spaces,\ttabs and\n\nnewlines  "
    assert "".join(split_words(text)) == text
    assert split_words("") == []


@pytest.mark.parametrize("max_tokens", [1, 5, 20])
def test_segments_cover_the_text_within_the_token_budget(tokenizer, max_tokens):
    segments = segment_text(ALICE, tokenizer, max_tokens)
    assert "".join(s.text for s in segments) == ALICE
    assert all(0 < len(s.token_ids) <= max_tokens for s in segments)
    assert [s.start for s in segments[1:]] == [s.end for s in segments[:-1]]
    # a segment's tokens are its words' own tokens, so the text decodes back exactly
    assert all(tokenizer.decode(list(s.token_ids)) == s.text for s in segments)


def test_segments_align_to_word_boundaries(tokenizer):
    words = split_words(ALICE)
    starts = {sum(len(w) for w in words[:i]) for i in range(len(words) + 1)}
    for segment in segment_text(ALICE, tokenizer, 20):
        assert segment.start in starts and segment.end in starts


def test_segmentation_is_deterministic(tokenizer):
    assert segment_text(ALICE, tokenizer, 20) == segment_text(ALICE, tokenizer, 20)


def test_segments_are_stable_under_any_prefix_ending_at_a_boundary(tokenizer):
    full = segment_text(ALICE, tokenizer, 20)
    for cut in (3, len(full) // 2, len(full) - 1):
        tail = segment_text(ALICE[full[cut].start :], tokenizer, 20)
        assert [s.token_ids for s in tail] == [s.token_ids for s in full[cut:]]
        assert [s.text for s in tail] == [s.text for s in full[cut:]]


def test_each_context_is_segmented_on_its_own(tokenizer):
    chunk = "Oh dear! Oh dear! I shall be late!"
    first = segment_texts(["Alice started to her feet", chunk], tokenizer, 20)
    second = segment_texts(
        ["So she was considering in her own mind (as well as she could)", chunk], tokenizer, 20
    )
    assert first[1] == second[1] == segment_text(chunk, tokenizer, 20)


def test_a_word_longer_than_a_segment_is_cut_into_full_pieces(tokenizer):
    word = "qzxj" * 30  # rare letters: many tokens in one word
    text = "before " + word + " after"
    segments = segment_text(text, tokenizer, 8)
    assert "".join(s.text for s in segments) == text
    assert all(len(s.token_ids) <= 8 for s in segments)
    n_word = len(tokenizer(" " + word, add_special_tokens=False)["input_ids"])
    assert n_word > 8 and sum(len(s.token_ids) for s in segments) >= n_word


def test_bad_input_is_rejected(tokenizer):
    with pytest.raises(ValueError):
        segment_text(ALICE, tokenizer, 0)
    with pytest.raises(TypeError):
        segment_text(None, tokenizer, 20)  # type: ignore[arg-type]
    assert segment_texts(["", "a b"], tokenizer)[0] == []

"""Truncation and random-drop baselines meet their budget in tiktoken tokens, reproducibly."""

from pathlib import Path

import pytest

from promptpress.compressor import Compressor, OptionsError
from promptpress.compressor.tokens import count_tokens
from promptpress.eval.baselines import LexicalDropCompressor, RandomDropCompressor, TruncationCompressor
from promptpress.eval.longbench import load_dataset


@pytest.fixture(scope="module")
def contexts(longbench_dir: Path) -> list[str]:
    return [s.context for s in load_dataset(longbench_dir, "multi_news", limit=3)]


@pytest.mark.parametrize("rate", [0.5, 0.33, 0.2])
def test_budgets(contexts: list[str], rate: float) -> None:
    for compressor in (
        TruncationCompressor(),
        TruncationCompressor("head_tail"),
        RandomDropCompressor(7),
        LexicalDropCompressor(),
    ):
        assert isinstance(compressor, Compressor)
        for text in contexts:
            result = compressor.compress(text, rate=rate)
            assert result.original_tokens == count_tokens(text)
            assert result.compressed_tokens == count_tokens(result.compressed_text)
            assert result.rate == pytest.approx(rate, abs=0.02)


def test_what_each_keeps(contexts: list[str]) -> None:
    text = contexts[0]
    head = TruncationCompressor().compress(text, rate=0.3).compressed_text
    assert text.startswith(head)
    both = TruncationCompressor("head_tail").compress(text, rate=0.3).compressed_text
    assert both[:50] == text[:50] and both[-50:] == text[-50:]
    dropped = RandomDropCompressor(1).compress(text, rate=0.3).compressed_text
    words = text.split()
    kept = dropped.split()
    assert set(kept) <= set(words) and len(kept) < 0.45 * len(words)
    # reproducible from the seed, different with another seed
    assert RandomDropCompressor(1).compress(text, rate=0.3).compressed_text == dropped
    assert RandomDropCompressor(2).compress(text, rate=0.3).compressed_text != dropped


def test_several_contexts_and_bad_options(contexts: list[str]) -> None:
    result = TruncationCompressor().compress(contexts[:2], target_tokens=count_tokens(contexts[0]) + 5)
    assert result.contexts[0].text == contexts[0]
    assert 0 < result.contexts[1].compressed_tokens <= 6
    spread = RandomDropCompressor().compress(contexts[:2], rate=0.5)
    assert all(c.compressed_tokens == pytest.approx(c.original_tokens / 2, rel=0.05) for c in spread.contexts)
    with pytest.raises(OptionsError):
        RandomDropCompressor().compress(contexts[0], rate=1.5)
    with pytest.raises(ValueError, match="keep"):
        TruncationCompressor("middle")  # type: ignore[arg-type]


def test_lexical_drop_keeps_names_and_numbers_before_function_words(contexts: list[str]) -> None:
    text = "The committee met on Tuesday and the chair, Margaret Okonkwo, said that 1,250 homes were flooded."
    kept = LexicalDropCompressor().compress(text, rate=0.4).compressed_text.split()
    assert {"Okonkwo,", "1,250"} <= set(kept)
    assert "the" not in kept and "and" not in kept


def test_qmsum_heldout_samples_are_the_held_out_meetings_queries() -> None:
    from promptpress.compressor.training.answers import content_words
    from promptpress.compressor.training.qmsum import is_held_out
    from promptpress.eval.metrics import answer_kept
    from promptpress.eval.qmsum_qa import HELDOUT_DATASET, heldout_samples

    qmsum = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "qmsum-train"
    samples = heldout_samples(qmsum)
    assert len(samples) > 50
    assert all(is_held_out(s.id.split("#")[0], 0.1) for s in samples)
    first = samples[0]
    assert first.dataset == HELDOUT_DATASET and first.input.strip() and first.context.count("\n") > 2
    words = content_words(first.answers[0]).lower().split()
    assert words and not {"the", "that", "was", "and"} & set(words)
    assert answer_kept(HELDOUT_DATASET, first.context, first.answers) is not None

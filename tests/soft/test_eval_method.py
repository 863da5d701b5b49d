"""The soft compressor as an evaluation method: its own reader, its own rate, rows in its positions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from soft_helpers import ALICE

from promptpress.compressor.soft.engine import SoftCompressor
from promptpress.compressor.soft.model import ConceptEncoder
from promptpress.compressor.soft.prompt import Context
from promptpress.eval import methods as mt
from promptpress.eval.longbench import Prompt
from promptpress.eval.runner import RunConfig, Runner, read_results
from promptpress.eval.soft_reader import SoftReader

QUESTIONS = [
    ("q1", "Who ran close by Alice?", "a White Rabbit"),
    ("q2", "What did the book lack?", "pictures"),
]


class NoReader:
    """The run's reader: the soft methods must not ask it."""

    model = "unused"
    prompt_cache = None

    def generate(self, prompt: Prompt) -> Any:
        raise AssertionError("the soft methods answer with their own reader")


def _dataset(tmp_path: Any) -> Any:
    with (tmp_path / "squad_longdoc.jsonl").open("w") as fh:
        for qid, question, answer in QUESTIONS:
            record = {"_id": qid, "input": question, "context": ALICE, "answers": [answer], "length": 180}
            fh.write(json.dumps(record) + "\n")
    return tmp_path


def _methods(soft: SoftCompressor) -> list[mt.Method]:
    return [
        mt.Method("soft", None, reader=SoftReader(soft, min_block_tokens=40), fixed_rate=0.5),
        mt.Method(
            "soft_tokens", None, reader=SoftReader(soft, compress=False, name="soft_tokens"), fixed_rate=1.0
        ),
    ]


def _run(soft: SoftCompressor, tmp_path: Any) -> dict[tuple[str, str], dict[str, Any]]:
    config = RunConfig(
        datasets=["squad_longdoc"], rates=[0.33], data_dirs=[_dataset(tmp_path)], max_new_tokens=6
    )
    summary = Runner(config, _methods(soft), NoReader(), tmp_path / "run", progress=False).run()
    assert summary.errors == 0
    return {(r["_id"], r["method"]): r for r in read_results(tmp_path / "run" / "results.jsonl")}


def test_pieces_put_long_blocks_in_embeddings_and_keep_the_question_as_tokens(
    tokenizer, tiny_decoder
) -> None:
    reader = SoftReader(SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer), min_block_tokens=40)
    prompt = Prompt(text=f"Read this.\n\n{ALICE}\n\nQuestion: Who ran?\nAnswer:", chat=True, max_new_tokens=4)
    pieces = reader.pieces(prompt)
    contexts = [p.text for p in pieces if isinstance(p, Context)]
    assert contexts == ALICE.split("\n\n")  # every paragraph of the story, each on its own
    assert "Question: Who ran?" in "".join(p for p in pieces if isinstance(p, str))
    completion = reader.pieces(Prompt(text=prompt.text, chat=False, max_new_tokens=4))
    assert [p.text for p in completion if isinstance(p, Context)] == contexts
    assert completion[0] == "Read this."  # no chat template around a completion prompt


def test_runner_rows_of_the_soft_methods(tokenizer, tiny_decoder, tmp_path) -> None:
    rows = _run(SoftCompressor(ConceptEncoder(tiny_decoder), tokenizer), tmp_path)
    assert sorted(rows) == [("q1", "soft"), ("q1", "soft_tokens"), ("q2", "soft"), ("q2", "soft_tokens")]
    for qid, _, _ in QUESTIONS:
        soft, full = rows[(qid, "soft")], rows[(qid, "soft_tokens")]
        assert soft["rate"] == 0.5 and full["rate"] == 1.0  # their own rates, not --rates
        assert soft["token_unit"] == full["token_unit"] == "reader positions (whole prompt)"
        assert soft["original_tokens"] == full["original_tokens"] == full["compressed_tokens"]
        # the story is read at C=2, the question as tokens: more than half the positions, far fewer than all
        assert soft["original_tokens"] / 2 < soft["compressed_tokens"] < 0.8 * soft["original_tokens"]
        assert soft["answer_kept"] is None  # the text itself is not compressed
        assert soft["reader"].startswith("soft:") and soft["prediction"] is not None
        assert soft["ttft_ms"] is not None and soft["ttft_ms"] <= soft["generation_ms"]


def test_bypassed_encoder_answers_as_the_token_reader(tokenizer, tiny_decoder, tmp_path) -> None:
    # concept embeddings = token embeddings: the soft method must give the token reader's answers
    rows = _run(SoftCompressor(ConceptEncoder(tiny_decoder, bypass=True), tokenizer), tmp_path)
    for qid, _, _ in QUESTIONS:
        assert rows[(qid, "soft")]["prediction"] == rows[(qid, "soft_tokens")]["prediction"]
        assert rows[(qid, "soft")]["completion_tokens"] == 6


def test_soft_method_errors_are_method_errors(tmp_path) -> None:
    with pytest.raises(mt.MethodError, match="cannot load the soft compressor"):
        mt.make_method(f"soft:{tmp_path / 'no-weights'}")


def test_eval_run_of_soft_methods_only_starts_no_reader_server(
    tokenizer, tiny_decoder, tmp_path, monkeypatch
):
    import torch

    from promptpress.compressor import llamacpp
    from promptpress.compressor.soft.model import SoftConfig
    from promptpress.service.cli import main

    decoder_dir, weights = tmp_path / "decoder", tmp_path / "weights"
    tiny_decoder.save_pretrained(decoder_dir)
    tokenizer.save_pretrained(decoder_dir)
    ConceptEncoder(tiny_decoder, SoftConfig(decoder=str(decoder_dir), lora_r=4)).save(weights)

    def no_server(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no llama.cpp reader is needed when every method reads with its own decoder")

    monkeypatch.setattr(llamacpp, "LocalBackend", no_server)
    run = tmp_path / "run"
    argv = ["eval", "run", "--data", str(_dataset(tmp_path)), "--datasets", "squad_longdoc"]
    argv += ["--methods", f"soft:{weights},soft_tokens:{weights}", "--rates", "0.5", "--out", str(run)]
    argv += ["--max-new-tokens", "4", "--ctx-size", "120", "--threads", "2", "--no-progress"]
    assert main(argv) == 0
    assert torch.get_num_threads() == 2  # --threads holds for the decoders loaded in-process (fixture: 1)
    rows = read_results(run / "results.jsonl")
    names = [f"soft:{weights}", f"soft_tokens:{weights}"]
    assert sorted((r["_id"], r["method"]) for r in rows) == [(q, m) for q in ("q1", "q2") for m in names]
    assert all("error" not in r and r["reader"].startswith("soft") for r in rows)
    # the ~250-token prompts are cut to the 120-token window (minus the answer's) by the decoder's tokenizer
    assert all(r["truncated"] for r in rows)
    info = json.loads((run / "run.json").read_text())
    history = info if isinstance(info, list) else info.get("runs", [info])
    assert "the decoder's tokenizer" in json.dumps(history)

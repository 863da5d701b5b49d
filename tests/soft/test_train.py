import argparse
import json

import pytest
import torch
from soft_helpers import ALICE, make_tiny_decoder

from promptpress.compressor.soft.model import ConceptEncoder, SoftConfig
from promptpress.compressor.soft.prompt import ChatLayout
from promptpress.compressor.training.qmsum import QAExample, clean_turn, qmsum_examples, read_meeting
from promptpress.compressor.training.soft_train import TrainConfig, distill_loss, prepare, train
from promptpress.service.cli.soft import register

EXAMPLES = [
    QAExample(
        ALICE[:380],
        "What was Alice tired of?",
        "Sitting by her sister on the bank with nothing to do.",
        "a#0",
    ),
    QAExample(ALICE[380:760], "What ran close by her?", "A White Rabbit with pink eyes.", "a#1"),
]


def _read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_training_steps_lower_the_distillation_loss(tmp_path, tokenizer):
    encoder = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4))
    config = TrainConfig(
        out_dir=str(tmp_path), steps=8, batch_size=2, lr=5e-3, warmup_steps=1, eval_every=8, save_every=4
    )
    metrics = train(encoder, tokenizer, EXAMPLES, EXAMPLES, config, progress=False)
    evals = [r for r in _read_log(tmp_path / "train.log") if r.get("event") == "eval"]
    assert [e["step"] for e in evals] == [0, 8]
    assert metrics["loss"] < 0.9 * evals[0]["loss"]
    assert {"nll_student", "nll_teacher", "nll_no_context", "loss_no_context"} <= set(metrics)
    assert (tmp_path / "final" / "soft_compressor.safetensors").is_file()


def test_training_resumes_from_its_checkpoint(tmp_path, tokenizer):
    def run(steps):
        encoder = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4))
        config = TrainConfig(
            out_dir=str(tmp_path), steps=steps, batch_size=1, lr=1e-3, eval_every=100, save_every=1
        )
        train(encoder, tokenizer, EXAMPLES, EXAMPLES[:1], config, progress=False)
        return encoder

    run(2)
    resumed = run(3)
    records = _read_log(tmp_path / "train.log")
    assert [r["step"] for r in records if "loss" in r and "event" not in r] == [1, 2, 3]
    assert any(r.get("event") == "resume" and r["step"] == 2 for r in records)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3 and torch.equal(state["weights"]["proj.weight"], resumed.proj.weight.detach())


def test_distill_loss_is_zero_in_bypass(tokenizer):
    encoder = ConceptEncoder(make_tiny_decoder(tokenizer), bypass=True)
    layout = ChatLayout.from_tokenizer(tokenizer)
    item = prepare(EXAMPLES[0], tokenizer, layout, 20, TrainConfig(out_dir="unused"))
    loss, stats = distill_loss(encoder, layout, item, with_nll=True)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert stats["nll_student"] == pytest.approx(stats["nll_teacher"], abs=1e-5)


def test_prepare_respects_budgets(tokenizer):
    layout = ChatLayout.from_tokenizer(tokenizer)
    item = prepare(
        EXAMPLES[0],
        tokenizer,
        layout,
        20,
        TrainConfig(out_dir="x", max_context_tokens=30, max_answer_tokens=5),
    )
    assert sum(len(s) for s in item.segments) <= 30 and len(item.answer_ids) == 5
    assert tokenizer.decode(layout.prefix_ids) == "<|im_start|>user\n"
    assert tokenizer.decode(layout.question_ids(tokenizer, "Why?")).endswith("<|im_start|>assistant\n")


def test_qmsum_reader_builds_context_question_answer(tmp_path):
    meeting = {
        "meeting_transcripts": [
            {"speaker": "A", "content": "We should use {disfmarker} the flat file format ."},
            {"speaker": "B", "content": "ATLAS has a big learning curve ."},
            {"speaker": "C", "content": "{vocalsound}"},
        ],
        "specific_query_list": [
            {"query": "Why not ATLAS?", "answer": "Learning curve.", "relevant_text_span": [["0", "2"]]}
        ],
    }
    (tmp_path / "M001.json").write_text(json.dumps(meeting))
    [example] = read_meeting(tmp_path / "M001.json")
    assert example.context == "A: We should use the flat file format.\nB: ATLAS has a big learning curve."
    assert (example.question, example.answer, example.source) == (
        "Why not ATLAS?",
        "Learning curve.",
        "M001#0",
    )
    assert clean_turn("so {disfmarker} yes ,") == "so yes,"
    every = qmsum_examples(tmp_path, "train", 0.0) + qmsum_examples(tmp_path, "heldout", 0.0)
    assert len(every) == 1
    with pytest.raises(FileNotFoundError):
        qmsum_examples(tmp_path / "none")


def test_train_soft_command_is_registered():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train-soft", "--out", "x", "--steps", "3"])
    assert args.steps == 3 and args.segment_tokens == 20 and callable(args.handler)

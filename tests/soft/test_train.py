import argparse
import json

import pytest
import torch
from safetensors.torch import load_file
from soft_helpers import ALICE, make_tiny_decoder

from promptpress.compressor.soft.model import ConceptEncoder, SoftConfig
from promptpress.compressor.soft.prompt import ChatLayout
from promptpress.compressor.training import soft_runtime
from promptpress.compressor.training.qmsum import QAExample, clean_turn, qmsum_examples, read_meeting
from promptpress.compressor.training.soft_data import TeacherStore, decoder_identity, prepare
from promptpress.compressor.training.soft_objectives import Reader, distill_loss, teacher_states
from promptpress.compressor.training.soft_runtime import Runtime, resolve_device, resolve_precision
from promptpress.compressor.training.soft_train import SoftTrainer, TrainConfig, train
from promptpress.service.cli.soft import register

EXAMPLES = [
    QAExample(
        ALICE[:380],
        "What was Alice tired of?",
        "Sitting by her sister on the bank with nothing to do.",
        "a#0",
    ),
    QAExample(ALICE[380:760], "What ran close by her?", "A White Rabbit with pink eyes.", "a#1"),
    QAExample(ALICE[760:1000], "What did the Rabbit say?", "Oh dear! I shall be late!", "a#2"),
]


def _read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _steps(path):
    return [r for r in _read_log(path) if "event" not in r]


def _encoder(tokenizer):
    return ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4))


def _config(tmp_path, **overrides):
    # fp32: `auto` is bf16 on CPUs with native bf16, where a padded row rounds differently from the
    # same row alone, and these tests check the arithmetic of training, not bf16's rounding
    settings = dict(
        out_dir=str(tmp_path),
        device="cpu",
        precision="fp32",
        eval_examples=2,
        eval_segments=8,
        warmup_steps=1,
    )
    return TrainConfig(**{**settings, **overrides})


def _items(tokenizer, examples=EXAMPLES):
    layout = ChatLayout.from_tokenizer(tokenizer)
    return layout, [prepare(e, tokenizer, layout, 20, 64, 16) for e in examples]


def test_training_steps_lower_the_distillation_loss(tmp_path, tokenizer):
    config = _config(tmp_path, steps=8, batch_size=2, lr=5e-3, eval_every=4, save_every=4)
    metrics = train(_encoder(tokenizer), tokenizer, EXAMPLES, EXAMPLES, config, progress=False)
    evals = [r for r in _read_log(tmp_path / "train.log") if r.get("event") == "eval"]
    assert [e["step"] for e in evals] == [0, 4, 8]
    assert metrics["loss"] < 0.9 * evals[0]["loss"]
    assert {"nll_student", "nll_teacher", "nll_no_context", "loss_no_context", "recon_acc"} <= set(metrics)
    assert metrics["examples_per_second"] > 0 and metrics["seconds_per_step"] > 0
    steps = _steps(tmp_path / "train.log")
    assert [r["stage"] for r in steps] == ["distill"] * 8
    assert all(r["examples_per_second"] > 0 and r["eta_seconds"] >= 0 for r in steps)
    assert steps[-1]["eta_seconds"] == 0
    assert (tmp_path / "final" / "soft_compressor.safetensors").is_file()
    # the weights each evaluation measured are kept: step 8 is the final weights, step 4 is not
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-4", "step-8"]
    final = load_file(str(tmp_path / "final" / "soft_compressor.safetensors"))
    for step, same in (("step-8", True), ("step-4", False)):
        kept = load_file(str(tmp_path / step / "soft_compressor.safetensors"))
        assert all(torch.equal(kept[k], final[k]) for k in final) is same
        assert json.loads((tmp_path / step / "soft_config.json").read_text())["extra"]["step"] == step[5:]


def test_reconstruction_stage_comes_first_and_learns(tmp_path, tokenizer):
    config = _config(tmp_path, steps=10, reconstruct_steps=8, batch_size=2, lr=1e-2, eval_every=8)
    train(_encoder(tokenizer), tokenizer, EXAMPLES[:2], EXAMPLES[:2], config, progress=False)
    steps = _steps(tmp_path / "train.log")
    assert [r["stage"] for r in steps] == ["reconstruct"] * 8 + ["distill"] * 2
    assert all(0.0 <= r["acc"] <= 1.0 for r in steps[:8]) and "acc" not in steps[8]
    assert steps[8]["lr"] == pytest.approx(1e-2)  # warm-up restarts with the distillation stage (1 step)
    evals = {r["step"]: r for r in _read_log(tmp_path / "train.log") if r.get("event") == "eval"}
    # the tiny random decoder is near-uniform (NLL ~ ln 400 whatever it reads): a small but clear gain
    assert evals[8]["recon_nll"] < min(evals[0]["recon_nll"], evals[0]["recon_nll_no_context"]) - 0.03
    # the floor and the ceiling do not depend on the encoder
    assert evals[8]["recon_nll_no_context"] == pytest.approx(evals[0]["recon_nll_no_context"], rel=1e-5)
    assert evals[8]["recon_nll_tokens"] == pytest.approx(evals[0]["recon_nll_tokens"], rel=1e-5)


def test_learning_rate_warms_up_holds_and_decays(tmp_path):
    config = _config(tmp_path, steps=20, reconstruct_steps=4, warmup_steps=2, lr=1.0, decay_steps=8)
    lrs = [config.lr_at(step) for step in range(20)]
    assert lrs[:4] == [0.5, 1.0, 1.0, 1.0]  # reconstruction: warm-up, then constant
    assert lrs[4:12] == [0.5] + [1.0] * 7  # distillation warms up again, then holds
    assert lrs[12:] == pytest.approx([8 / 8, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])
    no_decay = _config(tmp_path, steps=20, reconstruct_steps=4, warmup_steps=2, lr=1.0)
    assert [no_decay.lr_at(step) for step in range(12)] == lrs[:12] and no_decay.lr_at(19) == 1.0
    with pytest.raises(ValueError, match="decay_steps"):
        _config(tmp_path, steps=20, reconstruct_steps=4, decay_steps=17)


def test_distillation_can_keep_a_reconstruction_term(tmp_path, tokenizer):
    config = _config(tmp_path, steps=2, batch_size=2, reconstruct_weight=0.5, eval_every=100)
    train(_encoder(tokenizer), tokenizer, EXAMPLES[:2], EXAMPLES[:1], config, progress=False)
    for record in _steps(tmp_path / "train.log"):
        assert record["stage"] == "distill" and 0.0 <= record["acc"] <= 1.0
        assert record["loss"] == pytest.approx(record["distill"] + 0.5 * record["reconstruct"])
    with pytest.raises(ValueError, match="reconstruct_weight"):
        _config(tmp_path, reconstruct_weight=-1.0)


def test_a_stopped_run_resumes_exactly(tmp_path, tokenizer):
    def run(out, steps):
        encoder = _encoder(tokenizer)
        config = _config(
            out,
            steps=steps,
            reconstruct_steps=2,
            batch_size=1,
            grad_accum=2,
            lr=3e-3,
            eval_every=100,
            save_every=1,
            teacher_cache="memory",
        )
        train(encoder, tokenizer, EXAMPLES, EXAMPLES[:1], config, progress=False)
        return encoder

    straight = run(tmp_path / "straight", 5)
    run(tmp_path / "stopped", 2)
    resumed = run(tmp_path / "stopped", 5)
    assert [r["step"] for r in _steps(tmp_path / "stopped" / "train.log")] == [1, 2, 3, 4, 5]
    assert any(
        r.get("event") == "resume" and r["step"] == 2 for r in _read_log(tmp_path / "stopped" / "train.log")
    )
    losses = [(r["stage"], r["loss"]) for r in _steps(tmp_path / "straight" / "train.log")]
    assert losses == [(r["stage"], r["loss"]) for r in _steps(tmp_path / "stopped" / "train.log")]
    for name, tensor in straight.trainable_state_dict().items():
        assert torch.equal(tensor, resumed.trainable_state_dict()[name]), name


def test_resume_refuses_other_batches(tmp_path, tokenizer):
    config = _config(tmp_path, steps=1, batch_size=1, eval_every=100)
    train(_encoder(tokenizer), tokenizer, EXAMPLES, EXAMPLES[:1], config, progress=False)
    with pytest.raises(ValueError, match="batch_size=1"):
        train(
            _encoder(tokenizer), tokenizer, EXAMPLES, EXAMPLES[:1], _config(tmp_path, steps=2, batch_size=2)
        )


def test_resume_refuses_an_encoder_that_computes_differently(tmp_path, tokenizer):
    config = _config(tmp_path, steps=1, batch_size=1, eval_every=100)
    train(_encoder(tokenizer), tokenizer, EXAMPLES, EXAMPLES[:1], config, progress=False)
    normed = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4, concept_norm=True))
    with pytest.raises(ValueError, match="concept_norm=False"):
        train(normed, tokenizer, EXAMPLES, EXAMPLES[:1], _config(tmp_path, steps=2, batch_size=1))
    # a checkpoint written before an option existed resumes: the option held its default then
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    del state["encoder_config"]["merge_tokens"]
    torch.save(state, tmp_path / "checkpoint.pt")
    train(_encoder(tokenizer), tokenizer, EXAMPLES, EXAMPLES[:1], _config(tmp_path, steps=2, batch_size=1))
    assert [r["step"] for r in _steps(tmp_path / "train.log")] == [1, 2]


def test_long_context_training_reads_only_long_enough_examples(tmp_path, tokenizer):
    layout = ChatLayout.from_tokenizer(tokenizer)
    cut = sorted(len(prepare(e, tokenizer, layout, 20, 384, 48).context_ids) for e in EXAMPLES)
    assert cut[0] < cut[1]  # the shortest example is shorter than the other two
    config = _config(tmp_path, steps=1, batch_size=1, eval_every=100, min_context_tokens=cut[1])
    trainer = SoftTrainer(_encoder(tokenizer), tokenizer, EXAMPLES, EXAMPLES, config)
    lengths = [len(trainer.data[i].context_ids) for i in trainer.order]
    assert len(lengths) == sum(n >= cut[1] for n in cut) and min(lengths) >= cut[1]
    assert trainer.heldout and all(len(item.context_ids) >= cut[1] for item in trainer.heldout)
    trainer.run(progress=False)
    # resuming with another threshold would read other batches; a checkpoint written before the
    # option existed held 0
    with pytest.raises(ValueError, match=f"min_context_tokens={cut[1]}"):
        train(_encoder(tokenizer), tokenizer, EXAMPLES, EXAMPLES, _config(tmp_path, steps=2, batch_size=1))
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    del state["config"]["min_context_tokens"]
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="min_context_tokens=0"):
        train(_encoder(tokenizer), tokenizer, EXAMPLES, EXAMPLES, config)
    with pytest.raises(ValueError, match="no training example"):
        SoftTrainer(
            _encoder(tokenizer),
            tokenizer,
            EXAMPLES,
            EXAMPLES,
            _config(tmp_path / "x", min_context_tokens=384),
        )
    long_only = [e for e in EXAMPLES if len(prepare(e, tokenizer, layout, 20, 384, 48).context_ids) >= cut[1]]
    with pytest.raises(ValueError, match="no held-out example"):
        SoftTrainer(
            _encoder(tokenizer),
            tokenizer,
            long_only,
            EXAMPLES[2:],
            _config(tmp_path / "y", min_context_tokens=cut[1]),
        )
    with pytest.raises(ValueError, match="min_context_tokens"):
        _config(tmp_path, min_context_tokens=385)


def test_a_run_can_start_from_saved_weights(tmp_path, tokenizer):
    first = _encoder(tokenizer)
    train(first, tokenizer, EXAMPLES, EXAMPLES[:1], _config(tmp_path / "a", steps=2, lr=3e-3), progress=False)
    # lr 0: the second run's weights stay the ones it started from (no calibration either)
    config = _config(tmp_path / "b", steps=1, lr=0.0, init_from=str(tmp_path / "a" / "final"))
    second = _encoder(tokenizer)
    train(second, tokenizer, EXAMPLES, EXAMPLES[:1], config, progress=False)
    saved = load_file(str(tmp_path / "a" / "final" / "soft_compressor.safetensors"))
    for name, tensor in second.trainable_state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    normed = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4, concept_norm=True))
    config = _config(tmp_path / "c", steps=1, init_from=str(tmp_path / "a" / "final"))
    with pytest.raises(ValueError, match="concept_norm=False"):
        train(normed, tokenizer, EXAMPLES, EXAMPLES[:1], config, progress=False)
    with pytest.raises(ValueError, match="does not hold"):
        train(
            _encoder(tokenizer),
            tokenizer,
            EXAMPLES,
            EXAMPLES[:1],
            _config(tmp_path / "d", init_from=str(tmp_path)),
        )


def test_gradient_accumulation_matches_one_bigger_batch(tmp_path, tokenizer):
    def gradients(batch_size, grad_accum):
        trainer = SoftTrainer(
            _encoder(tokenizer),
            tokenizer,
            EXAMPLES[:2],
            EXAMPLES[:1],
            _config(tmp_path / f"{batch_size}x{grad_accum}", batch_size=batch_size, grad_accum=grad_accum),
        )
        trainer.order = [0, 1]
        seen = {}
        trainer.optimizer.step = lambda: seen.update(  # type: ignore[method-assign]
            {n: p.grad.clone() for n, p in trainer.encoder.named_parameters() if p.requires_grad}
        )
        trainer.train_step()
        return seen

    padded, accumulated = gradients(2, 1), gradients(1, 2)
    for name, grad in padded.items():
        torch.testing.assert_close(grad, accumulated[name], rtol=1e-4, atol=1e-6)


def test_padded_batch_loss_is_the_mean_of_single_losses(tokenizer):
    encoder = _encoder(tokenizer)
    layout, items = _items(tokenizer)
    reader = Reader(encoder, layout)
    store = TeacherStore("memory", decoder_identity(encoder.causal_lm), torch.float32)
    with torch.no_grad():
        together = distill_loss(reader, items, store)
        alone = [distill_loss(reader, [item], store) for item in items]
    torch.testing.assert_close(together, torch.stack(alone).mean(), rtol=1e-5, atol=1e-7)


def test_distill_loss_is_zero_in_bypass(tokenizer):
    encoder = ConceptEncoder(make_tiny_decoder(tokenizer), bypass=True)
    layout, items = _items(tokenizer)
    store = TeacherStore("off", decoder_identity(encoder.causal_lm), torch.float32)
    assert distill_loss(Reader(encoder, layout), items[:1], store).item() == pytest.approx(0.0, abs=1e-6)


def test_the_reader_continues_from_the_prefix_as_if_it_read_it(tokenizer):
    encoder = _encoder(tokenizer)
    layout, items = _items(tokenizer)
    rows = [encoder.embed_tokens([*item.context_ids, *item.answer_ids]) for item in items]
    counts = [len(item.answer_ids) for item in items]
    with torch.no_grad():
        continued = Reader(encoder, layout).final_states(rows, counts, True)
        whole = Reader(encoder, layout, reuse_prefix=False).final_states(rows, counts, True)
        with encoder.reader() as lm:  # one row alone, prefix included, no padding
            ids = [*layout.prefix_ids, *items[0].context_ids, *items[0].answer_ids]
            hidden = lm.base_model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    assert len(layout.prefix_ids) > 0 and [s.shape[1] for s in continued] == counts
    for a, b in zip(continued, whole):
        torch.testing.assert_close(a, b)
    end = len(ids) - 1
    torch.testing.assert_close(continued[0], torch.stack([h[0, end - counts[0] : end] for h in hidden[1:]]))


def test_teacher_states_are_computed_once_and_read_back_as_stored(tmp_path, tokenizer):
    encoder = _encoder(tokenizer)
    layout, items = _items(tokenizer)
    identity = decoder_identity(encoder.causal_lm)
    calls = []

    def compute(item):
        calls.append(item)
        return teacher_states(Reader(encoder, layout), item)

    disk = TeacherStore("disk", identity, torch.bfloat16, tmp_path)
    first = disk.get(items[0], layout, compute)
    again = TeacherStore("disk", identity, torch.bfloat16, tmp_path).get(items[0], layout, compute)
    assert len(calls) == 1 and first.dtype == torch.bfloat16 and torch.equal(first, again)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    other = TeacherStore("disk", identity, torch.float32, tmp_path)  # precision is part of the key
    other.get(items[0], layout, compute)
    off = TeacherStore("off", identity, torch.float32)
    off.get(items[1], layout, compute)
    off.get(items[1], layout, compute)
    assert len(calls) == 4 and (off.hits, off.misses) == (0, 2)
    assert identity != decoder_identity(make_tiny_decoder(tokenizer, seed=1))


def test_precision_auto_is_bf16_only_where_it_is_native(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(soft_runtime, "native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16" and Runtime.create("cpu").precision == "bf16"
    assert resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(soft_runtime.torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    monkeypatch.setattr(soft_runtime.torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    monkeypatch.setattr(soft_runtime, "native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32" and Runtime.create("cpu").precision == "fp32"
    assert resolve_precision("fp32", cpu) == "fp32"
    with pytest.warns(RuntimeWarning, match="emulated"):
        assert resolve_precision("bf16", cpu) == "bf16"  # asked for: honoured, with a warning
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", cpu)


@pytest.mark.filterwarnings("ignore:precision bf16:RuntimeWarning")
def test_bf16_autocast_trains_on_cpu(tmp_path, tokenizer):
    config = _config(tmp_path, steps=2, reconstruct_steps=1, batch_size=2, precision="bf16", eval_every=2)
    metrics = train(_encoder(tokenizer), tokenizer, EXAMPLES, EXAMPLES, config, progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    stored = list((tmp_path / "teacher-states").glob("*.safetensors"))
    assert len(stored) == 2  # one per distilled example (eval: 2, step 2: the same 2)
    assert load_file(str(stored[0]))["states"].dtype == torch.bfloat16


def test_devices_resolve_and_cuda_is_a_clear_error_without_one():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="precision"):
        Runtime.create("cpu", "fp16")


def test_prepare_respects_budgets(tokenizer):
    layout = ChatLayout.from_tokenizer(tokenizer)
    item = prepare(EXAMPLES[0], tokenizer, layout, 20, 30, 5)
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
    args = parser.parse_args(["train-soft", "--out", "x", "--steps", "3", "--grad-accum", "2"])
    assert args.steps == 3 and args.segment_tokens == 20 and args.grad_accum == 2 and callable(args.handler)
    assert (args.device, args.precision, args.teacher_cache, args.reconstruct_steps) == (
        "auto",
        "auto",
        "disk",
        0,
    )

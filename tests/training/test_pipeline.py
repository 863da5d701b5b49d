"""End to end on real QMSum windows: an LLM teacher (a fake OpenAI-compatible endpoint that deletes
words) labels them, a tiny randomly initialised BERT with the MiniLM tokenizer learns them, training
resumes exactly, and the exported LoRA weights rebuild the same model offline."""

from __future__ import annotations

import json
import re

import httpx
import numpy as np
import pytest
import torch

from promptpress.compressor.training.corpus import meeting_files, meeting_windows
from promptpress.compressor.training.fit import FitConfig, fit
from promptpress.compressor.training.labels import label_windows, read_labelled
from promptpress.compressor.training.llm_teacher import LLMTeacher
from promptpress.compressor.training.qmsum import is_held_out

FILLER = {
    "the",
    "a",
    "an",
    "um",
    "uh",
    "so",
    "and",
    "of",
    "to",
    "is",
    "it",
    "that",
    "you",
    "i",
    "like",
    "yeah",
}


def fake_llm(request: httpx.Request) -> httpx.Response:
    """Deletes filler words and punctuation; also upper-cases one word and adds one that is not there."""
    body = json.loads(request.content)
    prompt = body["messages"][-1]["content"]
    text = prompt.split("compress the following text: ", 1)[1].rsplit("\nThe compressed text is:", 1)[0]
    words = [w for w in re.findall(r"\w+", text) if w.lower() not in FILLER]
    if words:
        words[0] = words[0].upper()
    words.append("meanwhile")
    reply = {"choices": [{"message": {"role": "assistant", "content": " ".join(words)}}]}
    return httpx.Response(200, json=reply)


@pytest.fixture(scope="module")
def labelled(qmsum_dir, splitter, tmp_path_factory):
    files = meeting_files(qmsum_dir)
    train = next(p for p in files if not is_held_out(p.stem, 0.1))
    held = next(p for p in files if is_held_out(p.stem, 0.1))
    windows = meeting_windows(train, splitter, 128)[:10] + meeting_windows(held, splitter, 128)[:3]
    teacher = LLMTeacher("http://teacher.test/v1", "fake", splitter, transport=httpx.MockTransport(fake_llm))
    out = tmp_path_factory.mktemp("labels") / "labels.jsonl"
    stats = label_windows(windows, teacher, splitter, out, progress=False)
    assert stats["labelled"] == len(windows)
    again = label_windows(windows, teacher, splitter, out, progress=False)  # resumes: nothing left to do
    assert again["labelled"] == 0 and again["skipped"] == len(windows)
    return read_labelled(out, variation_quantile=1.0, max_gap=1.0)


def test_llm_teacher_labels_follow_the_deletions(labelled, splitter):
    record = labelled[0]
    words = splitter.encode(record.window.text).words()
    for word, keep in zip(words, record.keep):
        if word.lower() in FILLER or not word.isalnum():
            assert not keep, word
    assert record.keep.mean() > 0.3
    assert record.quality["variation_rate"] > 0  # "meanwhile" is not in the original
    assert record.quality["alignment_gap"] == pytest.approx(0.0, abs=0.05)


@pytest.fixture(scope="module")
def tiny_encoder(tokenizer, tmp_path_factory):
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=2,
    )
    path = tmp_path_factory.mktemp("tiny-bert")
    BertForTokenClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _config(out, encoder, steps=24):
    return FitConfig(
        out_dir=str(out),
        encoder=str(encoder),
        method="lora",
        lora_r=4,
        steps=steps,
        batch_size=4,
        lr=5e-3,
        eval_every=12,
        save_every=6,
        seed=0,
    )


def _losses(run):
    return [r["loss"] for r in map(json.loads, (run / "train.log").read_text().splitlines()) if "loss" in r]


def test_training_loss_falls_and_resume_is_exact(labelled, tiny_encoder, tmp_path):
    full = tmp_path / "full"
    metrics = fit(labelled, _config(full, tiny_encoder), progress=False)
    losses = _losses(full)
    assert len(losses) == 24 and metrics["steps"] == 24
    assert np.mean(losses[-6:]) < 0.92 * np.mean(losses[:6])  # measured: 0.68 -> 0.60
    assert metrics["heldout_auc"] > 0.6

    # interrupted after step 7 (checkpoint at step 6), then resumed
    interrupted = tmp_path / "interrupted"
    calls = {"n": 0}

    def stop(module, args):
        if module.training:
            calls["n"] += 1
            if calls["n"] > 7:
                raise KeyboardInterrupt

    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(tiny_encoder, num_labels=2)
    handle = model.register_forward_pre_hook(stop)
    with pytest.raises(KeyboardInterrupt):
        fit(labelled, _config(interrupted, tiny_encoder), progress=False, model=model)
    handle.remove()
    fit(labelled, _config(interrupted, tiny_encoder), progress=False, resume=True)
    a = AutoModelForTokenClassification.from_pretrained(full / "final").state_dict()
    b = AutoModelForTokenClassification.from_pretrained(interrupted / "final").state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)


def test_exported_weights_rebuild_the_model_offline(labelled, tiny_encoder, tmp_path, monkeypatch):
    from promptpress.compressor import load_compressor
    from promptpress.compressor.builtin import materialize
    from promptpress.compressor.training.package import export

    run = tmp_path / "run"
    fit(labelled, _config(run, tiny_encoder, steps=6), progress=False)
    shipped = export(run, tmp_path / "shipped", "tiny")
    assert shipped.with_suffix(".safetensors").stat().st_size < 1_000_000
    monkeypatch.setenv("PROMPTPRESS_CACHE_DIR", str(tmp_path / "cache"))
    built = materialize(str(shipped))
    assert materialize(str(shipped)) == built  # cached
    text = labelled[-1].window.text
    ours = load_compressor(built).compress(text, rate=0.5).compressed_text
    reference = load_compressor(run / "final").compress(text, rate=0.5).compressed_text
    assert load_compressor(built).trained
    assert ours == reference
    shipped.with_suffix(".safetensors").write_bytes(b"broken")
    from promptpress.compressor import AssetError

    with pytest.raises(AssetError, match="sha256"):
        materialize(str(shipped))


def test_snapshots_are_loadable_and_leave_training_unchanged(labelled, tiny_encoder, tmp_path, monkeypatch):
    from dataclasses import replace

    from transformers import AutoModelForTokenClassification

    from promptpress.compressor import load_compressor

    plain, snapped = tmp_path / "plain", tmp_path / "snapped"
    fit(labelled, _config(plain, tiny_encoder, steps=12), progress=False)
    fit(labelled, replace(_config(snapped, tiny_encoder, steps=12), snapshot_every=4), progress=False)
    assert sorted(p.name for p in (snapped / "snapshots").iterdir()) == ["step-00004", "step-00008"]
    final = AutoModelForTokenClassification.from_pretrained(snapped / "final").state_dict()
    # merging a copy for the snapshot must not touch the adapters training goes on with
    for name, tensor in AutoModelForTokenClassification.from_pretrained(plain / "final").state_dict().items():
        torch.testing.assert_close(tensor, final[name], msg=name)
    early = AutoModelForTokenClassification.from_pretrained(snapped / "snapshots" / "step-00004").state_dict()
    assert any(not torch.equal(early[name], final[name]) for name in final)
    text = labelled[-1].window.text
    snapshot = snapped / "snapshots" / "step-00004"
    ours = load_compressor(snapshot).compress(text, rate=0.5).compressed_text
    assert ours
    # a snapshot ships like a finished run
    from promptpress.compressor.builtin import materialize
    from promptpress.compressor.training.package import export

    monkeypatch.setenv("PROMPTPRESS_CACHE_DIR", str(tmp_path / "cache"))
    shipped = materialize(str(export(snapshot, tmp_path / "shipped", "early")))
    assert load_compressor(shipped).compress(text, rate=0.5).compressed_text == ours
    with pytest.raises(ValueError, match="snapshot_every"):
        replace(_config(snapped, tiny_encoder), snapshot_every=-1)

import pytest
import torch
from soft_helpers import ALICE, make_tiny_decoder

from promptpress.compressor.soft.model import ConceptEncoder, SoftConfig
from promptpress.compressor.soft.quantize import apply_precision
from promptpress.compressor.soft.segmenter import segment_text


@pytest.fixture
def segments(tokenizer):
    return [s.token_ids for s in segment_text(ALICE, tokenizer, 20)]


def test_concept_embeddings_have_ceil_n_over_c_rows(tiny_decoder, segments):
    encoder = ConceptEncoder(tiny_decoder, SoftConfig(segment_tokens=20, rate=2)).eval()
    out = encoder.encode(segments, batch_size=7)
    assert len(out) == len(segments)
    for ids, emb in zip(segments, out, strict=True):
        assert emb.shape == (-(-len(ids) // 2), 64)
        assert torch.isfinite(emb).all()


def test_encoding_is_deterministic_and_independent_of_batching(tiny_decoder, segments):
    encoder = ConceptEncoder(tiny_decoder).eval()
    with torch.no_grad():
        batched = encoder.encode(segments, batch_size=64)
        again = encoder.encode(segments, batch_size=64)
        alone = [encoder.encode([ids])[0] for ids in segments[:5]]
    for a, b in zip(batched, again, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(batched, alone, strict=False):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_segments_longer_than_s_are_rejected(tiny_decoder):
    encoder = ConceptEncoder(tiny_decoder, SoftConfig(segment_tokens=4))
    with pytest.raises(ValueError, match=r"1\.\.4 tokens"):
        encoder.encode([[1, 2, 3, 4, 5]])
    with pytest.raises(ValueError):
        encoder.encode([[]])


def test_bypass_concepts_are_token_embeddings(tiny_decoder, segments):
    encoder = ConceptEncoder(tiny_decoder, bypass=True)
    out = encoder.encode(segments[:3])
    table = tiny_decoder.get_input_embeddings().weight
    for ids, emb in zip(segments, out, strict=False):
        assert torch.equal(emb, table[list(ids)])


def test_only_small_weights_are_saved_and_they_load_back(tmp_path, tokenizer, segments):
    encoder = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4)).eval()
    with torch.no_grad():
        encoder.proj.weight.add_(0.01)  # "trained"
    encoder.save(tmp_path)
    saved = encoder.trainable_state_dict()
    assert any("lora_A" in k for k in saved) and "proj.weight" in saved and "queries" in saved
    assert not any("embed_tokens" in k or "lm_head" in k for k in saved)
    loaded = ConceptEncoder.load(tmp_path, make_tiny_decoder(tokenizer)).eval()
    assert loaded.config == encoder.config
    assert loaded.fingerprint() == encoder.fingerprint()
    with torch.no_grad():
        assert torch.equal(loaded.encode(segments[:4])[0], encoder.encode(segments[:4])[0])
    fresh = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4))
    assert fresh.fingerprint() != encoder.fingerprint()
    encoder.save(tmp_path / "half", dtype=torch.float16)
    half = ConceptEncoder.load(tmp_path / "half", make_tiny_decoder(tokenizer))
    assert half.proj.weight.dtype == torch.float32
    assert torch.equal(half.proj.weight, encoder.proj.weight.detach().half().float())
    size = (tmp_path / "half" / "soft_compressor.safetensors").stat().st_size
    assert size < 0.6 * (tmp_path / "soft_compressor.safetensors").stat().st_size


def test_loading_mismatched_weights_fails_clearly(tmp_path, tokenizer):
    ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4)).save(tmp_path)
    other = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=8))
    with pytest.raises(ValueError, match="do not match"):
        from safetensors.torch import load_file

        other.load_trainable(load_file(str(tmp_path / "soft_compressor.safetensors")))
    with pytest.raises(FileNotFoundError):
        ConceptEncoder.load(tmp_path / "missing", make_tiny_decoder(tokenizer))


def test_calibration_matches_token_embedding_scale(tiny_decoder, segments):
    encoder = ConceptEncoder(tiny_decoder).eval()
    encoder.calibrate(segments[:8])
    with torch.no_grad():
        out = torch.cat(encoder.encode(segments[:8]))
    target = tiny_decoder.get_input_embeddings().weight.pow(2).mean().sqrt()
    torch.testing.assert_close(out.pow(2).mean().sqrt(), target, rtol=1e-3, atol=1e-6)


def test_concept_norm_gives_every_embedding_the_token_rms(tokenizer, segments, tmp_path):
    decoder = make_tiny_decoder(tokenizer)
    encoder = ConceptEncoder(decoder, SoftConfig(lora_r=4, concept_norm=True)).eval()
    with torch.no_grad():
        encoder.proj.weight.mul_(50.0)  # a projection grown loud in training
        out = torch.cat(encoder.encode(segments[:6]))
    target = decoder.get_input_embeddings().weight.float().pow(2).mean().sqrt()
    per_vector = out.float().pow(2).mean(dim=-1).sqrt()
    torch.testing.assert_close(per_vector, target.expand_as(per_vector), rtol=1e-4, atol=1e-7)
    assert encoder.calibrate(segments[:6]) == 1.0  # the norm sets the size; calibration leaves it
    encoder.save(tmp_path)
    assert ConceptEncoder.load(tmp_path, make_tiny_decoder(tokenizer)).config.concept_norm is True


def test_untrained_merge_tokens_encoder_gives_the_mean_of_each_run_of_c_tokens(tokenizer, segments):
    decoder = make_tiny_decoder(tokenizer)
    encoder = ConceptEncoder(decoder, SoftConfig(lora_r=4, rate=3, merge_tokens=True)).eval()
    assert encoder.calibrate(segments[:4]) == 1.0
    table = decoder.get_input_embeddings().weight.detach()
    with torch.no_grad():
        out = encoder.encode(segments[:4])
    for ids, emb in zip(segments[:4], out, strict=False):
        assert emb.shape[0] == -(-len(ids) // 3)
        for j, row in enumerate(emb):
            group = table[list(ids[3 * j : 3 * j + 3])]
            mean = group.mean(dim=0)
            expected = mean * group.norm(dim=-1).mean() / mean.norm()
            torch.testing.assert_close(row, expected, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        encoder.proj.bias.add_(0.01)  # trained: the projection now adds to the merged embeddings
        moved = encoder.encode(segments[:1])[0]
    assert not torch.allclose(moved, out[0])


def test_fingerprint_of_weights_saved_before_concept_norm_existed_is_unchanged(tokenizer, tmp_path):
    import json

    encoder = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4))
    encoder.save(tmp_path)
    config = json.loads((tmp_path / "soft_config.json").read_text())
    del config["concept_norm"], config["merge_tokens"]  # what a checkpoint written before them holds
    (tmp_path / "soft_config.json").write_text(json.dumps(config))
    old = ConceptEncoder.load(tmp_path, make_tiny_decoder(tokenizer))
    assert old.fingerprint() == encoder.fingerprint()
    for option in ("concept_norm", "merge_tokens"):
        other = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4, **{option: True}))
        other.load_trainable(encoder.trainable_state_dict())
        assert other.fingerprint() != encoder.fingerprint()


def test_fingerprint_ignores_provenance_text(tokenizer, tmp_path):
    encoder = ConceptEncoder(make_tiny_decoder(tokenizer), SoftConfig(lora_r=4))
    with torch.no_grad():
        encoder.proj.weight.add_(0.01)
    encoder.save(tmp_path / "a", extra={"status": "first wording"})
    encoder.save(tmp_path / "b", extra={"status": "second wording", "step": "60"})
    a = ConceptEncoder.load(tmp_path / "a", make_tiny_decoder(tokenizer))
    b = ConceptEncoder.load(tmp_path / "b", make_tiny_decoder(tokenizer))
    assert a.config.extra != b.config.extra
    assert a.fingerprint() == b.fingerprint() == encoder.fingerprint()


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_precision_modes_still_encode_and_read(tiny_decoder, segments, mode):
    encoder = apply_precision(ConceptEncoder(tiny_decoder).eval(), mode)
    with torch.no_grad():
        out = encoder.encode(segments[:3])
        with encoder.reader() as lm:
            logits = lm(inputs_embeds=torch.cat(out)[None]).logits
    assert out[0].shape == (-(-len(segments[0]) // 2), 64)
    assert torch.isfinite(logits.float()).all()
    with pytest.raises(ValueError):
        apply_precision(encoder, "int4")


def test_shipped_weights_match_their_config():
    """The checkpoint in compressor/models/soft loads into an encoder of its config (Qwen2.5-0.5B shapes)."""
    from safetensors.torch import load_file

    from promptpress.compressor.soft.engine import SHIPPED_WEIGHTS

    config = SoftConfig.from_json((SHIPPED_WEIGHTS / "soft_config.json").read_text())
    state = load_file(str(SHIPPED_WEIGHTS / "soft_compressor.safetensors"))
    hidden = 896  # Qwen2.5-0.5B
    assert state["queries"].shape == (config.n_queries, hidden)
    assert state["proj.weight"].shape == (hidden, hidden)
    lora_a = [k for k in state if "lora_A" in k]
    assert len(lora_a) == 24 * len(config.lora_targets)
    assert all(state[k].shape == (config.lora_r, hidden) for k in lora_a)
    assert all(torch.isfinite(t.float()).all() for t in state.values())

import base64
import io
import json

import pytest
import torch

from promptpress.compressor.soft.vllm_payload import (
    completion_payload,
    decode_prompt_embeds,
    encode_prompt_embeds,
)


def test_payload_matches_vllm_prompt_embeds_format():
    embeds = torch.randn(13, 896)
    payload = completion_payload("Qwen/Qwen2.5-Coder-0.5B-Instruct", embeds, max_tokens=32, stop=["\n\n"])
    assert set(payload) == {"model", "prompt_embeds", "max_tokens", "temperature", "stop"}
    assert "prompt" not in payload
    json.dumps(payload)  # JSON-serialisable as is
    # what vLLM's server does: base64-decode, torch.load with weights_only
    tensor = torch.load(
        io.BytesIO(base64.b64decode(payload["prompt_embeds"], validate=True)), weights_only=True
    )
    assert tensor.shape == (13, 896) and tensor.dtype == torch.float16
    assert torch.equal(tensor, embeds.to(torch.float16))


def test_encoding_keeps_dtype_and_drops_a_batch_dimension():
    embeds = torch.randn(1, 5, 8, dtype=torch.bfloat16)
    back = decode_prompt_embeds(encode_prompt_embeds(embeds))
    assert back.dtype == torch.bfloat16 and torch.equal(back, embeds[0])
    view = torch.randn(100, 8)[:3]  # a view: only its own 3 rows are serialised
    assert len(encode_prompt_embeds(view)) < len(encode_prompt_embeds(torch.randn(100, 8)))


@pytest.mark.parametrize(
    "bad",
    [
        torch.randn(8),
        torch.randn(0, 8),
        torch.randn(2, 3, 8),
        torch.ones(3, 8, dtype=torch.int64),
        torch.full((2, 4), float("nan")),
    ],
)
def test_bad_embeddings_are_rejected(bad):
    with pytest.raises((ValueError, TypeError)):
        encode_prompt_embeds(bad)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        completion_payload("", torch.randn(2, 4))
    with pytest.raises(ValueError):
        completion_payload("m", torch.randn(2, 4), max_tokens=0)
    with pytest.raises(ValueError):
        completion_payload("m", torch.randn(2, 4), prompt="hi")
    with pytest.raises(ValueError):
        decode_prompt_embeds("not base64!")

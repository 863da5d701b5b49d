"""Send soft-compressed prompts to a vLLM server (for users with GPUs).

vLLM's OpenAI-compatible Completions API accepts pre-computed input embeddings in a
``prompt_embeds`` field: a base64 string of a ``torch.save``-d tensor of shape
``(positions, hidden_size)`` in float32, bfloat16 or float16 (the server loads it with
``torch.load(..., weights_only=True)``). Start the server with ``--enable-prompt-embeds`` and the
*same* decoder the concept encoder was trained for (here Qwen2.5-Coder-0.5B-Instruct):

    vllm serve Qwen/Qwen2.5-Coder-0.5B-Instruct --enable-prompt-embeds

The Completions API applies no chat template to embeddings: `SoftCompressor.prompt` already
embeds the chat prefix, the concept embeddings, the question and the assistant header, so send
its ``embeds`` as they are::

    prompt = soft.prompt(contexts, question)
    payload = completion_payload("Qwen/Qwen2.5-Coder-0.5B-Instruct", prompt.embeds, max_tokens=128)
    httpx.post(f"{base_url}/v1/completions", json=payload)

With the ``openai`` client, pass ``prompt=""`` (the client requires it) and
``extra_body={"prompt_embeds": encode_prompt_embeds(prompt.embeds)}``.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import torch

ALLOWED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def encode_prompt_embeds(embeds: torch.Tensor, dtype: torch.dtype | None = None) -> str:
    """Base64 of ``torch.save(embeds)`` as vLLM expects; `dtype` converts first (e.g. float16)."""
    if not isinstance(embeds, torch.Tensor):
        raise TypeError(f"prompt embeddings must be a torch.Tensor, got {type(embeds).__name__}")
    if embeds.dim() == 3 and embeds.shape[0] == 1:
        embeds = embeds[0]
    if embeds.dim() != 2 or embeds.shape[0] == 0:
        raise ValueError(f"prompt embeddings must have shape (positions, hidden), got {tuple(embeds.shape)}")
    tensor = embeds.detach().to("cpu", dtype=dtype or embeds.dtype).contiguous()
    if tensor.dtype not in ALLOWED_DTYPES:
        raise ValueError(f"vLLM accepts float32, bfloat16 or float16 prompt embeddings, got {tensor.dtype}")
    if not torch.isfinite(tensor.float()).all():
        raise ValueError("prompt embeddings contain NaN or infinite values")
    buf = io.BytesIO()
    torch.save(tensor.clone(), buf)  # clone: save only this tensor's storage, not a larger parent
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_prompt_embeds(data: str) -> torch.Tensor:
    """Inverse of `encode_prompt_embeds` (what the server does), for checks and tests."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"prompt_embeds is not valid base64: {exc}") from exc
    tensor = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
    if not isinstance(tensor, torch.Tensor):
        raise ValueError("prompt_embeds does not hold a tensor")
    return tensor


def completion_payload(
    model: str,
    embeds: torch.Tensor,
    max_tokens: int = 128,
    temperature: float = 0.0,
    dtype: torch.dtype | None = torch.float16,
    **extra: Any,
) -> dict[str, Any]:
    """JSON body for ``POST /v1/completions`` on a vLLM server started with ``--enable-prompt-embeds``.

    No ``prompt`` key is sent: with both fields vLLM would run the text prompt as a second prompt.
    `extra` adds other Completions parameters (``stop``, ``top_p``, ``stream``...).
    """
    if not model:
        raise ValueError("model name is required")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if "prompt" in extra or "prompt_embeds" in extra:
        raise ValueError("pass the embeddings as `embeds`, not as prompt/prompt_embeds")
    return {
        "model": model,
        "prompt_embeds": encode_prompt_embeds(embeds, dtype=dtype),
        "max_tokens": max_tokens,
        "temperature": temperature,
        **extra,
    }

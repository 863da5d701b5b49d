"""Greedy decoding from ``inputs_embeds`` with a KV cache, and KV-cache accounting."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from transformers import PreTrainedModel


@torch.no_grad()
def prefill(model: PreTrainedModel, inputs_embeds: torch.Tensor) -> tuple[torch.Tensor, object]:
    """Run the prompt (T, hidden) through `model`; returns (last-position logits, KV cache)."""
    if inputs_embeds.dim() != 2:
        raise ValueError(f"inputs_embeds must be (tokens, hidden), got shape {tuple(inputs_embeds.shape)}")
    out = model(inputs_embeds=inputs_embeds[None], use_cache=True, logits_to_keep=1)
    return out.logits[0, -1], out.past_key_values


@torch.no_grad()
def greedy_generate(
    model: PreTrainedModel,
    inputs_embeds: torch.Tensor,
    max_new_tokens: int = 64,
    eos_token_ids: Iterable[int] = (),
    on_token: Callable[[int], bool | None] | None = None,
) -> list[int]:
    """Greedy continuation of a prompt given as embeddings (T, hidden); stops at an EOS id.

    `on_token` is called with each new token id as soon as it is chosen (streaming); returning True
    stops generation after that token (stop strings, a client that went away).
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    eos = set(eos_token_ids)
    logits, past = prefill(model, inputs_embeds)
    emb = model.get_input_embeddings()
    out: list[int] = []
    for _ in range(max_new_tokens):
        token = int(logits.argmax())
        out.append(token)
        stop = on_token is not None and bool(on_token(token))
        if stop or token in eos:
            break
        step = model(
            inputs_embeds=emb(torch.tensor([[token]], device=inputs_embeds.device)),
            past_key_values=past,
            use_cache=True,
        )
        logits, past = step.logits[0, -1], step.past_key_values
    return out


def kv_cache_bytes(past: object) -> int:
    """Bytes held by a KV cache (transformers `Cache` with `.layers`, or legacy tuples)."""
    total = 0
    layers = getattr(past, "layers", None)
    if layers is not None:
        for layer in layers:
            for name in ("keys", "values"):
                t = getattr(layer, name, None)
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
        return total
    for layer in past:  # type: ignore[attr-defined]
        for t in layer:
            total += t.numel() * t.element_size()
    return total

"""CompLLM-style segment-wise soft compression (concept embeddings for a local decoder).

Each context is cut into stable segments of <= S backend tokens (`segmenter`); each segment is
encoded independently into ceil(n / C) *concept embeddings* by the decoder itself with LoRA, S/C
learned query positions and one linear projection (`model`); the frozen decoder reads the concept
embeddings of all segments plus the question through ``inputs_embeds`` (`engine`). Concept
embeddings are cached per segment (fp16) in the segment cache (`promptpress.cache`).

Modules: ``segmenter`` (segmentation rule), ``decoder`` (load the GGUF/HF decoder, safetensors copy),
``model`` (ConceptEncoder, SoftConfig, save/load of the small weights), ``prompt`` (chat layout),
``generation`` (greedy decoding from embeddings, KV-cache size), ``quantize`` (fp32/bf16/int8),
``engine`` (SoftCompressor: cache + compress + generate), ``vllm_payload`` (prompt-embeds requests).
Training lives in `promptpress.compressor.training` (``soft_train`` and its modules; ``promptpress
train-soft``), which nothing here imports.

Attributes are imported lazily: ``import promptpress.compressor.soft`` does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SoftCompressor": "engine",
    "SoftGeneration": "engine",
    "SoftPrompt": "engine",
    "ConceptEncoder": "model",
    "SoftConfig": "model",
    "Context": "prompt",
    "chat_pieces": "prompt",
    "Segment": "segmenter",
    "segment_text": "segmenter",
    "segment_texts": "segmenter",
    "load_decoder": "decoder",
    "completion_payload": "vllm_payload",
    "encode_prompt_embeds": "vllm_payload",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Inference with the soft compressor: contexts -> cached concept embeddings -> generation.

    from promptpress.compressor.soft.engine import SoftCompressor
    soft = SoftCompressor.from_pretrained()                 # shipped weights, packaged Qwen decoder
    out = soft.generate(["...long context..."], "What did they decide?", max_new_tokens=64)
    out.text, out.prompt_positions, out.original_positions, out.cache_hits

    # a whole chat: long blocks become concept embeddings, the rest stays tokens (`prompt.chat_pieces`)
    pieces = chat_pieces(soft.tokenizer, messages, min_context_tokens=64)
    out = soft.generate_prompt(soft.prompt_pieces(pieces), max_new_tokens=64, on_token=print)

Each context is segmented on its own (`segmenter`), each segment's concept embeddings are looked
up in the segment cache (fp16, keyed by encoder fingerprint + token ids) and only the misses are
encoded, in batches. The frozen decoder then reads prefix + concept embeddings + question.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...cache import ArrayCodec, KeySpace, SegmentCache, get_or_compute
from ..assets import DEFAULT_DECODER
from ..extras import require
from .decoder import load_decoder
from .generation import greedy_generate
from .model import ConceptEncoder, SoftConfig
from .prompt import ChatLayout, Context, Piece
from .quantize import apply_precision
from .segmenter import Segment, segment_text

_CODEC = ArrayCodec(required=("concepts",))
SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "models" / "soft"


@dataclass
class SoftPrompt:
    """The decoder input for one request and how it was obtained."""

    embeds: torch.Tensor  # (positions, hidden)
    original_positions: int  # prompt length had the context been sent as tokens
    segments: int
    cache_hits: int
    compress_seconds: float


@dataclass
class SoftGeneration:
    text: str
    token_ids: list[int]
    prompt_positions: int
    original_positions: int
    cache_hits: int
    segments: int
    timings: dict[str, float] = field(default_factory=dict)


class SoftCompressor:
    def __init__(
        self,
        encoder: ConceptEncoder,
        tokenizer: PreTrainedTokenizerBase,
        cache: SegmentCache | None = None,
        layout: ChatLayout | None = None,
        batch_size: int = 64,
        namespace: str = "default",
        precision: str = "fp32",
    ):
        self.encoder = encoder.eval()
        self.tokenizer = tokenizer
        self.cache = cache
        self.layout = layout or ChatLayout.from_tokenizer(tokenizer)
        self.batch_size = batch_size
        # one decoder serves as encoder (LoRA on) and reader (LoRA off): calls take turns
        self._model_lock = threading.RLock()
        self.fingerprint = encoder.fingerprint()
        config = encoder.config
        self.keyspace = KeySpace(
            namespace, self.fingerprint, "soft-v1", f"s{config.segment_tokens}-c{config.rate}-{precision}"
        )
        self.hidden_size = int(encoder.embedding_table.shape[1])

    @classmethod
    def from_pretrained(
        cls,
        weights: str | os.PathLike[str] | None = None,
        decoder: str | None = None,
        precision: str = "fp32",
        cache: SegmentCache | None = None,
        bypass: bool = False,
        namespace: str = "default",
    ) -> SoftCompressor:
        """Load the decoder and the trained weights (default: the ones shipped in the package).

        With ``bypass=True`` no weights are loaded and concept embeddings are token embeddings.
        """
        require("the soft compressor", "soft")  # peft (LoRA encoder) and gguf (decoders from GGUF)
        if bypass:
            model, tokenizer = load_decoder(decoder or DEFAULT_DECODER)
            encoder = ConceptEncoder(model, bypass=True)
        else:
            path = Path(weights) if weights is not None else SHIPPED_WEIGHTS
            config = SoftConfig.from_json((path / "soft_config.json").read_text()) if path.is_dir() else None
            if config is None:
                raise FileNotFoundError(
                    f"no soft-compressor weights at {path}; train some with `promptpress train-soft` "
                    "or pass bypass=True"
                )
            model, tokenizer = load_decoder(decoder or config.decoder)
            encoder = ConceptEncoder.load(path, model)
        apply_precision(encoder, precision)
        return cls(encoder, tokenizer, cache=cache, precision=precision, namespace=namespace)

    # -- compression -------------------------------------------------------------------------
    def segments(self, contexts: Sequence[str]) -> list[Segment]:
        if isinstance(contexts, str):
            raise TypeError("contexts must be a sequence of strings, not one string")
        s = self.encoder.config.segment_tokens
        return [seg for ctx in contexts for seg in segment_text(ctx, self.tokenizer, s)]

    def segment_keys(self, segments: Sequence[Segment]) -> list[str]:
        """Cache keys: encoder+decoder fingerprint, S, C and precision, and the segment's token ids."""
        return self.keyspace.keys([",".join(map(str, s.token_ids)) for s in segments])

    @torch.no_grad()
    def concept_embeddings(self, segments: Sequence[Segment]) -> tuple[list[torch.Tensor], int]:
        """Concept embeddings of each segment (cache first); returns (embeddings, segments not encoded).

        Values are rounded to fp16 whether they come from the cache or not, so a request reads the
        same numbers cold or cached. A failing cache degrades to encoding everything.
        """
        encoded = 0

        def compute(indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
            nonlocal encoded
            encoded += len(indices)
            with self._model_lock:
                out = self.encoder.encode([segments[i].token_ids for i in indices], self.batch_size)
            return [{"concepts": e.detach().to(torch.float16).cpu().numpy()} for e in out]

        if not segments:
            return [], 0
        values = None
        if self.cache is not None:
            try:
                values = get_or_compute(self.cache, self.segment_keys(segments), compute, codec=_CODEC)
            except Exception:  # the cache failed (not the encoder): compute without it
                encoded = 0
        if values is None:
            values = compute(range(len(segments)))
        dtype = self.encoder.embedding_table.dtype
        result = []
        for i, (seg, value) in enumerate(zip(segments, values, strict=True)):
            arr = value["concepts"]
            if arr.shape != (self.encoder.config.n_concepts(len(seg.token_ids)), self.hidden_size):
                arr = compute([i])[0]["concepts"]  # a value of another shape: recompute
            result.append(torch.from_numpy(np.array(arr)).to(dtype))
        return result, len(segments) - encoded

    def prompt(self, contexts: Sequence[str], question: str) -> SoftPrompt:
        start = time.perf_counter()
        segments = self.segments(contexts)
        concepts, hits = self.concept_embeddings(segments)
        question_ids = self.layout.question_ids(self.tokenizer, question)
        with torch.no_grad():
            embeds = self.layout.embed_prompt(self.encoder.embed_tokens, concepts, question_ids)
        original = len(self.layout.prefix_ids) + sum(len(s.token_ids) for s in segments) + len(question_ids)
        return SoftPrompt(embeds, original, len(segments), hits, time.perf_counter() - start)

    def prompt_pieces(self, pieces: Sequence[Piece]) -> SoftPrompt:
        """The decoder input for pieces in order: `Context` pieces as concept embeddings (each context
        segmented on its own), `str` pieces as their tokens (special tokens in them included)."""
        start = time.perf_counter()
        per_context = [self.segments([p.text]) for p in pieces if isinstance(p, Context)]
        concepts, hits = self.concept_embeddings([seg for segs in per_context for seg in segs])
        parts: list[torch.Tensor] = []
        original = 0
        next_concept = iter(concepts)
        next_context = iter(per_context)
        with torch.no_grad():
            for piece in pieces:
                if isinstance(piece, Context):
                    segments = next(next_context)
                    parts.extend(next(next_concept) for _ in segments)
                    original += sum(len(s.token_ids) for s in segments)
                elif piece:
                    ids = list(self.tokenizer(piece, add_special_tokens=False)["input_ids"])
                    parts.append(self.encoder.embed_tokens(ids))
                    original += len(ids)
        if not parts:
            raise ValueError("the prompt is empty")
        dtype = self.encoder.embedding_table.dtype
        embeds = torch.cat([p.to(dtype) for p in parts])
        n_segments = sum(len(segs) for segs in per_context)
        return SoftPrompt(embeds, original, n_segments, hits, time.perf_counter() - start)

    def generate(
        self,
        contexts: Sequence[str],
        question: str,
        max_new_tokens: int = 128,
        on_token: Callable[[int], bool | None] | None = None,
    ) -> SoftGeneration:
        """Greedy answer of the frozen decoder reading compressed `contexts` and `question`."""
        return self.generate_prompt(self.prompt(contexts, question), max_new_tokens, on_token)

    def generate_prompt(
        self,
        prompt: SoftPrompt,
        max_new_tokens: int = 128,
        on_token: Callable[[int], bool | None] | None = None,
    ) -> SoftGeneration:
        """Greedy answer of the frozen decoder reading `prompt`; `on_token` as in `greedy_generate`."""
        start = time.perf_counter()
        with self._model_lock, self.encoder.reader() as model:
            ids = greedy_generate(model, prompt.embeds, max_new_tokens, self.eos_token_ids(model), on_token)
        text = str(self.tokenizer.decode(ids, skip_special_tokens=True))
        return SoftGeneration(
            text=text,
            token_ids=ids,
            prompt_positions=prompt.embeds.shape[0],
            original_positions=prompt.original_positions,
            cache_hits=prompt.cache_hits,
            segments=prompt.segments,
            timings={"compress_s": prompt.compress_seconds, "generate_s": time.perf_counter() - start},
        )

    def eos_token_ids(self, model: PreTrainedModel | None = None) -> set[int]:
        ids = set()
        config = getattr(model or self.encoder.causal_lm, "generation_config", None)
        eos = getattr(config, "eos_token_id", None)
        for value in eos if isinstance(eos, (list, tuple)) else [eos]:
            if value is not None:
                ids.add(int(value))
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        return ids

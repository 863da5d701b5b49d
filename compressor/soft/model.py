"""The CompLLM-style concept encoder: decoder + LoRA + S/C learned queries + one linear projection.

A segment of n <= S tokens is encoded by running the decoder (with LoRA adapters on) over

    [embeddings of the n segment tokens] + [the first ceil(n / C) learned query embeddings]

and projecting the last hidden states at the query positions with one linear layer (with
``merge_tokens``, adding each to the mean of the C token embeddings it stands for; with
``concept_norm``, then rescaling each to the token embeddings' RMS). The results,
``ceil(n / C)`` vectors in the decoder's input-embedding space, are the segment's *concept
embeddings*. The frozen decoder (adapters off) then reads the concept embeddings of all segments
followed by the question tokens through ``inputs_embeds``.

Segments are encoded independently (right-padded into batches), which is what makes their
embeddings cacheable. In *bypass* mode there is no LoRA, no query and no projection: the concept
embeddings of a segment are its token embeddings, so generation from them must equal generation
from the tokens (the pipeline's correctness check).

Only the small trained tensors (LoRA, queries, projection) are saved: ``soft_compressor.safetensors``
plus ``soft_config.json`` in a directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import cast

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from transformers import PreTrainedModel

from ..assets import DEFAULT_DECODER

WEIGHTS_NAME = "soft_compressor.safetensors"
CONFIG_NAME = "soft_config.json"


@dataclass(frozen=True)
class SoftConfig:
    segment_tokens: int = 20  # S: at most this many tokens per segment
    rate: int = 2  # C: tokens per concept embedding
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    # True: every concept embedding is rescaled to the RMS of the decoder's token embeddings, so the
    # frozen reader sees vectors of a token's size (False: the projection sets their size freely)
    concept_norm: bool = False
    # True: each concept embedding starts as the mean of the embeddings of the C tokens it stands
    # for (rescaled to their mean norm) and the projection, zero at init, adds to it (reading the
    # hidden states at unit RMS, writing in units of the token-embedding RMS)
    merge_tokens: bool = False
    decoder: str = DEFAULT_DECODER
    extra: dict[str, str] = field(default_factory=dict)  # provenance (training data, steps, ...)

    def __post_init__(self) -> None:
        if self.segment_tokens < 1 or self.rate < 1:
            raise ValueError(f"segment_tokens and rate must be >= 1, got {self.segment_tokens}, {self.rate}")

    @property
    def n_queries(self) -> int:
        return math.ceil(self.segment_tokens / self.rate)

    def n_concepts(self, n_tokens: int) -> int:
        return math.ceil(n_tokens / self.rate)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SoftConfig:
        data = json.loads(text)
        data["lora_targets"] = tuple(data.get("lora_targets", ()))
        return cls(**data)


class ConceptEncoder(nn.Module):
    """Turns segments (lists of token ids) into concept embeddings for `decoder`."""

    def __init__(self, decoder: PreTrainedModel, config: SoftConfig | None = None, bypass: bool = False):
        super().__init__()
        self.config = config or SoftConfig()
        self.bypass = bypass
        table = _embedding_table(decoder).detach()
        hidden = int(table.shape[1])
        # the RMS of a token embedding, the unit of `concept_norm` and `merge_tokens`, taken from the
        # table as loaded; not measured (a pass over the whole table) when neither option is on
        uses_rms = not bypass and (self.config.concept_norm or self.config.merge_tokens)
        self.token_rms = _table_rms(table) if uses_rms else None
        for p in decoder.parameters():
            p.requires_grad_(False)
        if bypass:
            self.decoder: nn.Module = decoder
            return
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=self.config.lora_r,
            lora_alpha=self.config.lora_alpha,
            lora_dropout=self.config.lora_dropout,
            target_modules=list(self.config.lora_targets),
            bias="none",
        )
        self.decoder = get_peft_model(decoder, lora)
        emb_std = table.float().std().item()
        generator = torch.Generator().manual_seed(0)
        self.queries = nn.Parameter(torch.randn(self.config.n_queries, hidden, generator=generator) * emb_std)
        self.proj = nn.Linear(hidden, hidden)
        with torch.no_grad():
            # merge_tokens: the untrained encoder gives the merged token embeddings themselves
            self.proj.weight.copy_(
                torch.zeros(hidden, hidden) if self.config.merge_tokens else torch.eye(hidden)
            )
            self.proj.bias.zero_()

    # -- the frozen reader -------------------------------------------------------------------
    @property
    def causal_lm(self) -> PreTrainedModel:
        """The decoder as a causal LM (LoRA layers inside when not bypassed; see `reader`)."""
        model = self.decoder if self.bypass else self.decoder.get_base_model()  # type: ignore[operator]
        return cast(PreTrainedModel, model)

    @property
    def embedding_table(self) -> torch.Tensor:
        """The decoder's input-embedding matrix (vocab, hidden)."""
        return _embedding_table(self.causal_lm)

    @contextlib.contextmanager
    def reader(self) -> Iterator[PreTrainedModel]:
        """The frozen decoder (LoRA adapters disabled) that reads concept embeddings."""
        if self.bypass:
            yield self.causal_lm
        else:
            with self.decoder.disable_adapter():  # type: ignore[operator]
                yield self.causal_lm

    def embed_tokens(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Input embeddings of token ids, shape (len(ids), hidden)."""
        ids_t = torch.as_tensor(ids, dtype=torch.long, device=self.embedding_table.device)
        return cast(torch.Tensor, self.causal_lm.get_input_embeddings()(ids_t))

    # -- compression -------------------------------------------------------------------------
    def encode(self, segments: Sequence[Sequence[int]], batch_size: int = 64) -> list[torch.Tensor]:
        """Concept embeddings of each segment: a list of (ceil(n_i / C), hidden) tensors."""
        for ids in segments:
            if not 0 < len(ids) <= self.config.segment_tokens:
                raise ValueError(
                    f"segments must hold 1..{self.config.segment_tokens} tokens, got one with {len(ids)}"
                )
        if self.bypass:
            return [self.embed_tokens(ids) for ids in segments]
        out: list[torch.Tensor] = []
        for i in range(0, len(segments), batch_size):
            out.extend(self._encode_batch(segments[i : i + batch_size]))
        return out

    def _encode_batch(self, segments: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        trunk = self.causal_lm.base_model  # the transformer without the LM head
        dtype = self.embedding_table.dtype
        queries = self.queries.to(dtype)
        rows, lengths, counts, merged = [], [], [], []
        for ids in segments:
            k = self.config.n_concepts(len(ids))
            tokens = self.embed_tokens(ids)
            rows.append(torch.cat([tokens, queries[:k]]))
            if self.config.merge_tokens:
                merged.append(self._merge(tokens))
            lengths.append(len(ids))
            counts.append(k)
        inputs = pad_sequence(rows, batch_first=True)
        mask = torch.zeros(inputs.shape[:2], dtype=torch.long, device=inputs.device)
        for b, row in enumerate(rows):
            mask[b, : len(row)] = 1
        hidden = trunk(inputs_embeds=inputs, attention_mask=mask).last_hidden_state
        picked = [hidden[b, n : n + k] for b, (n, k) in enumerate(zip(lengths, counts, strict=True))]
        states = torch.cat(picked).to(self.proj.weight.dtype)
        if merged:
            assert self.token_rms is not None
            # the projection reads unit-RMS states and writes in token-embedding units, so that one
            # optimizer step moves the merged embeddings by a small fraction of their size
            unit = states / _rms(states).to(states.dtype)
            projected = torch.cat(merged).to(states.dtype) + self.proj(unit) * self.token_rms
        else:
            projected = self.proj(states)
        if self.config.concept_norm:
            assert self.token_rms is not None
            projected = projected * (self.token_rms / _rms(projected)).to(projected.dtype)
        return list(projected.to(dtype).split(counts))

    def _merge(self, tokens: torch.Tensor) -> torch.Tensor:
        """(ceil(n / C), hidden): the mean of each run of C token embeddings, at their mean norm."""
        x = tokens.float()
        group = torch.arange(len(x), device=x.device) // self.config.rate
        k = int(group[-1]) + 1
        count = torch.bincount(group, minlength=k).unsqueeze(1).float()
        mean = x.new_zeros(k, x.shape[1]).index_add_(0, group, x) / count
        norm = x.new_zeros(k).index_add_(0, group, x.norm(dim=-1)).unsqueeze(1) / count
        return mean * (norm / mean.norm(dim=-1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def calibrate(self, segments: Sequence[Sequence[int]]) -> float:
        """Scale the projection (identity at init) so concept embeddings match token-embedding RMS.

        Without it an untrained encoder feeds the reader vectors ~100x larger than any token
        embedding. Returns the scale applied (1.0 with `concept_norm`, which sets that size itself,
        and with `merge_tokens`, whose untrained output is token-sized).
        """
        if self.bypass or self.config.concept_norm or self.config.merge_tokens:
            return 1.0
        out = torch.cat(self.encode(segments))
        scale = _table_rms(self.embedding_table) / max(_table_rms(out), 1e-8)
        self.proj.weight.mul_(scale)
        self.proj.bias.mul_(scale)
        return scale

    # -- weights -----------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu().contiguous() for n, p in self.named_parameters() if p.requires_grad}

    def fingerprint(self) -> str:
        """A short hash of config, decoder and trained weights (part of every cache key). The
        provenance text (`SoftConfig.extra`) is left out: rewording it must not turn caches cold."""
        config = asdict(self.config)
        del config["extra"]
        for option in ("concept_norm", "merge_tokens"):
            if not config[option]:  # weights trained before the option existed keep their fingerprint
                del config[option]
        config_json = json.dumps(config, indent=2, sort_keys=True)
        digest = hashlib.sha256(config_json.encode() + (b"bypass" if self.bypass else b""))
        lm = self.causal_lm
        digest.update(lm.config.to_json_string(use_diff=False).encode())
        table = _embedding_table(lm).detach()
        digest.update(table[:: max(1, table.shape[0] // 64)].float().numpy().tobytes())  # decoder identity
        for name, tensor in sorted(self.trainable_state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.float().numpy().tobytes())
        return digest.hexdigest()[:16]

    def save(
        self,
        directory: str | Path,
        dtype: torch.dtype = torch.float32,
        extra: Mapping[str, str] | None = None,
    ) -> Path:
        """Write the small weights (in `dtype`; float16 halves the file) and the config json, whose
        provenance (`SoftConfig.extra`) gets `extra` added."""
        if self.bypass:
            raise ValueError("a bypass encoder has no weights to save")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.to(dtype) for k, v in self.trainable_state_dict().items()}
        save_file(state, str(path / WEIGHTS_NAME))
        config = replace(self.config, extra={**self.config.extra, **(extra or {})})
        (path / CONFIG_NAME).write_text(config.to_json() + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path, decoder: PreTrainedModel) -> ConceptEncoder:
        path = Path(directory)
        if not (path / WEIGHTS_NAME).is_file() or not (path / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{path} does not hold {WEIGHTS_NAME} and {CONFIG_NAME}")
        encoder = cls(decoder, SoftConfig.from_json((path / CONFIG_NAME).read_text()))
        encoder.load_trainable(load_file(str(path / WEIGHTS_NAME)))
        return encoder

    def load_trainable(self, state: dict[str, torch.Tensor]) -> None:
        expected = {n for n, p in self.named_parameters() if p.requires_grad}
        if set(state) != expected:
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(
                f"weights do not match this encoder: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        params = dict(self.named_parameters())
        wrong = [n for n, t in state.items() if t.shape != params[n].shape]
        if wrong:
            raise ValueError(
                f"weights do not match this encoder: {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, "
                f"expected {tuple(params[wrong[0]].shape)} (different lora_r or decoder?)"
            )
        with torch.no_grad():
            for name, tensor in state.items():
                params[name].copy_(tensor)


def _rms(x: torch.Tensor) -> torch.Tensor:
    """fp32 root mean square of each vector (over the last dimension, kept)."""
    return x.float().pow(2).mean(dim=-1, keepdim=True).add(1e-12).sqrt()


def _table_rms(x: torch.Tensor) -> float:
    """The root mean square of all of `x`'s entries."""
    return x.float().pow(2).mean().sqrt().item()


def _embedding_table(model: PreTrainedModel) -> torch.Tensor:
    weight = model.get_input_embeddings().weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(model).__name__} has no input-embedding matrix")
    return weight

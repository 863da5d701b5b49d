"""Load a token-classification checkpoint (two labels, label 1 = keep) and its tokenizer.

Any ``AutoModelForTokenClassification`` checkpoint works: the official
``microsoft/llmlingua-2-*`` models, promptpress's own, or a bare encoder (its head is then
initialised from a fixed seed and reported as untrained). Nothing is inferred from the model's name.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import assets
from .quiet import quiet_transformers

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger("promptpress.compressor")

# promptpress's own trained model (compressor/models/README.md): LoRA + head on the packaged
# all-MiniLM-L6-v2, merged offline into the cache directory on first use
DEFAULT_MODEL = "builtin:minilm-qmsum-v0"
HEAD_SEED = 0
MAX_LENGTH = 512  # tokens per window, special tokens included (lower where the model's positions end)


class ModelError(RuntimeError):
    """The checkpoint cannot serve as a keep/drop token classifier."""


@dataclass(frozen=True)
class ModelInfo:
    """What inference needs of a token classifier besides its weights: its tokenizer, special tokens,
    window length and identity. Built from a loaded checkpoint (`LoadedModel.info`) or, without torch
    and transformers, from the model's cached inference artefact (`promptpress.compressor.artefact`)."""

    spec: str
    tokenizer: Tokenizer  # the fast tokenizer's definition (`tokenizers.Tokenizer`)
    cls_id: int | None  # prepended to every window (the BOS token when there is no CLS)
    sep_id: int | None  # appended to every window (the EOS token when there is no SEP)
    pad_id: int
    trained_head: bool
    max_length: int  # tokens per window, special tokens included
    fingerprint: str  # content hash of the weights and tokenizer, for cache keys

    @property
    def display_name(self) -> str:
        return self.spec + ("" if self.trained_head else " (untrained head)")


@dataclass
class LoadedModel:
    spec: str
    path: Path
    model: Any  # transformers PreTrainedModel (torch.nn.Module), eval mode, CPU
    tokenizer: Any  # a fast tokenizer
    trained_head: bool
    max_length: int
    fingerprint: str  # content hash of the weights and tokenizer, for cache keys
    max_positions: int  # the longest window the model's position embeddings allow

    @property
    def display_name(self) -> str:
        return self.spec + ("" if self.trained_head else " (untrained head)")

    def info(self) -> ModelInfo:
        tokenizer = self.tokenizer
        return ModelInfo(
            spec=self.spec,
            tokenizer=tokenizer.backend_tokenizer,
            cls_id=tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id,
            sep_id=tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id,
            pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
            trained_head=self.trained_head,
            max_length=self.max_length,
            fingerprint=self.fingerprint,
        )


def load_token_classifier(
    spec: str | os.PathLike[str] = DEFAULT_MODEL, *, max_length: int = MAX_LENGTH
) -> LoadedModel:
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    spec = os.fspath(spec)
    path = assets.resolve(spec)
    if not path.is_dir():
        raise ModelError(f"{spec!r} resolves to {path}, which is not a checkpoint directory")
    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as exc:
        raise ModelError(f"{path} has no readable config.json: {exc}") from exc
    trained = any("ForTokenClassification" in a for a in (config.architectures or []))
    if trained and config.num_labels != 2:
        raise ModelError(
            f"{spec!r} has {config.num_labels} labels; a keep/drop classifier needs 2 (1 = keep)"
        )
    try:
        with quiet_transformers(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(HEAD_SEED)
            model, info = AutoModelForTokenClassification.from_pretrained(
                path,
                num_labels=2,
                output_loading_info=True,
                dtype=torch.float32,
            )
            tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:
        raise ModelError(f"cannot load {spec!r} as a token classifier: {type(exc).__name__}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False) or not hasattr(tokenizer, "backend_tokenizer"):
        raise ModelError(f"{spec!r} has no fast tokenizer (tokenizer.json); one is required for word offsets")
    missing_head = any(k.startswith("classifier") for k in info.get("missing_keys", []))
    trained = trained and not missing_head
    if not trained:
        warn_untrained(spec)
    model.eval()
    positions = max_positions(config, max_length)
    return LoadedModel(
        spec=spec,
        path=path,
        model=model,
        tokenizer=tokenizer,
        trained_head=trained,
        max_length=min(max_length, positions),
        fingerprint=fingerprint(model, tokenizer),
        max_positions=positions,
    )


def warn_untrained(spec: str) -> None:
    log.warning(
        "%s: the classification head is untrained (seed %d); keep/drop decisions are not meaningful",
        spec,
        HEAD_SEED,
    )


def max_positions(config: Any, default: int = MAX_LENGTH) -> int:
    """The longest window (special tokens included) the model's position embeddings allow."""
    limit = int(getattr(config, "max_position_embeddings", default) or default)
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # RoBERTa offsets positions by 2
    return limit


def fingerprint(model: Any, tokenizer: Any) -> str:
    """blake2b over the weights and the tokenizer definition (stable across processes)."""
    digest = hashlib.blake2b(digest_size=12)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    return digest.hexdigest()

"""Fine-tune an encoder as a keep/drop token classifier on teacher word labels.

Word labels are spread over each word's sub-word tokens (`wordsplit.token_labels`); special
tokens and padding are ignored by the loss. The loss is class-weighted cross-entropy (weights
inverse to the label frequencies of the training set). ``method="lora"`` trains LoRA adapters on
every linear layer of the encoder plus the classification head (a few MB to ship);
``method="full"`` trains everything.

The run folder holds `checkpoint.pt` (trainable weights, optimizer, scheduler, step, RNG; written
every `save_every` steps, `resume=True` continues from it), `train.log` (one JSON line per step
and per evaluation), `fit.json` (config + final metrics), `final/` (a merged checkpoint that
`load_compressor(path)` reads) and, for LoRA, `adapter.safetensors` (what `train export` ships).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..assets import resolve
from .labels import LabelledWindow
from .metrics import f1_keep, roc_auc
from .wordsplit import WordSplitter, token_labels

log = logging.getLogger("promptpress.train")
IGNORE = -100


@dataclass
class FitConfig:
    out_dir: str
    encoder: str = "package:all-minilm-l6-v2"
    method: str = "lora"  # "lora" | "full"
    lora_r: int = 16
    lora_targets: tuple[str, ...] = ()  # filled in from the encoder: every linear layer but the head
    steps: int = 300
    batch_size: int = 8
    lr: float = 5e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    eval_every: int = 50
    save_every: int = 25
    snapshot_every: int = 0  # > 0: also write a loadable model every N steps (snapshots/step-N/)
    max_length: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ValueError(f"method must be 'lora' or 'full', got {self.method!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        if self.snapshot_every < 0:
            raise ValueError("snapshot_every must be >= 0 (0: no snapshots)")


@dataclass
class Example:
    input_ids: torch.Tensor
    labels: torch.Tensor  # token labels, IGNORE at special tokens
    word_of_token: np.ndarray
    word_labels: np.ndarray
    n_words: int


def make_examples(records: Sequence[LabelledWindow], tokenizer: Any, max_length: int = 512) -> list[Example]:
    splitter = WordSplitter(tokenizer)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    specials = int(cls_id is not None) + int(sep_id is not None)
    out = []
    for record, enc in zip(records, splitter.encode_batch([r.window.text for r in records])):
        if enc.n_words != len(record.keep):
            raise ValueError(
                f"window {record.window.id}: {len(record.keep)} labels but the encoder splits it into "
                f"{enc.n_words} words; label with the same --encoder as you train"
            )
        n = min(enc.n_tokens, max_length - specials)
        labels = token_labels(record.keep.astype(np.int64), enc.word_of_token)[:n]
        ids = enc.ids[:n]
        head = [cls_id] if cls_id is not None else []
        tail = [sep_id] if sep_id is not None else []
        out.append(
            Example(
                torch.tensor(head + ids.tolist() + tail, dtype=torch.long),
                torch.tensor([IGNORE] * len(head) + labels.tolist() + [IGNORE] * len(tail), dtype=torch.long),
                enc.word_of_token[:n],
                record.keep,
                enc.n_words,
            )
        )
    return out


def collate(batch: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        ids[i, : len(e.input_ids)] = e.input_ids
        labels[i, : len(e.labels)] = e.labels
        mask[i, : len(e.input_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def class_weights(examples: Sequence[Example]) -> torch.Tensor:
    labels = torch.cat([e.labels[e.labels != IGNORE] for e in examples])
    counts = torch.bincount(labels, minlength=2).float().clamp(min=1)
    return counts.sum() / (2 * counts)


def build_model(config: FitConfig, model: Any = None) -> Any:
    """The encoder with a 2-label head (from `config.encoder` unless `model` is given), LoRA-wrapped
    for ``method="lora"``."""
    if model is None:
        from transformers import AutoModelForTokenClassification

        model = AutoModelForTokenClassification.from_pretrained(
            resolve(config.encoder),
            num_labels=2,
            id2label={0: "drop", 1: "keep"},
            label2id={"drop": 0, "keep": 1},
        )
    if config.method == "lora":
        from peft import get_peft_model

        config.lora_targets = config.lora_targets or linear_layer_names(model)
        model = get_peft_model(model, lora_config(config.lora_r, config.lora_targets))
    return model


def linear_layer_names(model: Any) -> tuple[str, ...]:
    """Names of the encoder's linear layers (BERT: query/key/value/dense; MPNet: q/k/v/o/dense)."""
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.startswith("classifier")
    }
    return tuple(sorted(names - {"classifier"}))


def lora_config(r: int, targets: Sequence[str]) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=2 * r,
        lora_dropout=0.05,
        target_modules=list(targets),
        modules_to_save=["classifier"],
    )


@torch.no_grad()
def predict_words(
    model: Any, examples: Sequence[Example], pad_id: int, batch_size: int = 16
) -> list[np.ndarray]:
    """Word keep-probabilities (token probabilities averaged per word, as at inference)."""
    model.eval()
    out = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        batch = collate(chunk, pad_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        probs = torch.softmax(logits.float(), dim=-1)[..., 1].numpy()
        for row, e in enumerate(chunk):
            n = len(e.word_of_token)
            token_probs = probs[row, 1 : 1 + n]
            words = np.bincount(e.word_of_token, weights=token_probs, minlength=e.n_words)
            counts = np.bincount(e.word_of_token, minlength=e.n_words)
            out.append((words / np.maximum(counts, 1)).astype(np.float32))
    return out


def heldout_metrics(
    model: Any, examples: Sequence[Example], pad_id: int, weights: torch.Tensor
) -> dict[str, float]:
    if not examples:
        return {}
    model.eval()
    losses = []
    with torch.no_grad():
        for i in range(0, len(examples), 16):
            batch = collate(examples[i : i + 16], pad_id)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            losses.append(_loss(logits, batch["labels"], weights).item())
    probs = predict_words(model, examples, pad_id)
    truth = np.concatenate([e.word_labels[: len(p)] for e, p in zip(examples, probs)])
    scores = np.concatenate(probs)
    return {
        "heldout_loss": float(np.mean(losses)),
        "heldout_f1": f1_keep(truth, scores > 0.5),
        "heldout_auc": roc_auc(truth, scores),
    }


def _loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(
        logits.float().view(-1, 2), labels.view(-1), weight=weights, ignore_index=IGNORE
    )


def _trainable_state(model: Any) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k in names}


def fit(
    records: Sequence[LabelledWindow],
    config: FitConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    model: Any = None,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Train on the `train` windows of `records`, evaluate on the `heldout` ones; returns metrics."""
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(resolve(config.encoder))
    train_ex = make_examples([r for r in records if r.window.split == "train"], tokenizer, config.max_length)
    held_ex = make_examples([r for r in records if r.window.split == "heldout"], tokenizer, config.max_length)
    if not train_ex:
        raise ValueError("no training windows among the labelled records")
    pad_id = tokenizer.pad_token_id or 0
    weights = class_weights(train_ex)
    model = build_model(config, model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup * config.steps), config.steps)
    ckpt = out / "checkpoint.pt"
    step = _resume(ckpt, model, optimizer, scheduler) if resume and ckpt.exists() else 0
    batches = _BatchOrder(len(train_ex), config.batch_size, config.seed, step)
    trainable = sum(p.numel() for p in params)
    log.info(
        "fit: %d train / %d held-out windows, %d trainable parameters, class weights %s",
        len(train_ex),
        len(held_ex),
        trainable,
        weights.tolist(),
    )
    started = time.perf_counter()
    bar = tqdm(total=config.steps, initial=step, desc=f"fit ({config.method})", disable=not progress)
    metrics: dict[str, Any] = {}
    with (out / "train.log").open("a") as log_file:
        while step < config.steps:
            batch = collate([train_ex[i] for i in batches.next()], pad_id)
            loss = _train_step(model, batch, weights, params, optimizer, scheduler)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            elapsed = round(time.perf_counter() - started, 2)
            lr = scheduler.get_last_lr()[0]
            log_file.write(
                json.dumps({"step": step, "loss": round(loss, 5), "lr": lr, "elapsed": elapsed}) + "\n"
            )
            if step % config.eval_every == 0 or step == config.steps:
                metrics = heldout_metrics(model, held_ex, pad_id, weights)
                log_file.write(json.dumps({"step": step, **metrics}) + "\n")
                log.info("step %d %s", step, json.dumps(metrics))
            if step % config.save_every == 0 or step == config.steps:
                _save_checkpoint(ckpt, model, optimizer, scheduler, step)
            if config.snapshot_every and step % config.snapshot_every == 0 and step < config.steps:
                _save_snapshot(out / "snapshots" / f"step-{step:05d}", model, tokenizer, config, step)
            log_file.flush()
    bar.close()
    if not metrics:  # resumed a finished run: nothing trained, measure it again
        metrics = heldout_metrics(model, held_ex, pad_id, weights)
    result = {
        "steps": step,
        "train_windows": len(train_ex),
        "heldout_windows": len(held_ex),
        "trainable_parameters": trainable,
        "seconds_this_run": round(time.perf_counter() - started, 1),
        **metrics,
    }
    _save_final(out, model, tokenizer, config)
    (out / "fit.json").write_text(json.dumps({"config": asdict(config), "metrics": result}, indent=2))
    return result


def _resume(ckpt: Path, model: Any, optimizer: Any, scheduler: Any) -> int:
    """Restore a checkpoint (model, optimizer, schedule, random states); returns its step."""
    state = torch.load(ckpt, weights_only=False)
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["py_rng"])
    log.info("resumed from %s at step %d", ckpt, state["step"])
    return int(state["step"])


class _BatchOrder:
    """Shuffled passes over the training examples, replayed up to `step` when a run resumes."""

    def __init__(self, n: int, batch_size: int, seed: int, step: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.rng = random.Random(seed)
        self.order: list[int] = []
        for _ in range(step * batch_size // n + 1):  # replay the data order up to `step`
            self._shuffle()
        self.cursor = (step * batch_size) % n

    def _shuffle(self) -> None:
        self.order = list(range(self.n))
        self.rng.shuffle(self.order)

    def next(self) -> list[int]:
        batch: list[int] = []
        while len(batch) < self.batch_size:
            if self.cursor >= len(self.order):
                self._shuffle()
                self.cursor = 0
            batch.append(self.order[self.cursor])
            self.cursor += 1
        return batch


def _train_step(
    model: Any, batch: dict[str, Any], weights: Any, params: list[Any], optimizer: Any, scheduler: Any
) -> float:
    """One optimisation step on `batch`; returns its loss."""
    model.train()
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    loss = _loss(logits, batch["labels"], weights)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.item())


def _save_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, step: int) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": _trainable_state(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "torch_rng": torch.get_rng_state(),
            "py_rng": random.getstate(),
        },
        tmp,
    )
    tmp.replace(path)


def _save_snapshot(folder: Path, model: Any, tokenizer: Any, config: FitConfig, step: int) -> None:
    """A loadable model of the weights at this step (a copy is merged: training goes on with the
    adapters), to choose the step by downstream scores. For LoRA the folder also holds the adapter
    and a `fit.json`, so `train export --model FOLDER` ships it."""
    import copy

    folder.mkdir(parents=True, exist_ok=True)
    _save_merged(copy.deepcopy(model), tokenizer, config, adapter_dir=folder, model_dir=folder)
    (folder / "fit.json").write_text(
        json.dumps({"config": asdict(config), "metrics": {"steps": step}}, indent=2)
    )


def _save_final(out: Path, model: Any, tokenizer: Any, config: FitConfig) -> None:
    _save_merged(model, tokenizer, config, adapter_dir=out, model_dir=out / "final")


def _save_merged(
    model: Any, tokenizer: Any, config: FitConfig, *, adapter_dir: Path, model_dir: Path
) -> None:
    """For LoRA, `adapter_dir/adapter.safetensors` (what `train export` ships), then `model` merged
    (in place: pass a copy to keep training) and saved with its tokenizer in `model_dir`."""
    if config.method == "lora":
        from peft.utils import get_peft_model_state_dict
        from safetensors.torch import save_file

        adapter = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(model).items()}
        save_file(adapter, str(adapter_dir / "adapter.safetensors"))
        model = model.merge_and_unload()
    model.eval()
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

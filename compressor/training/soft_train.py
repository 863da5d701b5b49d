"""Distillation training of the concept encoder (LoRA + queries + projection).

For each (context, question, answer) the frozen decoder is the teacher: it reads
``prefix + context tokens + question + answer``. The student is the same frozen decoder reading
``prefix + concept embeddings(context) + question + answer``. The loss compares their hidden
states at the positions that predict the answer tokens, layer by layer, each layer scaled by the
teacher's standard deviation (smooth L1), as in CompLLM. Only the encoder's small weights learn.

Checkpoints (`checkpoint.pt`: weights, optimizer, step, RNG) are written every `save_every`
steps and resumed automatically; `train.log` holds one JSON line per step and per evaluation.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..soft.model import ConceptEncoder
from ..soft.prompt import ChatLayout
from ..soft.segmenter import Segment, segment_text
from .qmsum import QAExample


@dataclass
class TrainConfig:
    out_dir: str
    steps: int = 200
    batch_size: int = 4  # examples per optimizer step (gradient accumulation)
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 10
    max_context_tokens: int = 384
    max_answer_tokens: int = 48
    eval_every: int = 25
    eval_examples: int = 16
    save_every: int = 10
    seed: int = 0


@dataclass
class Prepared:
    """One example as token ids: context segments, question (with chat suffix), answer."""

    segments: list[tuple[int, ...]]
    question_ids: list[int]
    answer_ids: list[int]


def prepare(
    example: QAExample, tokenizer: object, layout: ChatLayout, segment_tokens: int, config: TrainConfig
) -> Prepared:
    segments: list[Segment] = segment_text(example.context, tokenizer, segment_tokens)  # type: ignore[arg-type]
    kept, total = [], 0
    for seg in segments:
        if total + len(seg.token_ids) > config.max_context_tokens:
            break
        kept.append(seg.token_ids)
        total += len(seg.token_ids)
    encoded = tokenizer(example.answer, add_special_tokens=False)  # type: ignore[operator]
    answer = list(encoded["input_ids"])[: config.max_answer_tokens]
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None and len(answer) < config.max_answer_tokens:
        answer.append(int(eos))
    return Prepared(kept, layout.question_ids(tokenizer, example.question), answer)


def _answer_states(trunk: torch.nn.Module, embeds: torch.Tensor, n_answer: int) -> list[torch.Tensor]:
    """Per-layer hidden states at the positions that predict the `n_answer` final tokens."""
    out = trunk(inputs_embeds=embeds[None], output_hidden_states=True)
    end = embeds.shape[0] - 1
    return [h[0, end - n_answer : end] for h in out.hidden_states[1:]]


def _layer_loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of smooth L1 between hidden states scaled by the teacher's std."""
    losses = []
    for s, t in zip(student, teacher, strict=True):
        scale = t.float().std().clamp_min(1e-6)
        losses.append(F.smooth_l1_loss(s.float() / scale, t.float() / scale))
    return torch.stack(losses).mean()


def distill_loss(
    encoder: ConceptEncoder, layout: ChatLayout, item: Prepared, with_nll: bool = False
) -> tuple[torch.Tensor, dict[str, float]]:
    """Teacher-vs-student hidden-state loss for one example (and answer NLLs when `with_nll`)."""
    embed = encoder.embed_tokens
    n = len(item.answer_ids)
    context_ids = [t for seg in item.segments for t in seg]
    with encoder.reader() as lm:
        trunk = lm.base_model
        with torch.no_grad():
            teacher_in = embed(layout.token_prompt(context_ids, item.question_ids) + item.answer_ids)
            teacher = _answer_states(trunk, teacher_in, n)
    concepts = encoder.encode(item.segments) if item.segments else []
    student_in = torch.cat([layout.embed_prompt(embed, concepts, item.question_ids), embed(item.answer_ids)])
    with encoder.reader() as lm:
        student = _answer_states(lm.base_model, student_in, n)
        loss = _layer_loss(student, teacher)
        stats = {"loss": loss.item()}
        if with_nll:  # answer NLLs, and the loss/NLL of reading no context at all (the floor to beat)
            with torch.no_grad():
                target = torch.tensor(item.answer_ids)
                head = lm.get_output_embeddings()
                bare_in = torch.cat(
                    [layout.embed_prompt(embed, [], item.question_ids), embed(item.answer_ids)]
                )
                bare = _answer_states(trunk, bare_in, n)
                stats["loss_no_context"] = _layer_loss(bare, teacher).item()
                for name, states in (("student", student), ("teacher", teacher), ("no_context", bare)):
                    stats[f"nll_{name}"] = F.cross_entropy(head(states[-1]).float(), target).item()
    return loss, stats


@torch.no_grad()
def evaluate(encoder: ConceptEncoder, layout: ChatLayout, items: Sequence[Prepared]) -> dict[str, float]:
    """Mean distillation loss and answer NLLs (student, teacher, no context) over `items`."""
    was_training = encoder.training
    encoder.eval()
    totals: dict[str, float] = {}
    for item in items:
        _, stats = distill_loss(encoder, layout, item, with_nll=True)
        for k, v in stats.items():
            totals[k] = totals.get(k, 0.0) + v / len(items)
    encoder.train(was_training)
    return totals


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def train(
    encoder: ConceptEncoder,
    tokenizer: object,
    train_examples: Sequence[QAExample],
    heldout_examples: Sequence[QAExample],
    config: TrainConfig,
    progress: bool = True,
) -> dict[str, float]:
    """Train `encoder` in place; returns the final held-out metrics. Resumes from `out_dir`."""
    if not train_examples:
        raise ValueError("no training examples")
    seed_everything(config.seed)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "train.log").open("a")
    layout = ChatLayout.from_tokenizer(tokenizer)
    s = encoder.config.segment_tokens
    heldout = [prepare(e, tokenizer, layout, s, config) for e in heldout_examples[: config.eval_examples]]
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    step, order = 0, list(range(len(train_examples)))
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        encoder.load_trainable(state["weights"])
        optimizer.load_state_dict(state["optimizer"])
        step, order = state["step"], state["order"]
        random.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        _log(log, {"event": "resume", "step": step})
    else:
        random.Random(config.seed).shuffle(order)
        calib = [seg for e in train_examples[:4] for seg in prepare(e, tokenizer, layout, s, config).segments]
        scale = encoder.calibrate(calib)
        _log(log, {"event": "start", "config": asdict(config), "projection_scale": scale})
        _log(log, {"event": "eval", "step": 0, **evaluate(encoder, layout, heldout)})
    encoder.train()
    metrics: dict[str, float] = {}
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train-soft")
    while step < config.steps:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for k in range(config.batch_size):
            example = train_examples[order[(step * config.batch_size + k) % len(order)]]
            loss, _ = distill_loss(encoder, layout, prepare(example, tokenizer, layout, s, config))
            (loss / config.batch_size).backward()
            total += loss.item() / config.batch_size
        for group in optimizer.param_groups:  # linear warm-up, then constant
            group["lr"] = config.lr * min(1.0, (step + 1) / max(1, config.warmup_steps))
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0).item()
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{total:.4f}")
        _log(
            log, {"step": step, "loss": total, "grad_norm": grad_norm, "seconds": time.perf_counter() - start}
        )
        if step % config.save_every == 0 or step == config.steps:
            _save_checkpoint(ckpt, encoder, optimizer, step, order)
        if step % config.eval_every == 0 or step == config.steps:
            metrics = evaluate(encoder, layout, heldout)
            _log(log, {"event": "eval", "step": step, **metrics})
    bar.close()
    encoder.save(out / "final")
    log.close()
    return metrics


def _save_checkpoint(
    path: Path, encoder: ConceptEncoder, optimizer: torch.optim.Optimizer, step: int, order: list[int]
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "weights": encoder.trainable_state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "order": order,
            "python_rng": random.getstate(),
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)


def _log(handle: object, record: dict[str, object]) -> None:
    record = {"time": round(time.time(), 3), **record}
    handle.write(json.dumps(record, default=str) + "\n")  # type: ignore[attr-defined]
    handle.flush()  # type: ignore[attr-defined]

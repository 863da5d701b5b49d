"""Training the concept encoder (LoRA + queries + projection): the loop, checkpoints, resume.

A run has two stages over one optimizer: the first `reconstruct_steps` steps train segment
reconstruction, the rest answer distillation (`soft_objectives`). Each optimizer step reads
``batch_size x grad_accum`` examples: `grad_accum` micro-batches of `batch_size` examples, each
one padded forward and backward. The device and precision come from `soft_runtime`, the data and
the stored teacher states from `soft_data`, held-out figures from `soft_eval`, examples/s and the
ETA from `soft_progress`.

Checkpoints (``checkpoint.pt``: weights, optimizer, step, data order, RNG states, config) are
written every `save_every` steps and resumed automatically: a run stopped and started again
continues exactly as if it had not stopped (same batches, same updates). ``train.log`` holds one
JSON line per step and per evaluation; the trained weights land in ``OUT/final``, and the weights
each held-out evaluation measured in ``OUT/step-N`` (same format, a few MB each), so that any
evaluated step can be served, scored on QA or shipped without retraining to it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..soft.model import CONFIG_NAME, WEIGHTS_NAME, ConceptEncoder, SoftConfig
from ..soft.prompt import ChatLayout
from .qmsum import QAExample
from .soft_data import Prepared, PreparedSet, TeacherStore, decoder_identity
from .soft_eval import evaluate
from .soft_objectives import RECONSTRUCT_PROMPT, Reader, step_loss
from .soft_progress import JsonLog, Progress, Throughput
from .soft_runtime import Runtime

STAGES = ("reconstruct", "distill")
# what decides the batches and their order: a resumed run must keep these as they were
RESUME_FIXED = (
    "batch_size",
    "grad_accum",
    "reconstruct_steps",
    "seed",
    "max_context_tokens",
    "min_context_tokens",
    "max_answer_tokens",
)


@dataclass
class TrainConfig:
    out_dir: str
    steps: int = 200  # optimizer steps, both stages together
    batch_size: int = 4  # examples per micro-batch (one padded forward and backward)
    grad_accum: int = 1  # micro-batches per optimizer step
    reconstruct_steps: int = 0  # the first steps train segment reconstruction, the rest distillation
    reconstruct_weight: float = 0.0  # distillation stage: + this x the reconstruction loss
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 10  # linear warm-up at the start of each stage, then constant
    decay_steps: int = 0  # the last steps of the run decay the learning rate linearly towards 0
    max_context_tokens: int = 384
    # examples whose context (cut to max_context_tokens) is shorter are left out, in training and in
    # the held-out figures: 0 keeps all (long-context training reads only long ones)
    min_context_tokens: int = 0
    max_answer_tokens: int = 48
    eval_every: int = 25
    eval_examples: int = 16
    eval_segments: int = 64  # held-out segments for the reconstruction figures
    save_every: int = 10
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16 (autocast); auto: bf16 where native
    teacher_cache: str = "disk"  # disk (OUT/teacher-states) | memory | off
    print_every: int = 1  # without a progress bar: one line per this many steps
    init_from: str | None = None  # start from these saved weights (a `ConceptEncoder.save` folder)

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.grad_accum, self.save_every, self.eval_every) < 1:
            raise ValueError("steps, batch_size, grad_accum, save_every and eval_every must be >= 1")
        if not 0 <= self.reconstruct_steps <= self.steps:
            raise ValueError(f"reconstruct_steps must be within 0..steps, got {self.reconstruct_steps}")
        if not 0 <= self.decay_steps <= self.steps - self.reconstruct_steps:
            raise ValueError(
                f"decay_steps must be within 0..steps - reconstruct_steps (the distillation stage), "
                f"got {self.decay_steps}"
            )
        if self.reconstruct_weight < 0:
            raise ValueError(f"reconstruct_weight must be >= 0, got {self.reconstruct_weight}")
        if not 0 <= self.min_context_tokens <= self.max_context_tokens:
            raise ValueError(
                f"min_context_tokens must be within 0..max_context_tokens ({self.max_context_tokens}), "
                f"got {self.min_context_tokens}"
            )

    @property
    def examples_per_step(self) -> int:
        return self.batch_size * self.grad_accum

    def stage(self, step: int) -> str:
        """The objective of optimizer step `step` (0-based)."""
        return STAGES[0] if step < self.reconstruct_steps else STAGES[1]

    def lr_at(self, step: int) -> float:
        """Warm-up, stable, decay: linear warm-up at the start of each stage, then `lr`, and over
        the last `decay_steps` steps a linear decay (step ``steps - 1`` runs at ``lr / decay_steps``)."""
        start = 0 if step < self.reconstruct_steps else self.reconstruct_steps
        factor = min(1.0, (step - start + 1) / max(1, self.warmup_steps))
        if self.decay_steps:
            factor = min(factor, (self.steps - step) / self.decay_steps)
        return self.lr * factor


@dataclass(frozen=True)
class StepRecord:
    """What one optimizer step did: the loss it minimised and its parts (``distill``,
    ``reconstruct``, ``acc``: the reconstruction's token accuracy)."""

    step: int
    stage: str
    loss: float
    parts: dict[str, float]
    grad_norm: float
    lr: float
    seconds: float

    def as_log(self, meter: Throughput, total_steps: int) -> dict[str, object]:
        record: dict[str, object] = {"step": self.step, "stage": self.stage, "loss": self.loss, **self.parts}
        record.update(grad_norm=self.grad_norm, lr=self.lr, seconds=self.seconds)
        record["examples_per_second"] = meter.examples_per_second
        record["eta_seconds"] = meter.eta_seconds(total_steps - self.step)
        return record


class SoftTrainer:
    """One training run of `encoder` (in place) on `train_examples`, resumable from `out_dir`."""

    def __init__(
        self,
        encoder: ConceptEncoder,
        tokenizer: object,
        train_examples: Sequence[QAExample],
        heldout_examples: Sequence[QAExample],
        config: TrainConfig,
    ):
        if not train_examples:
            raise ValueError("no training examples")
        self.config = config
        self.runtime = Runtime.create(config.device, config.precision)
        self.encoder = encoder.to(self.runtime.device)
        self.layout = ChatLayout.from_tokenizer(tokenizer)
        self.reader = Reader(self.encoder, self.layout)
        self.prompt_ids = self.layout.question_ids(tokenizer, RECONSTRUCT_PROMPT)
        budget = (encoder.config.segment_tokens, config.max_context_tokens, config.max_answer_tokens)
        self.data = PreparedSet(train_examples, tokenizer, self.layout, *budget)
        heldout = PreparedSet(heldout_examples, tokenizer, self.layout, *budget)
        self.heldout = heldout.take(_long_enough(heldout, config.min_context_tokens)[: config.eval_examples])
        self.out = Path(config.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.store = TeacherStore(
            config.teacher_cache,
            decoder_identity(encoder.causal_lm),
            self.runtime.compute_dtype,
            self.out / "teacher-states",
        )
        self.params = [p for p in encoder.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0
        self.order = _long_enough(self.data, config.min_context_tokens)
        if not self.order:
            raise ValueError(
                f"no training example has a context of {config.min_context_tokens} tokens or more "
                f"(within max_context_tokens={config.max_context_tokens})"
            )
        if not self.heldout:
            raise ValueError(
                "no held-out examples"
                if not heldout_examples
                else f"no held-out example has a context of {config.min_context_tokens} tokens or more "
                f"(within max_context_tokens={config.max_context_tokens}); lower --min-context-tokens"
            )
        self.meter = Throughput()

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def run(self, progress: bool = True) -> dict[str, float]:
        """Train to `config.steps`; returns the last held-out figures and the throughput."""
        random.seed(self.config.seed)
        torch.manual_seed(self.config.seed)
        metrics: dict[str, float] = {}
        with JsonLog(self.out / "train.log") as log:
            if self.checkpoint_path.is_file():
                self._resume(log)
            else:
                self._start(log)
            bar = Progress(self.config.steps, self.step, progress, self.config.print_every)
            while self.step < self.config.steps:
                record = self.train_step()
                bar.update(self.step, record.stage, record.loss, self.meter)
                log.write(record.as_log(self.meter, self.config.steps))
                if self.step % self.config.save_every == 0 or self.step == self.config.steps:
                    self.save_checkpoint()
                if self.step % self.config.eval_every == 0 or self.step == self.config.steps:
                    metrics = self._evaluate(log)
                    self.encoder.save(self.out / f"step-{self.step}", extra={"step": str(self.step)})
            bar.close()
            if not metrics:
                metrics = self._evaluate(log)
        self.encoder.save(self.out / "final", extra={"step": str(self.step)})
        return {
            **metrics,
            "examples_per_second": self.meter.examples_per_second,
            "seconds_per_step": self.meter.mean_seconds_per_step,
        }

    def _start(self, log: JsonLog) -> None:
        random.Random(self.config.seed).shuffle(self.order)
        if self.config.init_from:
            self._load_initial(Path(self.config.init_from))
            scale = 1.0  # trained weights keep the scale they were trained at
        else:
            calibration = [seg for item in self.data.take(self.order[:4]) for seg in item.segments]
            scale = self.encoder.calibrate(calibration)
        runtime = {"device": str(self.runtime.device), "precision": self.runtime.precision}
        log.write(
            {"event": "start", "config": asdict(self.config), "runtime": runtime, "projection_scale": scale}
        )
        self._evaluate(log)

    def _load_initial(self, path: Path) -> None:
        """Start from the weights saved in `path`, which must come from an encoder like this one."""
        if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
            raise ValueError(f"--init-from {path} does not hold {CONFIG_NAME} and {WEIGHTS_NAME}")
        saved = _shape_of(SoftConfig.from_json((path / CONFIG_NAME).read_text()))
        was = _differing(saved, _shape_of(self.encoder.config))
        if was:
            raise ValueError(
                f"--init-from {path} holds weights of an encoder with {was}; train with the same"
            )
        self.encoder.load_trainable(load_file(str(path / WEIGHTS_NAME)))

    def _evaluate(self, log: JsonLog) -> dict[str, float]:
        start = time.perf_counter()
        metrics = evaluate(
            self.reader,
            self.prompt_ids,
            self.heldout,
            self.store,
            self.runtime,
            self.config.eval_segments,
            self.config.batch_size,
        )
        seconds = time.perf_counter() - start
        log.write({"event": "eval", "step": self.step, **metrics, "seconds": seconds})
        return metrics

    def batch(self, step: int, micro: int) -> list[Prepared]:
        """The examples of micro-batch `micro` of optimizer step `step` (0-based)."""
        per_step, size = self.config.examples_per_step, self.config.batch_size
        first = step * per_step + micro * size
        return self.data.take([self.order[(first + k) % len(self.order)] for k in range(size)])

    def train_step(self) -> StepRecord:
        """One optimizer step."""
        start = time.perf_counter()
        stage = self.config.stage(self.step)
        self.encoder.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, parts = 0.0, dict[str, float]()
        for micro in range(self.config.grad_accum):
            items = self.batch(self.step, micro)
            with self.runtime.autocast():
                loss, micro_parts = step_loss(
                    self.reader, self.prompt_ids, items, self.store, stage, self.config.reconstruct_weight
                )
            (loss / self.config.grad_accum).backward()
            loss_sum += loss.item() / self.config.grad_accum
            for name, value in micro_parts.items():
                parts[name] = parts.get(name, 0.0) + value / self.config.grad_accum
        lr = self.config.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, 1.0).item()
        self.optimizer.step()
        self.runtime.synchronize()
        seconds = time.perf_counter() - start
        self.step += 1
        self.meter.add(self.config.examples_per_step, seconds)
        return StepRecord(self.step, stage, loss_sum, parts, grad_norm, lr, seconds)

    def save_checkpoint(self) -> None:
        tmp = self.checkpoint_path.with_suffix(".tmp")
        state = {
            "weights": self.encoder.trainable_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "order": self.order,
            "python_rng": random.getstate(),
            "rng": self.runtime.rng_state(),
            "config": asdict(self.config),
            "encoder_config": _shape_of(self.encoder.config),
        }
        torch.save(state, tmp)
        tmp.replace(self.checkpoint_path)

    def _resume(self, log: JsonLog) -> None:
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        # options added since the checkpoint was written held their defaults then
        saved_config = {**_defaults(TrainConfig), **state.get("config", {})}
        was = _differing(saved_config, {k: getattr(self.config, k) for k in RESUME_FIXED})
        if was:
            raise ValueError(
                f"{self.checkpoint_path} was written with {was}; resume with the same values "
                "or train into another folder"
            )
        # encoder options added since the checkpoint was written held their defaults then
        saved_encoder = {**_shape_of(SoftConfig()), **state.get("encoder_config", {})}
        was = _differing(saved_encoder, _shape_of(self.encoder.config)) if "encoder_config" in state else ""
        if was:
            raise ValueError(
                f"{self.checkpoint_path} was written by an encoder with {was}; resume with the same "
                "values or train into another folder"
            )
        self.encoder.load_trainable(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.order = state["step"], state["order"]
        random.setstate(state["python_rng"])
        self.runtime.set_rng_state(state.get("rng", {"torch": state.get("torch_rng")}))
        log.write({"event": "resume", "step": self.step})


def _long_enough(data: PreparedSet, min_tokens: int) -> list[int]:
    """Indices of `data`'s examples whose prepared context holds at least `min_tokens` tokens
    (all of them, unprepared, when `min_tokens` is 0)."""
    if min_tokens <= 0:
        return list(range(len(data)))
    return [i for i in range(len(data)) if len(data[i].context_ids) >= min_tokens]


def _defaults(cls: type) -> dict[str, object]:
    """The default value of each field of dataclass `cls` that has one."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def _differing(saved: Mapping[str, object], ours: Mapping[str, object]) -> str:
    """``key=saved value, ...`` for each key of `ours` that `saved` holds with another value."""
    return ", ".join(f"{k}={saved[k]}" for k in ours if k in saved and saved[k] != ours[k])


def _shape_of(config: SoftConfig) -> dict[str, object]:
    """What decides what the trained weights compute (the encoder's config without provenance)."""
    return {k: v for k, v in asdict(config).items() if k != "extra"}


def train(
    encoder: ConceptEncoder,
    tokenizer: object,
    train_examples: Sequence[QAExample],
    heldout_examples: Sequence[QAExample],
    config: TrainConfig,
    progress: bool = True,
) -> dict[str, float]:
    """Train `encoder` in place; returns the final held-out metrics. Resumes from `out_dir`."""
    return SoftTrainer(encoder, tokenizer, train_examples, heldout_examples, config).run(progress)

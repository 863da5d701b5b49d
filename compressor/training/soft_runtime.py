"""Where and how the soft compressor's training computes: device, precision, threads.

Training is device-agnostic: `resolve_device` picks CUDA when asked for or available
(``"auto"``), else the CPU. `Runtime.autocast` runs the forward passes in bfloat16 under
`torch.autocast` (matrix products in bf16, the weights and the trained parameters stay fp32, the
losses are computed in fp32), which CPUs with AVX-512 BF16 or AMX and every recent GPU run about
twice as fast as fp32; ``"fp32"`` disables it. ``"auto"`` (`resolve_precision`) picks bf16
wherever it is native (a CUDA device that supports it, a CPU with AVX-512 BF16 or AMX) and fp32
elsewhere. On the CPU bf16 was opt-in for a while after one bf16 run (Zen 4) learned nothing in 200
steps where an fp32 run (Intel) did; three more runs point to run-to-run drift instead: fp32 on
Zen 4 was as slow to learn (0.036 nats/token below reading no context at step 200), and bf16 on the
Intel CPU tracked fp32 there (0.224 / 0.211 / 0.246 below at steps 200 / 300 / 400, against 0.155 /
0.231 / 0.265 in fp32) at half the time per step (medians 5.2 s against 11.8 s per distillation
step; compressor/models/soft/README.md). On a CPU
without AVX-512 BF16 or AMX bf16 is emulated and many times slower than fp32 (an AVX2-only CPU ran a
256 x 896 x 4864 product 57x slower): ``"auto"`` is fp32 there and an explicit ``"bf16"`` warns.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from promptpress.compressor.torch_runtime import native_bf16

PRECISIONS = ("fp32", "bf16")
PRECISION_CHOICES = ("auto", *PRECISIONS)
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA if available, else CPU. ``"cuda"`` without CUDA is a clear error."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r}; use one of {DEVICES} (or cuda:N)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but this torch build sees no CUDA device")
    return torch.device(name)


def bf16_is_native(device: torch.device) -> bool:
    """Whether `device` computes bf16 matrix products natively (not emulated)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return device.type == "cpu" and native_bf16()


def resolve_precision(name: str, device: torch.device) -> str:
    """``"auto"``: bf16 where `device` runs it natively (module docstring), else fp32;
    ``"fp32"``/``"bf16"`` as given (bf16 where it is emulated warns: it is slower than fp32 there)."""
    if name not in PRECISION_CHOICES:
        raise ValueError(f"unknown precision {name!r}; use one of {PRECISION_CHOICES}")
    if name == "auto":
        return "bf16" if bf16_is_native(device) else "fp32"
    if name == "bf16" and not bf16_is_native(device):
        warnings.warn(
            f"precision bf16 on {device}, which has no native bf16 instructions: bf16 is emulated there "
            "and many times slower than fp32 (use --precision auto or fp32)",
            RuntimeWarning,
            stacklevel=2,
        )
    return name


@dataclass(frozen=True)
class Runtime:
    """The device and precision one training run computes in."""

    device: torch.device
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use one of {PRECISIONS}")

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto") -> Runtime:
        resolved = resolve_device(device)
        return cls(resolved, resolve_precision(precision, resolved))

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype of the forward passes' matrix products (and of stored teacher states)."""
        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            yield

    def rng_state(self) -> dict[str, object]:
        state: dict[str, object] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def set_rng_state(self, state: dict[str, object]) -> None:
        torch.set_rng_state(state["torch"])  # type: ignore[arg-type]
        if self.device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state_all(state["cuda"])  # type: ignore[arg-type]

    def synchronize(self) -> None:
        """Wait for queued device work (step timings on an accelerator are otherwise meaningless)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

"""What a soft-compressor training run tells its user while it runs: throughput, ETA, the log.

`Throughput` turns step timings into examples/s and an ETA (evaluation time excluded: it is
logged on its own). `Progress` shows them on a tqdm bar, or, without a bar, as one line per
`print_every` steps on stderr. `JsonLog` appends one JSON object per line to ``train.log``.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from collections import deque
from pathlib import Path
from types import TracebackType

from tqdm import tqdm


class Throughput:
    """Examples per second over the run and seconds per step over the last `window` steps."""

    def __init__(self, window: int = 20):
        self.steps = self.examples = 0
        self.seconds = 0.0
        self.recent: deque[float] = deque(maxlen=window)

    def add(self, examples: int, seconds: float) -> None:
        self.steps += 1
        self.examples += examples
        self.seconds += seconds
        self.recent.append(seconds)

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_seconds_per_step(self) -> float:
        return self.seconds / self.steps if self.steps else 0.0

    @property
    def seconds_per_step(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def eta_seconds(self, steps_left: int) -> float:
        return steps_left * self.seconds_per_step


def format_duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


class Progress:
    """The progress bar (or plain lines) of one run, from `initial` to `total` steps."""

    def __init__(self, total: int, initial: int, bar: bool, print_every: int = 1):
        self.total = total
        self.print_every = max(1, print_every)
        self.bar = tqdm(total=total, initial=initial, disable=not bar, desc="train-soft", unit="step")
        self.plain = not bar

    def update(self, step: int, stage: str, loss: float, meter: Throughput) -> None:
        rate = meter.examples_per_second
        eta = format_duration(meter.eta_seconds(self.total - step))
        self.bar.update(1)
        self.bar.set_postfix_str(f"{stage} loss={loss:.4f} {rate:.3f} ex/s ETA {eta}")
        if self.plain and (step % self.print_every == 0 or step == self.total):
            print(
                f"step {step}/{self.total} {stage} loss {loss:.4f} "
                f"{meter.seconds_per_step:.1f} s/step {rate:.3f} examples/s ETA {eta}",
                file=sys.stderr,
                flush=True,
            )

    def note(self, text: str) -> None:
        tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


class JsonLog:
    """``train.log``: one JSON object per line, each with a wall-clock ``time``."""

    def __init__(self, path: Path):
        self.handle = path.open("a")

    def write(self, record: dict[str, object]) -> None:
        self.handle.write(json.dumps({"time": round(time.time(), 3), **record}, default=str) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> JsonLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

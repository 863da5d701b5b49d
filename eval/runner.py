"""Run methods x rates over LongBench-format datasets against a reader; resumable.

Every finished sample is appended to `{out}/results.jsonl` at once (one JSON object a line), so a
killed run loses at most the samples in flight: a rerun with the same output directory skips every
(dataset, _id, method, rate) that already has a result without error. Samples that failed (reader
errors) are written with an `error` field and retried by the next run.

Rate 1.0 is the uncompressed reference (`none`); compressing methods run at the rates below 1.
Samples are ordered so questions on the same context follow each other, which lets a reader with a
prompt cache (llama.cpp `cache_prompt`) reuse the context; `prompt_cache` is recorded in every row.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from promptpress.compressor.options import CompressOptions
from promptpress.compressor.tokens import count_tokens

from .longbench import Sample, Tokenizer, build_prompt, dataset_config, load_dataset
from .methods import NONE, Method, QuestionAware
from .metrics import answer_kept, score_sample
from .reader import Reader, ReaderError
from .squad_longdoc import ensure_suite

RESULTS = "results.jsonl"
RUN_INFO = "run.json"
Key = tuple[str, str, str, float]


@dataclass(frozen=True)
class RunConfig:
    datasets: Sequence[str]
    rates: Sequence[float] = (1.0, 0.5, 0.33, 0.2)
    data_dirs: Sequence[Path] = ()
    limit: int | Mapping[str, int] | None = None  # samples per dataset: one number, or per dataset name
    shuffle_seed: int | None = None  # with `limit`: a seeded random subset instead of the first ones
    offset: int = 0  # samples per dataset left out first (file order), before `limit`
    concurrency: int = 1
    max_length: int | None = None  # reader tokens of the whole prompt (middle truncation); None: no cut
    context_window: int | None = None  # the reader's context size: max_length = window - new tokens - margin
    max_new_tokens: int | None = None  # overrides the datasets' own (e.g. 8 for a smoke test)
    seed: int = 0

    def validate(self) -> RunConfig:
        if not self.datasets:
            raise ValueError("no datasets given")
        for rate in self.rates:
            if not 0 < rate <= 1:
                raise ValueError(f"rates must be in (0, 1], got {rate}")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.offset < 0:
            raise ValueError(f"offset must be >= 0, got {self.offset}")
        return self

    def limit_for(self, dataset: str) -> int | None:
        if self.limit is None or isinstance(self.limit, int):
            return self.limit
        return self.limit.get(dataset)

    def prompt_budget(self, max_new_tokens: int) -> int | None:
        if self.max_length is not None:
            return self.max_length
        if self.context_window is not None:
            return max(64, self.context_window - max_new_tokens - 96)  # 96: chat template and slack
        return None


@dataclass
class RunSummary:
    out_dir: Path
    planned: int = 0
    skipped: int = 0  # already done by an earlier run
    done: int = 0
    errors: int = 0
    wall_s: float = 0.0
    interrupted: bool = False


@dataclass
class _Task:
    sample: Sample
    method: Method
    rate: float

    @property
    def key(self) -> Key:
        return (self.sample.dataset, self.sample.id, self.method.name, self.rate)


@dataclass
class _Compressed:
    text: str
    original_tokens: int
    compressed_tokens: int
    ms: float
    reused: bool = False


@dataclass
class _CompressionMemo:
    """Compressed contexts by (method, rate, context): questions sharing a context compress it once."""

    size: int = 256
    items: OrderedDict[tuple[str, float, str], _Compressed] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    method_locks: dict[str, threading.Lock] = field(default_factory=dict)

    def get(self, method: Method, rate: float, context: str, question: str | None = None) -> _Compressed:
        text = context if question is None else f"{context}\x00{question}"
        key = (method.name, rate, hashlib.sha256(text.encode()).hexdigest())
        with self.lock:
            method_lock = self.method_locks.setdefault(method.name, threading.Lock())
            if key in self.items:
                self.items.move_to_end(key)
                return replace(self.items[key], reused=True)
        with method_lock:  # one compression at a time per method (models are not re-entrant)
            value = _compress(method, rate, context, question)
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


def _compress(method: Method, rate: float, context: str, question: str | None = None) -> _Compressed:
    if method.compressor is None or rate >= 1.0:
        tokens = count_tokens(context)
        return _Compressed(context, tokens, tokens, 0.0)
    start = time.perf_counter()
    if isinstance(method.compressor, QuestionAware):  # no question (e.g. summaries): compressed plainly
        result = method.compressor.compress_for_question(context, question or "", rate)
    else:
        result = method.compressor.compress(context, CompressOptions(rate=rate))
    ms = (time.perf_counter() - start) * 1000
    return _Compressed(result.compressed_text, result.original_tokens, result.compressed_tokens, ms)


def context_id(sample: Sample) -> str:
    """The context a sample is asked on: the dataset's own id (squad_longdoc) or a hash of the text."""
    given = sample.extra.get("context_id")
    return str(given) if given else hashlib.sha256(sample.context.encode()).hexdigest()[:16]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def plan_pairs(methods: Sequence[Method], rates: Sequence[float]) -> list[tuple[Method, float]]:
    """(method, rate) pairs: `none` at 1.0 (added when 1.0 is among the rates), others below 1."""
    pairs: list[tuple[Method, float]] = []
    if any(m.name == NONE for m in methods) or 1.0 in rates:
        pairs.append((next((m for m in methods if m.name == NONE), Method(NONE, None)), 1.0))
    for method in methods:
        if method.fixed_rate is not None:  # its rate is the model's own (soft: 1/C), whatever --rates say
            pairs.append((method, method.fixed_rate))
        elif method.name != NONE:
            pairs.extend((method, float(rate)) for rate in rates if rate < 1.0)
    return pairs


def _context_groups(samples: Sequence[Sample]) -> list[list[Sample]]:
    """Samples grouped by context, groups in order of first appearance (stable)."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.context, []).append(sample)
    return list(groups.values())


def read_results(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a results file; a torn last line (killed mid-write) is skipped."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                yield row


def row_key(row: dict[str, Any]) -> Key:
    return (row["dataset"], str(row["_id"]), row["method"], float(row["rate"]))


def done_keys(path: Path) -> set[Key]:
    return {row_key(r) for r in read_results(path) if not r.get("error")}


def find_dataset(dataset: str, data_dirs: Sequence[Path]) -> Path:
    for directory in data_dirs:
        if (Path(directory) / f"{dataset}.jsonl").is_file():
            return Path(directory)
    if dataset == "squad_longdoc":
        return ensure_suite()
    dirs = ", ".join(str(d) for d in data_dirs) or "(no --data directory given)"
    raise FileNotFoundError(f"{dataset}.jsonl is in none of: {dirs}")


class _Writer:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("a+", encoding="utf-8")
        if self.fh.tell() > 0:  # a killed run may have left half a line
            self.fh.seek(self.fh.tell() - 1)
            if self.fh.read(1) != "\n":
                self.fh.write("\n")

    def write(self, row: dict[str, Any]) -> None:
        self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


class Runner:
    def __init__(
        self,
        config: RunConfig,
        methods: Sequence[Method],
        reader: Reader,
        out_dir: Path,
        *,
        tokenizer: Tokenizer | None = None,
        progress: bool = True,
        command: str | None = None,
    ) -> None:
        self.config = config.validate()
        self.methods = list(methods)
        self.reader = reader
        self.out_dir = Path(out_dir)
        self.tokenizer = tokenizer
        self.progress = progress
        self.command = command  # recorded in run.json and shown in the report
        self.memo = _CompressionMemo()
        if (config.max_length or config.context_window) and tokenizer is None:
            raise ValueError("prompt truncation (max_length/context_window) needs a tokenizer")

    def plan(self) -> list[_Task]:
        tasks: list[_Task] = []
        for dataset in self.config.datasets:
            directory = find_dataset(dataset, self.config.data_dirs)
            samples = load_dataset(
                directory,
                dataset,
                limit=self.config.limit_for(dataset),
                shuffle_seed=self.config.shuffle_seed,
                offset=self.config.offset,
            )
            pairs = plan_pairs(self.methods, self.config.rates)
            for group in _context_groups(samples):
                # context-major: a run stopped early has every method x rate on the contexts it reached;
                # within a (method, rate) the questions on one context follow each other (prompt cache)
                tasks.extend(_Task(s, method, rate) for method, rate in pairs for s in group)
        return tasks

    @staticmethod
    def _key_row(task: _Task) -> dict[str, Any]:
        return {
            "dataset": task.sample.dataset,
            "_id": task.sample.id,
            "method": task.method.name,
            "rate": task.rate,
        }

    def _run_one(self, task: _Task) -> dict[str, Any]:
        sample = task.sample
        try:
            question = sample.input if task.method.question_aware else None
            compressed = self.memo.get(task.method, task.rate, sample.context, question)
        except Exception as exc:  # a failing compressor loses this sample, not the run
            return {**self._key_row(task), "error": f"compression failed: {exc!r}"[:1000]}
        config = dataset_config(sample.dataset)
        if self.config.max_new_tokens is not None:
            config = replace(config, max_new_tokens=self.config.max_new_tokens)
        prompt = build_prompt(
            sample,
            context=compressed.text,
            max_length=self.config.prompt_budget(config.max_new_tokens),
            tokenizer=self.tokenizer,
            config=config,
        )
        reader = task.method.reader or self.reader
        own_reader = task.method.reader is not None  # it compresses inside (soft): the text is intact
        row: dict[str, Any] = {
            **self._key_row(task),
            "original_tokens": compressed.original_tokens,
            "compressed_tokens": compressed.compressed_tokens,
            "compression_ms": round(compressed.ms, 2),
            "compression_reused": compressed.reused,
            "truncated": prompt.truncated,
            "answer_kept": None
            if own_reader
            else _rounded(answer_kept(sample.dataset, compressed.text, sample.answers)),
            "prompt_cache": reader.prompt_cache,
            "reader": reader.model,
            "length": sample.length,
            "context_id": context_id(sample),
        }
        try:
            gen = reader.generate(prompt)
        except ReaderError as exc:
            return {**row, "error": str(exc)[:1000]}
        if gen.uncompressed_prompt_tokens is not None and gen.prompt_tokens:
            # the reader compressed the prompt itself: sizes in its own positions (whole prompt)
            row["original_tokens"] = gen.uncompressed_prompt_tokens
            row["compressed_tokens"] = gen.prompt_tokens
            row["token_unit"] = "reader positions (whole prompt)"
        score = score_sample(sample.dataset, gen.text, sample.answers, sample.all_classes)
        return {
            **row,
            "prediction": gen.text,
            "score": round(score, 6),
            "generation_ms": round(gen.generation_ms, 2),
            "ttft_ms": None if gen.ttft_ms is None else round(gen.ttft_ms, 2),
            "prompt_tokens": gen.prompt_tokens,
            "cached_tokens": gen.cached_tokens,
            "completion_tokens": gen.completion_tokens,
        }

    def _write_info(self, planned: int, skipped: int) -> None:
        info = {
            "config": {**asdict(self.config), "data_dirs": [str(d) for d in self.config.data_dirs]},
            "methods": [m.name for m in self.methods],
            "reader": self.reader.model,
            "prompt_cache": self.reader.prompt_cache,
            "truncation_tokenizer": getattr(self.tokenizer, "name", None),
            "planned": planned,
            "skipped_done": skipped,
            "command": self.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        history_path = self.out_dir / RUN_INFO
        history = json.loads(history_path.read_text()) if history_path.is_file() else {"invocations": []}
        history["invocations"].append(info)
        history_path.write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")

    def run(self) -> RunSummary:
        results = self.out_dir / RESULTS
        done = done_keys(results)
        tasks = self.plan()
        todo = [t for t in tasks if t.key not in done]
        summary = RunSummary(self.out_dir, planned=len(tasks), skipped=len(tasks) - len(todo))
        self._write_info(len(tasks), summary.skipped)
        start = time.perf_counter()
        writer = _Writer(results)
        bar = _progress(len(todo), self.progress)
        pool = ThreadPoolExecutor(max_workers=self.config.concurrency)
        try:
            pending: set[Future[dict[str, Any]]] = set()
            queue = iter(todo)
            for task in queue:  # keep at most 2 x concurrency in flight: ordered, cache-friendly
                pending.add(pool.submit(self._run_one, task))
                if len(pending) >= 2 * self.config.concurrency:
                    pending = self._drain(pending, writer, summary, bar, FIRST_COMPLETED)
            self._drain(pending, writer, summary, bar, ALL_COMPLETED)
        except KeyboardInterrupt:
            summary.interrupted = True
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=not summary.interrupted, cancel_futures=True)
            writer.close()
            if bar is not None:
                bar.close()
            summary.wall_s = time.perf_counter() - start
        return summary

    def _drain(
        self, pending: set[Future[dict[str, Any]]], writer: _Writer, summary: RunSummary, bar: Any, mode: str
    ) -> set[Future[dict[str, Any]]]:
        finished, rest = wait(pending, return_when=mode)
        failure: BaseException | None = None
        for future in finished:
            if future.exception() is not None:  # e.g. KeyboardInterrupt: write the others first
                failure = failure or future.exception()
                continue
            row = future.result()
            writer.write(row)
            summary.errors += bool(row.get("error"))
            summary.done += not row.get("error")
            if bar is not None:
                bar.set_postfix_str(f"{row['dataset']} {row['method']}@{row['rate']}", refresh=False)
                bar.update(1)
        if failure is not None:
            raise failure
        return rest


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="sample", dynamic_ncols=True)

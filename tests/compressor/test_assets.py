"""Model specs to local files, offline; tiktoken from packaged files."""

from __future__ import annotations

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

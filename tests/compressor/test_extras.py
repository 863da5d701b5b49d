"""A feature whose extra is missing fails with one line naming the feature, the extra and both install
commands, exit status 2 — for every extra the CLI or the Python API can reach."""

import importlib
import sys

import pytest

from promptpress.compressor.extras import EXTRAS, MissingExtra, missing_module, require
from promptpress.service.cli import main


def _hide(monkeypatch, *modules):
    for name in modules:  # a None entry in sys.modules makes `import name` raise ImportError
        monkeypatch.setitem(sys.modules, name, None)


def _one_line_error(capsys, extra):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"'{extra}' extra" in lines[0]
    assert f"pip install -e '.[{extra}]'" in lines[0]
    assert f"pip install 'promptpress[{extra}]'" in lines[0]
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    return path


@pytest.mark.parametrize(
    ("extra", "hidden", "argv"),
    [
        ("fast", "onnxruntime", ["compress", "{file}", "--backend", "onnx-int8"]),
        ("redis", "redis", ["compress", "{file}", "--cache", "redis://127.0.0.1:1/0"]),
        ("serve", "fastapi", ["serve"]),
        ("serve", "xllamacpp", ["backend"]),
        ("eval", "rouge_score", ["eval", "report", "{tmp}"]),
        ("train", "peft", ["train", "corpus", "--out", "{tmp}/c.jsonl"]),
        ("soft", "gguf", ["train-soft", "--out", "{tmp}/soft"]),
        ("serve", "xllamacpp", ["eval", "run", "--datasets", "multi_news", "--out", "{tmp}/run"]),
    ],
)
def test_cli_names_the_missing_extra(monkeypatch, capsys, tmp_path, text_file, extra, hidden, argv):
    _hide(monkeypatch, hidden)
    argv = [a.format(file=text_file, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    line = _one_line_error(capsys, extra)
    assert hidden in line


def test_python_api_onnx_backend_without_the_extra(monkeypatch):
    from promptpress.compressor.runtime import make_runtime

    _hide(monkeypatch, "onnx")
    with pytest.raises(MissingExtra, match=r"'fast' extra \(onnx is not installed\)"):
        make_runtime(None, "onnx")  # type: ignore[arg-type]  # checked before the model is touched


def test_python_api_soft_compressor_without_the_extra(monkeypatch):
    from promptpress.compressor.soft.engine import SoftCompressor

    _hide(monkeypatch, "peft")
    with pytest.raises(MissingExtra, match=r"soft compressor: needs the 'soft' extra \(peft"):
        SoftCompressor.from_pretrained()


def test_langchain_adapters_without_the_extra(monkeypatch):
    _hide(monkeypatch, "langchain_core")
    for name in [m for m in sys.modules if m.startswith("promptpress.adapters")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingExtra, match=r"LangChain adapters: needs the 'langchain' extra"):
        importlib.import_module("promptpress.adapters.langchain")


def test_require_passes_when_installed_and_lists_every_extra_in_pyproject():
    for extra in EXTRAS:
        assert missing_module(extra) is None, extra  # the test install has every extra
        require("x", extra)
    from pathlib import Path

    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert set(EXTRAS) <= set(pyproject["project"]["optional-dependencies"])

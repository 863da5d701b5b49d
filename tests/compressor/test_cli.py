"""`promptpress compress` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from promptpress.service.cli import main


def test_compress_file_prints_text_and_stats(tiny_checkpoint, multi_news, tmp_path, capsys):
    path = tmp_path / "doc.txt"
    path.write_text(multi_news[0], encoding="utf-8")
    assert main(["compress", str(path), "--rate", "0.3", "--model", str(tiny_checkpoint)]) == 0
    out, err = capsys.readouterr()
    assert 0 < len(out) < len(multi_news[0]) * 0.6
    assert "tokens (rate 0.3" in err and "untrained" not in err


def test_json_output_and_target_tokens(tiny_checkpoint, multi_news, tmp_path, capsys):
    path = tmp_path / "doc.txt"
    path.write_text(multi_news[1], encoding="utf-8")
    assert (
        main(
            [
                "compress",
                str(path),
                "--target-tokens",
                "200",
                "--json",
                "--words",
                "--model",
                str(tiny_checkpoint),
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert abs(data["compressed_tokens"] - 200) <= 10
    assert data["words"] and {"text", "probability", "keep"} <= set(data["words"][0])


def test_stdin_and_force_tokens(tiny_checkpoint):
    text = "Line one has words.\nLine two has more words.\nLine three ends here.\n"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "promptpress.service.cli",
            "compress",
            "-",
            "--rate",
            "0.3",
            "--force",
            "\\n",
            "--model",
            str(tiny_checkpoint),
        ],
        input=text,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 4  # three forced newlines + the final one


def test_default_model_is_the_trained_one_and_a_bare_encoder_warns(tmp_path):
    path = tmp_path / "doc.txt"
    path.write_text("A short document about compression. It has two sentences.", encoding="utf-8")

    def run(*extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "promptpress.service.cli", "compress", str(path), "--json", *extra]
        return subprocess.run(cmd, capture_output=True, text=True)

    default = run()
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["model"].startswith("builtin:minilm-qmsum-v0")
    assert "untrained" not in default.stderr
    bare = run("--model", "package:all-minilm-l6-v2")
    assert bare.returncode == 0, bare.stderr
    assert "untrained" in bare.stderr


def test_models_lists_the_default(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "builtin:minilm-qmsum-v0 (default compressor)" in lines
    assert not any(line.startswith("package:") and "default" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["compress", "/no/such/file.txt"], None, "no such file"),
        (["compress", "-"], "   \n", "input is empty"),
        (["compress", "-"], b"\xff\xfe bad", "not valid UTF-8"),
        (["compress", "-", "--rate", "0"], "text", "rate must be in (0, 1]"),
        (["compress", "-", "--rate", "1.5"], "text", "rate must be in (0, 1]"),
        (["compress", "-", "--model", "package:unknown"], "some text", "unknown packaged model"),
        (["compress", "-", "--model", "./missing-dir"], "some text", "does not exist"),
        (["compress", "-", "--embedding-model", "package:mpnet"], "some text", "give --question too"),
        (
            ["compress", "-", "--question", "q?", "--embedding-model", "package:nope"],
            "one paragraph.\n\ntwo paragraphs.",
            "unknown packaged model 'nope'",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(args, stdin, message):
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "promptpress.service.cli", *args], input=data, capture_output=True
    )
    assert proc.returncode == 2
    assert message in proc.stderr.decode()
    assert b"Traceback" not in proc.stderr


def test_force_tokens_with_escapes_and_non_ascii(tiny_checkpoint, tmp_path, capsys):
    text = "Le café était fermé.\nIl pleuvait sur la ville entière ce jour-là, et personne ne sortait.\n" * 6
    path = tmp_path / "doc.txt"
    path.write_text(text, encoding="utf-8")
    assert (
        main(
            [
                "compress",
                str(path),
                "--rate",
                "0.3",
                "--force",
                "café",
                "--force",
                "fermé.\\n",
                "--model",
                str(tiny_checkpoint),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("café") == 6
    assert out.count("fermé.\n") == 6  # the escape decoded, the accent intact


def test_question_aware_compression(tmp_path, capsys):
    from test_query_aware import DOCS

    path = tmp_path / "docs.txt"
    path.write_text("\n\n".join(DOCS), encoding="utf-8")
    question = "Who built famous violins in Cremona?"
    assert main(["compress", str(path), "--rate", "0.4", "--question", question, "--json"]) == 0
    contexts = json.loads(capsys.readouterr().out)["contexts"]
    assert len(contexts) == 3  # the paragraphs of the file
    shares = [c["compressed_tokens"] / c["original_tokens"] for c in contexts]
    assert shares[2] == max(shares) and shares[2] > 2 * min(shares)
    assert main(["compress", str(path), "--question", question, "--budget", "window"]) == 2
    assert "--question needs --budget global" in capsys.readouterr().err
    # the bigger packaged relevance model, chosen by its spec, decides the same way
    args = ["compress", str(path), "--rate", "0.4", "--question", question, "--json"]
    assert main([*args, "--embedding-model", "package:all-mpnet-base-v2"]) == 0
    contexts = json.loads(capsys.readouterr().out)["contexts"]
    assert max(contexts, key=lambda c: c["relevance"])["index"] == 2
    assert max(contexts, key=lambda c: c["compressed_tokens"] / c["original_tokens"])["index"] == 2


def test_first_run_with_an_empty_cache_prints_only_text_and_one_stats_line(multi_news, tmp_path):
    # a newcomer's first command: the default builtin model is merged into an empty cache directory
    # (no peft, no training code); stderr carries one line, no progress bars or warnings
    import os

    path = tmp_path / "doc.txt"
    path.write_text(multi_news[2], encoding="utf-8")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PROMPTPRESS_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "promptpress.service.cli", "compress", str(path), "--rate", "0.33"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and len(proc.stdout) < len(multi_news[2])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("promptpress: "), proc.stderr
    assert "builtin:minilm-qmsum-v0" in lines[0]
    assert any((tmp_path / "cache" / "builtin").iterdir())  # built where it was told, not in ~/.cache

"""`promptpress serve` as a real process, and structured logs that hold no prompt text unless asked."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from service_helpers import LONG_TEXT, openai_client

from promptpress.service.logs import JSONFormatter
from promptpress.service.serving import ServerThread, free_port

SERVE = (
    "import argparse, sys\n"
    "from promptpress.service.cli.serve import register\n"
    "parser = argparse.ArgumentParser(prog='promptpress')\n"
    "register(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args))\n"
)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JSONFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines():
    handler = _Lines()
    logger = logging.getLogger("promptpress.service")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


@pytest.mark.parametrize("log_prompts", [False, True])
def test_logs_are_json_and_hold_prompt_text_only_when_enabled(make_proxy, log_lines, log_prompts):
    client = openai_client(make_proxy(log_level="info", log_prompts=log_prompts))
    client.chat.completions.create(model="echo", messages=[{"role": "user", "content": LONG_TEXT}])
    events = [json.loads(line) for line in log_lines]
    request = next(e for e in events if e.get("event") == "request")
    assert request["status"] == 200 and request["compression"] == "applied" and request["duration_ms"] > 0
    compressed = next(e for e in events if e.get("event") == "compressed")
    assert compressed["original_tokens"] > compressed["compressed_tokens"] > 0
    phrase = "segment-wise soft compressor"
    assert any(phrase in line for line in log_lines) is log_prompts


@pytest.mark.slow
def test_serve_command_runs_the_proxy(upstream, tmp_path):
    port = free_port()
    env = {**os.environ, "PROMPTPRESS_MIN_TOKENS": "20", "PROMPTPRESS_API_KEYS": "sk-serve"}
    command = [sys.executable, "-c", SERVE, "serve", "--port", str(port), "--upstream", upstream.url + "/v1"]
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(url + "/healthz").json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        health = httpx.get(url + "/healthz").json()
        assert health["status"] == "ok" and health["compressor_error"] is None, health

        class _Server(ServerThread):  # only its url is used by openai_client
            def __init__(self) -> None:
                self.host, self.port = "127.0.0.1", port

        client = openai_client(_Server(), api_key="sk-serve")
        raw = client.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": LONG_TEXT}]
        )
        assert raw.headers["x-promptpress-compression"] == "applied"
        assert httpx.get(url + "/v1/models").status_code == 401  # the env's API key is enforced
    finally:
        process.terminate()
        process.wait(30)
        log.close()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal for the exit status
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_serve_rejects_bad_settings(tmp_path):
    command = [sys.executable, "-c", SERVE, "serve", "--rate", "7"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert "rate" in result.stderr and "Traceback" not in result.stderr

"""`promptpress serve --workers 2` as a real process: the command-line options reach both workers, they
answer health checks and proxied requests, and /metrics counts what all of them served."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from service_helpers import LONG_TEXT

from promptpress.service.cli.serve import _environment, _shared_metrics_directory, beside_backend
from promptpress.service.serving import free_port

CLI = "import sys; from promptpress.service.cli import main; sys.exit(main(sys.argv[1:]))"


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/healthz", timeout=5).json()["status"] == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy after {timeout} s:\n{log.read_text()}")


def _chat_requests_counted(metrics: str) -> float:
    match = re.search(
        r'^promptpress_requests_total\{method="POST",route="/v1/chat/completions",status="200"\} (\S+)$',
        metrics,
        re.MULTILINE,
    )
    return float(match.group(1)) if match else 0.0


def _served_by(metrics_dir: Path, pid: str) -> float:
    """Chat requests one worker counted, from its own file in the shared metrics directory."""
    from prometheus_client.multiprocess import MultiProcessCollector

    files = [str(f) for f in metrics_dir.glob(f"counter_{pid}.db")]
    return sum(
        sample.value
        for metric in MultiProcessCollector.merge(files)
        for sample in metric.samples
        if sample.name == "promptpress_requests_total"
        and sample.labels.get("route") == "/v1/chat/completions"
    )


def _settled(
    read: Callable[[], dict[str, float]], expected: float, timeout: float = 10.0
) -> dict[str, float]:
    """`read()` once its values sum to `expected` (or the last reading after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    values = read()
    while sum(values.values()) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        values = read()
    return values


def test_overrides_become_worker_environment():
    from pydantic import SecretStr

    env = _environment(
        {"upstream_base_url": "http://u/v1", "upstream_api_key": SecretStr("k"), "allowed_models": ["a", "b"]}
    )
    assert env == {
        "PROMPTPRESS_UPSTREAM_BASE_URL": "http://u/v1",
        "PROMPTPRESS_UPSTREAM_API_KEY": "k",
        "PROMPTPRESS_ALLOWED_MODELS": '["a", "b"]',
    }


def test_beside_its_own_backend_the_compressor_takes_one_thread_unless_told():
    from promptpress.service.settings import Settings

    update = beside_backend(Settings(), "http://127.0.0.1:5/v1", "qwen-local")
    assert update == {
        "upstream_base_url": "http://127.0.0.1:5/v1",
        "allowed_models": ["qwen-local"],
        "compressor_threads": 1,
    }
    assert _environment(update)["PROMPTPRESS_COMPRESSOR_THREADS"] == "1"  # every worker gets it
    told = Settings(compressor_threads=2, allowed_models=["a"])
    assert beside_backend(told, "http://b/v1", "m") | {"upstream_base_url": None} == {
        "upstream_base_url": None,
        "allowed_models": ["a"],
        "compressor_threads": 2,
    }


def test_workers_get_a_fresh_metrics_directory_unless_one_is_set(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with _shared_metrics_directory():
        made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        assert made.is_dir() and not any(made.iterdir())
    assert not made.exists() and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with _shared_metrics_directory():
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    assert tmp_path.is_dir()


@pytest.mark.slow
def test_serve_with_two_workers(upstream, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # the upstream and the threshold are options only: the workers learn them from the parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTPRESS_", "PROMETHEUS_"))}
    env["PROMPTPRESS_COMPRESSOR_THREADS"] = "1"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # the user's own (else serve makes a temporary one)
    command = [sys.executable, "-c", CLI, "serve", "--workers", "2", "--port", str(port)]
    command += ["--upstream", upstream.url + "/v1", "--min-tokens", "20", "--log-level", "info"]
    log_path = tmp_path / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_healthy(url, process, log_path)
        started = set(re.findall(r"Started server process \[(\d+)\]", log_path.read_text()))
        assert len(started) == 2, log_path.read_text()

        long = {"model": "echo", "messages": [{"role": "user", "content": LONG_TEXT}]}
        response = httpx.post(url + "/v1/chat/completions", json=long, timeout=120)
        assert response.status_code == 200, response.text
        assert response.headers["x-promptpress-compression"] == "applied"  # --min-tokens 20 reached it
        sent = response.json()["echo"]["body"]["messages"][0]["content"]
        assert 0 < len(sent) < len(LONG_TEXT)

        short = {"model": "echo", "messages": [{"role": "user", "content": "What is the capital of France?"}]}

        def one(_: int) -> int:
            with httpx.Client() as client:  # a new connection each: either worker may take it
                return client.post(url + "/v1/chat/completions", json=short, timeout=60).status_code

        # the kernel hands each new connection to whichever worker accepts first, and on an idle
        # machine one worker can take a whole batch: send batches until both have served (bounded)
        sent = 1  # the long request
        for _ in range(10):
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(one, range(40)))
            assert statuses == [200] * 40
            sent += 40
            # a request is counted once its last byte is sent, which the client may see first: wait
            # (bounded) for the count
            served = _settled(lambda: {pid: _served_by(metrics_dir, pid) for pid in started}, sent)
            if min(served.values()) > 0:
                break
        assert sum(served.values()) == sent and min(served.values()) > 0, served
        # whichever worker answers the scrape, it reports the requests of both
        for _ in range(6):
            with httpx.Client() as client:
                assert _chat_requests_counted(client.get(url + "/metrics").text) == sent
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    text = log_path.read_text()
    assert process.returncode == 0, text
    assert "Traceback" not in text
    assert text.count("Application shutdown complete") == 2, text

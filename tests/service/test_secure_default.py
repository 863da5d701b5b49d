"""Secure by default: `promptpress serve` refuses a non-loopback address without API keys unless an
open proxy is explicitly allowed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from promptpress.service.cli.serve import open_proxy_refusal

CLI = "import sys; from promptpress.service.cli import main; sys.exit(main(sys.argv[1:]))"


def _serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTPRESS_")}
    command = [sys.executable, "-c", CLI, "serve", *args]
    return subprocess.run(command, env={**clean, **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "proxy.example"])
def test_serve_refuses_an_open_proxy_in_one_line(host, tmp_path):
    done = _serve("--host", host, "--port", "1")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "without api_keys" in lines[0] and "--allow-unauthenticated" in lines[0]


def test_host_from_the_environment_is_refused_too():
    assert _serve(PROMPTPRESS_HOST="0.0.0.0").returncode == 2


@pytest.mark.parametrize(
    ("host", "keys", "allowed"),
    [
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", True, False),
        ("0.0.0.0", False, True),
    ],
)
def test_what_is_allowed(host, keys, allowed):
    assert open_proxy_refusal(host, keys, allowed) is None


def test_allow_unauthenticated_from_the_environment():
    from promptpress.service.settings import Settings

    settings = Settings(_env_file=None, host="0.0.0.0")  # type: ignore[call-arg]
    assert open_proxy_refusal(settings.host, False, settings.allow_unauthenticated)
    os.environ["PROMPTPRESS_ALLOW_UNAUTHENTICATED"] = "true"
    try:
        assert Settings(_env_file=None).allow_unauthenticated is True  # type: ignore[call-arg]
    finally:
        del os.environ["PROMPTPRESS_ALLOW_UNAUTHENTICATED"]

"""Child process of `LocalBackend`: runs llama.cpp's OpenAI-compatible server (xllamacpp) in-process.

``python -m promptpress.compressor.llamacpp --model FILE.gguf [--host H] [--port P] ...``

When the server answers ``/health`` it prints one JSON line ``{"ready": true, "base_url": ..., "model":
...}`` on stdout, then serves until SIGTERM/SIGINT or until its stdin closes (so it never outlives the
parent that holds the pipe, even if that parent is killed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request


def build_params(args: argparse.Namespace) -> object:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx_size
    params.n_parallel = args.parallel
    params.model_alias = {args.alias}
    params.cache_prompt = args.prompt_cache
    if not args.prompt_cache:
        params.cache_ram_mib = 0
    if args.threads:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    return params


def wait_healthy(base: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"llama.cpp server at {base} not healthy after {timeout:g} s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m promptpress.compressor.llamacpp")
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--alias", required=True, help="model name served by the API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--ctx-size", type=int, default=8192)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="0: llama.cpp's default")
    parser.add_argument("--no-prompt-cache", dest="prompt_cache", action="store_false")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    import xllamacpp

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(1):
                pass
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    server = xllamacpp.Server(build_params(args))
    base = server.listening_address.rstrip("/")
    wait_healthy(base, args.ready_timeout)
    print(
        json.dumps({"ready": True, "base_url": base + "/v1", "model": args.alias, "pid": os.getpid()}),
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    del server  # stops llama.cpp's loops
    return 0


if __name__ == "__main__":
    sys.exit(main())

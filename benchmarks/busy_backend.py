"""The local llama.cpp backend kept busy while a benchmark times something else beside it.

`BusyBackend` starts `promptpress serve --with-backend` (one backend thread unless told otherwise; 0:
llama.cpp's default) and a client thread that
asks it for long completions back to back, so the backend decodes on one core for the whole timed
section: the case of a proxy whose compressor shares two cores with the LLM it fronts. The user
message is short, below the proxy's compression threshold, so the server's own compressor stays idle;
`stop()` returns how many tokens the backend generated and how fast.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

from proxy_load import free_port
from serve_process import ServeProcess

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."


class BusyBackend:
    def __init__(self, log_path: Path | None = None, max_tokens: int = 64, threads: int = 1) -> None:
        self.server = ServeProcess(free_port(), backend_threads=threads, log_path=log_path)
        self.max_tokens = max_tokens
        self.tokens = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _ask(self, model: str) -> int:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": self.max_tokens,
            "temperature": 0.8,
        }
        request = urllib.request.Request(
            self.server.url + "/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer unused"},
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            return int(json.loads(response.read())["usage"]["completion_tokens"])

    def _loop(self) -> None:
        with urllib.request.urlopen(self.server.url + "/v1/models", timeout=30) as response:
            model = json.loads(response.read())["data"][0]["id"]
        while not self._stop.is_set():
            try:
                self.tokens += self._ask(model)
            except (OSError, ValueError, KeyError):
                self.errors += 1
                time.sleep(1.0)

    def start(self) -> BusyBackend:
        self.server.start()
        self.started = time.monotonic()
        self._thread.start()
        time.sleep(3.0)  # let the first completion get going
        return self

    def stop(self) -> str:
        """Stop the load and the server; a line saying what the backend did meanwhile."""
        self._stop.set()
        seconds = time.monotonic() - self.started
        self._thread.join(timeout=600)
        left = self.server.stop()
        return (
            f"backend beside the timings: {self.tokens} tokens generated in {seconds:.0f} s "
            f"({self.tokens / seconds:.1f} tokens/s), {self.errors} failed requests"
            + (f"; STILL RUNNING: {left}" if left else "")
        )


def main() -> None:
    """The backend's decoding speed alone: `python benchmarks/busy_backend.py --threads N --seconds S`."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--threads", type=int, default=1, help="backend threads (0: llama.cpp's default)")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    busy = BusyBackend(threads=args.threads).start()
    try:
        time.sleep(args.seconds)
    finally:
        print(f"threads {args.threads}: " + busy.stop())


if __name__ == "__main__":
    main()

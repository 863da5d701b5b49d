"""Time the whole `promptpress compress` process on a ~1k-token file: the torch path and the ONNX path
(the default) side by side, warm cache, and check that they print the same text.

    python benchmarks/bench_cli.py [--tokens 1000] [--repeats 5] [--rate 0.33] [--agreement 200]

In a fresh cache directory (`PROMPTPRESS_CACHE_DIR`, a temporary one unless `--cache-dir`): one cold
run of the default command (the builtin model merged, exported to ONNX: timed, reported apart), one
warm-up run of each path, then `--repeats` runs of each, interleaved (torch, onnx, torch, ...) so that
load from other processes falls on both alike. Each run is a new process (the `promptpress` script);
its wall time and its peak resident memory (`os.wait4`, that process alone) are measured. One more
run of the ONNX path under ``python -X importtime`` tells whether it imported torch or transformers.
`--agreement N` then compares the two paths in one process on the first N LongBench multi_news
contexts and README.md, at rates 0.33 and 0.5: compressed texts equal, word decisions equal.
Needs LongBench's multi_news under ../shared/data (or `$PROMPTPRESS_SHARED_DATA`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_compress import DATA, REPO, load_text

MODEL = "builtin:minilm-qmsum-v0"
HEAVY = ("torch", "transformers")


@dataclass
class Run:
    seconds: float
    cpu_seconds: float  # user + system time of that process: what load from other processes moves least
    max_rss_mib: float
    stdout: bytes
    stderr: str


def command() -> list[str]:
    script = Path(sys.executable).with_name("promptpress")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "promptpress.service.cli"]


def run(argv: list[str], env: dict[str, str], workdir: Path) -> Run:
    """Run `argv` to completion: wall seconds, peak RSS of that process, its output."""
    out, err = workdir / "stdout", workdir / "stderr"
    with out.open("wb") as fo, err.open("wb") as fe:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = err.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{stderr}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read_bytes(), stderr)


def heavy_imports(importtime_stderr: str) -> list[str]:
    """Top-level modules of HEAVY that `python -X importtime` reported as imported."""
    found = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name.split(".")[0] in HEAVY:
                found.add(name.split(".")[0])
    return sorted(found)


def agreement(n_texts: int, rates: tuple[float, ...] = (0.33, 0.5)) -> None:
    """The torch path and the ONNX path (opened from the artefact, no torch model) on real texts."""
    import numpy as np

    from promptpress.compressor import TokenClassifierCompressor

    torch_path = TokenClassifierCompressor(MODEL, backend="torch")
    onnx_path = TokenClassifierCompressor(MODEL, backend="onnx")
    assert onnx_path._loaded is None, "the ONNX path was expected to open from the artefact"
    with (DATA / "longbench" / "multi_news.jsonl").open(encoding="utf-8") as fh:
        texts = [json.loads(line)["context"] for line in fh][:n_texts]
    texts.append((REPO / "README.md").read_text(encoding="utf-8"))
    same = pairs = words = agree = 0
    for text in texts:
        for rate in rates:
            a = torch_path.compress(text, rate=rate, return_words=True)
            b = onnx_path.compress(text, rate=rate, return_words=True)
            ka = np.array([w.keep for w in a.words or []])
            kb = np.array([w.keep for w in b.words or []])
            pairs += 1
            same += a.compressed_text == b.compressed_text
            words += len(ka)
            agree += int((ka == kb).sum()) if len(ka) == len(kb) else 0
    print(
        f"agreement, torch fp32 vs ONNX fp32 from the artefact ({len(texts) - 1} multi_news contexts + "
        f"README.md, rates {', '.join(map(str, rates))}): compressed text equal in {same}/{pairs}; "
        f"word decisions equal {agree:,}/{words:,} ({agree / words:.4%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=1000, help="size of the input file (tiktoken tokens)")
    parser.add_argument("--rate", type=float, default=0.33)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, help="cache directory to use (default: a fresh one)")
    parser.add_argument("--agreement", type=int, default=0, metavar="N", help="also compare on N texts")
    args = parser.parse_args()

    from promptpress.compressor import count_tokens

    workdir = Path(tempfile.mkdtemp(prefix="pp-bench-cli-"))
    cache = args.cache_dir or workdir / "cache"
    os.environ["PROMPTPRESS_CACHE_DIR"] = str(cache)  # the --agreement pass in this process too
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    text = load_text(args.tokens)
    source = workdir / "input.txt"
    source.write_text(text, encoding="utf-8")
    base = [*command(), "compress", str(source), "--rate", str(args.rate)]
    paths = {"torch": [*base, "--backend", "torch"], "onnx": [*base, "--backend", "onnx"]}
    print(
        f"input: {count_tokens(text)} tiktoken tokens; cache {cache}; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    try:
        cold = run(paths["onnx"], env, workdir)
        print(f"first run, {'empty' if args.cache_dir is None else 'given'} cache: {cold.seconds:.2f} s")
        runs: dict[str, list[Run]] = {name: [] for name in paths}
        for argv in paths.values():  # warm-up
            run(argv, env, workdir)
        for _ in range(args.repeats):
            for name, argv in paths.items():
                runs[name].append(run(argv, env, workdir))
        onnx = paths["onnx"]
        traced = run([sys.executable, "-X", "importtime", *onnx[onnx[0] == sys.executable :]], env, workdir)
        helps = [run([*command(), "--help"], env, workdir).seconds for _ in range(3)]
        report(runs, heavy_imports(traced.stderr), statistics.median(helps), args.repeats)
        print(f"load average {os.getloadavg()[0]:.2f} at the end of the timed runs")
        if args.agreement:
            agreement(args.agreement)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(runs: dict[str, list[Run]], onnx_heavy: list[str], help_seconds: float, repeats: int) -> None:
    outputs = {r.stdout for rs in runs.values() for r in rs}
    print()
    print(
        f"| `promptpress compress --backend X`, warm | median wall s (of {repeats}) | min–max s "
        "| median CPU s | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|")
    medians = {}
    for name, rs in runs.items():
        seconds = [r.seconds for r in rs]
        medians[name] = statistics.median(seconds)
        print(
            f"| {name} | {medians[name]:.2f} | {min(seconds):.2f}–{max(seconds):.2f} | "
            f"{statistics.median(r.cpu_seconds for r in rs):.2f} | {max(r.max_rss_mib for r in rs):.0f} |"
        )
    print()
    print(
        f"onnx vs torch: {medians['torch'] / medians['onnx']:.2f}x faster (target: onnx <= 2 s, <= 300 MiB)"
    )
    print(f"the onnx path imported: {', '.join(onnx_heavy) or 'neither torch nor transformers'}")
    print(
        f"stdout identical across all {sum(map(len, runs.values()))} runs of both paths: {len(outputs) == 1}"
    )
    print(f"`promptpress --help`: {help_seconds:.2f} s (median of 3)")
    print(f"stats line: {runs['onnx'][-1].stderr.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()

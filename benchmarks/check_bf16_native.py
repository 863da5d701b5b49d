"""Does this CPU run bf16 natively? Prints what promptpress reads (``native_bf16``: AVX-512 BF16 or
AMX in /proc/cpuinfo, which decides ``backend="auto"`` and ``train-soft --precision auto``) and times
one matrix product of the soft compressor's shape (tokens x 896 x 4,864, the 0.5B decoder's FFN) in
fp32 and in bf16, on the threads asked for.

    python benchmarks/check_bf16_native.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from promptpress.compressor.torch_runtime import native_bf16


def seconds_per_product(a: torch.Tensor, b: torch.Tensor, repeats: int) -> float:
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return (time.perf_counter() - start) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    a, b = torch.randn(args.tokens, 896), torch.randn(896, 4864)
    fp32 = seconds_per_product(a, b, args.repeats)
    bf16 = seconds_per_product(a.bfloat16(), b.bfloat16(), args.repeats)
    print(f"torch CPU capability: {torch.backends.cpu.get_cpu_capability()}; native_bf16: {native_bf16()}")
    print(f"{args.tokens} x 896 x 4864, {args.threads} thread(s), load average {os.getloadavg()[0]:.2f}:")
    print(f"  fp32 {fp32 * 1000:.1f} ms, bf16 {bf16 * 1000:.1f} ms: bf16 is {fp32 / bf16:.2f}x fp32's speed")


if __name__ == "__main__":
    main()

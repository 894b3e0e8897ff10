"""One launch each of the M <= 16 decode GEMM variants and cuBLAS fp16 at one shape, for Nsight Compute.

    bash benchmarks/gpu_run.sh ncu-decode 1 28672 8192

Each variant runs twice (compilation and warm-up, then the launch ncu reports as the second)."""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from profile_prefill import run_variants  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402

VARIANTS = {
    "triton bn64 w4 s3": tw.KernelConfig(16, 64, 4, 3, split_k=8),
    "gluon tma bn64 w4 s3": tw.KernelConfig(16, 64, 4, 3, split_k=16, tma_stages=3),
}


def main() -> None:
    m, n, k, x = run_variants(VARIANTS, (1, 28672, 8192))
    w = torch.randn(n, k, device="cuda", dtype=torch.float16)
    for _ in range(2):
        torch.matmul(x, w.t())
    torch.cuda.synchronize()
    print("ran cuBLAS fp16", flush=True)


if __name__ == "__main__":
    main()

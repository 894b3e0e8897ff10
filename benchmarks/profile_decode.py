"""One launch each of the M <= 16 decode GEMM variants and cuBLAS fp16 at one shape, for Nsight Compute.

    bash benchmarks/gpu_run.sh ncu-decode 1 28672 8192

Each variant runs twice (compilation and warm-up, then the launch ncu reports as the second); the installed one again
with one K step a ring slot (`FUSED_PAIR` 0) last."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from profile_prefill import run_fp16, run_variants  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402

VARIANTS = {
    "installed": None,  # the default dispatch (at M = 1: the one-launch op on the TMA kernel)
    "triton bn64 w4 s3": tw.KernelConfig(16, 64, 4, 3, split_k=8),
}


def main() -> None:
    m, n, k, x = run_variants(VARIANTS, (1, 28672, 8192))
    tw.FUSED_PAIR = 0  # (session 29: the one-launch M = 1 op with one K step a ring slot, against the installed pairs)
    run_variants({"installed without pairs": None}, (1, 28672, 8192))
    run_fp16(x, n, k)


if __name__ == "__main__":
    main()

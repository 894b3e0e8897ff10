"""One launch each of the installed swap prefill GEMM (two-level groups of 128, the default format; the GEMM alone, on
activations quantized beforehand) and cuBLAS fp16 at one shape, for Nsight Compute (session 18: is the kernel bound by
the tensor pipe, shared memory or issue, per cycle, away from the power cap?).

    ncu --clock-control none --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \\
        --section WarpStateStats -k regex:'swap|nvjet|sm90|gemm' python3 benchmarks/profile_swap.py 1024 5120 5120

Each runs twice (compilation and warm-up, then the launch ncu reports as the second)."""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import make_layer  # noqa: E402
from profile_prefill import run_fp16  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402


def main() -> None:
    m, n, k = (int(v) for v in sys.argv[1:4]) if len(sys.argv) > 3 else (1024, 5120, 5120)
    torch.manual_seed(0)
    qweight, scales, _, _, chan = make_layer(n, k, 128, True, two_level=True)
    a, sx = tw.quantize_activation_triton(torch.randn(m, k, device="cuda", dtype=torch.float16), 128, "dynamic")
    for _ in range(2):
        torch.ops.fptq.w4a8_gemm(a, sx, qweight, scales, None, None, k, 128, 2, torch.float16, chan)
    torch.cuda.synchronize()
    print("ran w4a8 swap", flush=True)
    run_fp16(torch.randn(m, k, device="cuda", dtype=torch.float16), n, k)


if __name__ == "__main__":
    main()

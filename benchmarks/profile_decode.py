"""One launch each of the M <= 16 decode GEMM variants and cuBLAS fp16 at one shape, for Nsight Compute.

    bash benchmarks/gpu_run.sh ncu-decode 1 28672 8192

Each variant runs twice (compilation and warm-up, then the launch ncu reports as the second)."""

from __future__ import annotations

import sys

import torch

from fptq.kernels import triton_w4a8 as tw
from fptq.packing import pack_int4

VARIANTS = {
    "triton bn64 w4 s3": tw.KernelConfig(16, 64, 4, 3, split_k=8),
    "gluon tma bn64 w4 s3": tw.KernelConfig(16, 64, 4, 3, split_k=16, tma_stages=3),
}


def main() -> None:
    m, n, k = (int(v) for v in sys.argv[1:4]) if len(sys.argv) > 3 else (1, 28672, 8192)
    torch.manual_seed(0)
    codes = torch.randint(0, 16, (n, k), dtype=torch.uint8, device="cuda")
    qweight = pack_int4(codes)
    scales = (torch.rand(n, k // 128, device="cuda") * 0.01).half()
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    for name, cfg in VARIANTS.items():
        for _ in range(2):
            tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode="dynamic", config=cfg)
        torch.cuda.synchronize()
        print("ran", name, flush=True)
    w = torch.randn(n, k, device="cuda", dtype=torch.float16)
    for _ in range(2):
        torch.matmul(x, w.t())
    torch.cuda.synchronize()
    print("ran cuBLAS fp16", flush=True)


if __name__ == "__main__":
    main()

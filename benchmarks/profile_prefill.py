"""One launch each of the prefill GEMM variants and cuBLAS int8 at one shape, for Nsight Compute.

    ncu --clock-control none --section SpeedOfLight --section WarpStateStats --section Occupancy \\
        -k regex:'gemm|Kernel|unpack' python3 benchmarks/profile_prefill.py 4096 4096 4096

Each variant runs twice (compilation and warm-up, then the launch ncu reports as the second)."""

from __future__ import annotations

import sys

import torch

from fptq.kernels import triton_w4a8 as tw
from fptq.kernels.triton_prefill import PrefillConfig
from fptq.packing import pack_int4

VARIANTS = {
    "triton u64x128w4s4": PrefillConfig(64, 128, 4, 4),
    "gluon ws128x128s6": PrefillConfig(128, 128, 4, 6, ws=True),
}


def run_variants(variants: dict, default_shape: tuple) -> tuple:
    """Each config of `variants` twice (compilation, then the launch ncu reports) on a random g128
    layer of the shape `M N K` given on the command line; returns (m, n, k, x)."""
    m, n, k = (int(v) for v in sys.argv[1:4]) if len(sys.argv) > 3 else default_shape
    torch.manual_seed(0)
    codes = torch.randint(0, 16, (n, k), dtype=torch.uint8, device="cuda")
    qweight = pack_int4(codes)
    scales = (torch.rand(n, k // 128, device="cuda") * 0.01).half()
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    for name, cfg in variants.items():
        for _ in range(2):
            tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode="dynamic", config=cfg)
        torch.cuda.synchronize()
        print("ran", name, flush=True)
    return m, n, k, x


def run_fp16(x, n: int, k: int) -> None:
    """cuBLAS fp16 twice on `x` and a random (n, k) weight (the second launch is the one ncu reports)."""
    w = torch.randn(n, k, device="cuda", dtype=torch.float16)
    for _ in range(2):
        torch.matmul(x, w.t())
    torch.cuda.synchronize()
    print("ran cuBLAS fp16", flush=True)


def main() -> None:
    m, n, k, x = run_variants(VARIANTS, (4096, 4096, 4096))
    a = torch.randint(-127, 128, (m, k), dtype=torch.int8, device="cuda")
    b = torch.randint(-127, 128, (n, k), dtype=torch.int8, device="cuda")
    for _ in range(2):
        torch._int_mm(a, b.t())
    torch.matmul(x, x[:n].t() if n <= m else torch.randn(n, k, device="cuda", dtype=torch.float16).t())
    torch.cuda.synchronize()
    print("ran cuBLAS int8 and fp16", flush=True)


if __name__ == "__main__":
    main()

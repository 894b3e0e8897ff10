"""Session 27: programs per row of the activation-quantization kernel at decode sizes (M = 4 / 16).

At 4 and 16 rows the op is two launches (the row quantization, then the GEMM under PDL), and the first costs 1-2.3 µs
on the 4096-8192-row layers and 4.5-4.8 µs on 70B down (run 235). `_act_quant_kernel` gives each row
QUANT_MAX_PROGRAMS // M programs, of QUANT_PART_COLS
columns at least; every one of them reads its whole row for the scale and then quantizes its own part. This times
the quantization kernel alone and the op (two-level g128, dynamic int8) at several budgets, checks that the codes and
scales are the default's bit for bit, and times cuBLAS fp16 in the same run for the ratio.

    PYTHONPATH=src python3 benchmarks/probe_quant_parts.py [--budgets 16,32,64,128] [--ms 4,16] [--shapes A,B]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench_fp16, bench_ours  # noqa: E402
from probe_quant import quant_only  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402

SHAPES = {"70B down": (8192, 28672), "7B down": (4096, 11008), "7B q/k/v/o": (4096, 4096), "70B q/o": (8192, 8192),
          "13B gate/up": (13824, 5120), "70B gate/up": (28672, 8192), "7B q/k/v fused": (12288, 4096),
          "7B gate+up fused": (22016, 4096), "70B gate+up fused": (57344, 8192)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--budgets", default="16,32,64,128")
    p.add_argument("--ms", default="4,16")
    p.add_argument("--shapes", default=None, help="comma-separated names of SHAPES (default: all)")
    p.add_argument("--warps", default="", help="comma-separated QUANT_WARPS values to sweep at each budget (0: the "
                   "default, by row length); default: the default only")
    args = p.parse_args()
    shapes = {name: SHAPES[name] for name in args.shapes.split(",")} if args.shapes else SHAPES
    budgets = [int(b) for b in args.budgets.split(",")]
    ms = [int(m) for m in args.ms.split(",")]
    print("GPU", torch.cuda.get_device_name(), flush=True)
    default, default_warps = tw.QUANT_MAX_PROGRAMS, tw.QUANT_WARPS
    warps = [int(w) or None for w in args.warps.split(",")] if args.warps else [default_warps]
    xs = {(m, k): torch.randn(m, k, device="cuda", dtype=torch.float16) for m in ms for _, k in shapes.values()}
    ref = {mk: tw.quantize_activation_triton(x, 128, "dynamic") for mk, x in xs.items()}
    fp16 = {(m, name): bench_fp16(m, *shapes[name]) for m in ms for name in shapes}
    for budget, warp in [(b, w) for b in budgets for w in warps]:
        tw.QUANT_MAX_PROGRAMS, tw.QUANT_WARPS = budget, warp
        same = all(all(torch.equal(a, b) for a, b in zip(tw.quantize_activation_triton(x, 128, "dynamic"), ref[mk]))
                   for mk, x in xs.items())
        for m in ms:
            cells = []
            for name, (n, k) in shapes.items():
                q = quant_only(m, k)
                op = bench_ours(m, n, k, "dynamic", two_level=True)
                cells.append(f"{name} quant {q:.1f} op {op:.1f}us x{fp16[(m, name)] / op:.2f}")
            print(f"budget {budget} warps {warp or 'default'} ({'same codes' if same else 'DIFFERENT codes'}) M={m}: "
                  + "; ".join(cells),
                  flush=True)
    tw.QUANT_MAX_PROGRAMS, tw.QUANT_WARPS = default, default_warps


if __name__ == "__main__":
    main()

"""The prefill op on the swap kernel with and without programmatic dependent launch (`triton_w4a8.SWAP_PDL`).

A W4A8 prefill op is two launches: the activation quantization, then the swap GEMM. With SWAP_PDL the GEMM is
launched as a programmatic dependent of the quantization kernel (which triggers it first thing), so its launch,
prologue and first ring slots' weight loads overlap the quantization; its loader waits (`griddepcontrol.wait`)
before the first activation load. For the LLaMA-2 linear shapes of `bench_gemm.SHAPES` (7B q/k/v and gate/up also
fused) and M rows, two-level groups of 128 (the W4A8 default), dynamic activations: both settings timed as ops in
CUDA graphs (`bench_gemm.bench_ours`: medians over replays, copies on their own weights), in the order off, on,
off, on (the best of each pair reported), with cuBLAS fp16 in the same run; the ratio to fp16 for each.
Correctness is the GPU test `test_gpu_swap_pdl` (bit for bit against the plain launch).

    PYTHONPATH=src python benchmarks/probe_swap_pdl.py [--ms 64,256,1024,4096] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import FUSED_SHAPES, SHAPES, bench_fp16, bench_ours  # noqa: E402

from fptq.kernels import gluon_fallback  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ms", default="64,256,1024,4096", help="activation rows")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    t0 = time.time()
    print("GPU", torch.cuda.get_device_name(), flush=True)
    installed, rows = tw.SWAP_PDL, []
    shapes = SHAPES + FUSED_SHAPES[:2]
    print(f"{'shape':>17} {'M':>5}  {'fp16':>8} {'plain':>8} {'PDL':>8}  ×fp16 plain / PDL   PDL gain")
    try:
        for m in (int(v) for v in args.ms.split(",")):
            for name, n, k in shapes:
                row = {"shape": name, "m": m, "n": n, "k": k, "fp16_us": bench_fp16(m, n, k), "off": [], "on": []}
                for pdl in (False, True, False, True):
                    tw.SWAP_PDL = pdl
                    row["on" if pdl else "off"].append(bench_ours(m, n, k, "dynamic", 128, two_level=True))
                off, on = min(row["off"]), min(row["on"])
                row.update(plain_us=off, pdl_us=on, gain=off / on)
                rows.append(row)
                print(f"{name:>17} {m:5d}  {row['fp16_us']:8.1f} {off:8.1f} {on:8.1f}  ×{row['fp16_us'] / off:.2f} / "
                      f"×{row['fp16_us'] / on:.2f}   ×{off / on:.3f}", flush=True)
    finally:
        tw.SWAP_PDL = installed
    failed = gluon_fallback.failed("swap")
    print(f"({time.time() - t0:.0f} s){' FAIL: the swap kernel fell back' if failed else ''}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "failed": failed, "rows": rows}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

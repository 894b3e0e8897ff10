"""Run 123: the swap kernel with 256-row weight tiles (WIDE: two 64-row blocks per consumer warpgroup, each activation
tile brought from L2 serving twice the weight rows) against the installed 128-row tiles, as ops with two-level groups
of 128 (CUDA graphs, `bench_gemm.time_graph`), cuBLAS fp16 in the same run, and whether both give the same outputs (one
int32 sum per output either way: bit for bit). The kernel is L2 -> SM bound (GPU_NOTES, run 116): 256 rows move a
third fewer bytes per multiply-add. (ptxas spills ~1 KB in the wide consumer at the kernel's register cap.)

    PYTHONPATH=src python3 benchmarks/probe_wide.py [--ms 1024,2048,4096] [--shapes 0,3] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import SHAPES, bench_fp16, bench_ours, make_layer  # noqa: E402

from fptq.kernels import gluon_prefill  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

WIDE = tw.PrefillConfig(128, 256, 4, 3, swap=True)


def _same(m: int, n: int, k: int) -> bool:
    qweight, scales, _, _, chan = make_layer(n, k, 128, True, two_level=True)
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    narrow = tw._prefill_config(m, n, gluon_prefill._sm_count(torch.cuda.current_device()))  # (wide=False: 128 rows)
    ys = [tw.w4a8_linear(x, qweight, scales, None, group_size=128, channel_scales=chan, config=cfg) for cfg in (narrow, WIDE)]
    return torch.equal(ys[0], ys[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", default="1024,2048,4096")
    ap.add_argument("--shapes", default="all", help="'all' or comma-separated indices into bench_gemm.SHAPES")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    shapes = SHAPES if args.shapes == "all" else [SHAPES[int(v)] for v in args.shapes.split(",")]
    rows, installed = [], tw.SWAP_WIDE
    tw.SWAP_WIDE = None  # the default dispatch's 128-row tiles as the baseline (WIDE is passed as a config)
    for name, n, k in shapes:
        for m in (int(v) for v in args.ms.split(",")):
            row = {"shape": name, "n": n, "k": k, "m": m, "fp16_us": bench_fp16(m, n, k),
                   "narrow_us": bench_ours(m, n, k, "dynamic", 128, two_level=True),
                   "wide_us": bench_ours(m, n, k, "dynamic", 128, WIDE, two_level=True),
                   "same": _same(m, n, k)}
            rows.append(row)
            f = row["fp16_us"]
            print(f"{name:12s} M={m:5d} fp16 {f:.1f}us  128 rows {row['narrow_us']:.1f} (x{f / row['narrow_us']:.2f})  "
                  f"256 rows {row['wide_us']:.1f} (x{f / row['wide_us']:.2f})  wide gain x{row['narrow_us'] / row['wide_us']:.3f}"
                  f"  same={row['same']}", flush=True)
    tw.SWAP_WIDE = installed
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()

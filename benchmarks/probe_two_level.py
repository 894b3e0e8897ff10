"""Run 97: the swap kernel with two-level scales (TL) by token tile at prefill M, next to cuBLAS fp16 / int8, the
default dispatch's tile (`triton_w4a8.swap_tile`) and per-channel weights (CUDA graphs, bench_gemm.time_graph,
same run). Where M = 1024 falls short of 1.2x fp16 (7B q/k/v/o, 7B down, 13B q/k/v/o), is it the tile?

    PYTHONPATH=src python3 benchmarks/probe_two_level.py [--ms 512,1024,2048] [--tiles] [--shapes 0,1,4]

Run 98: the group scales one slot ahead (TL2) against before the slot's own wait (TL1); the column named is the
schedule the default (`gluon_swap.TL_AHEAD`: TL2 from 8192 columns) does not take.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench_fp16, bench_int8, bench_ours  # noqa: E402

from fptq.kernels import gluon_swap as gs  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

SHAPES = [("7B q/k/v/o", 4096, 4096), ("7B down", 4096, 11008), ("13B q/k/v/o", 5120, 5120), ("7B gate+up", 22016, 4096),
          ("70B down", 8192, 28672)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", default="512,1024,2048")
    ap.add_argument("--tiles", action="store_true", help="also 64- and 128-token tiles forced (run 97)")
    ap.add_argument("--shapes", default="all", help="'all' or comma-separated indices into SHAPES (+ 70B down: 4)")
    args = ap.parse_args()
    tiles = {bm: tw.PrefillConfig(bm, 128, 4, 8 if bm == 64 else 6, swap=True) for bm in (64, 128)}
    shapes = SHAPES[:4] if args.shapes == "all" else [SHAPES[int(i)] for i in args.shapes.split(",")]
    for name, n, k in shapes:
        for m in (int(v) for v in args.ms.split(",")):
            fp16, int8 = bench_fp16(m, n, k), bench_int8(m, n, k)
            t = {"default": bench_ours(m, n, k, "dynamic", 128, two_level=True)}
            default, gs.TL_AHEAD = gs.TL_AHEAD, (1 << 30 if k >= gs.TL_AHEAD else 0)  # the other consumer-side schedule
            loader, gs.LOADER_SCALES = gs.LOADER_SCALES, False  # (not the loader's copies of the scales, TL 4)
            t[f"TL{1 if k >= default else 2}"] = bench_ours(m, n, k, "dynamic", 128, two_level=True)
            gs.TL_AHEAD, gs.LOADER_SCALES = default, loader
            if args.tiles:
                for bm, cfg in tiles.items():
                    t[f"bm{bm}"] = bench_ours(m, n, k, "dynamic", 128, cfg, two_level=True)
            t["per-channel"] = bench_ours(m, n, k, "dynamic", k)
            t["g128 fp16 scales"] = bench_ours(m, n, k, "dynamic", 128)
            pick = tw.swap_tile(m, n, 132).block_m
            cols = "  ".join(f"{key} {v:.1f}us x{fp16 / v:.2f}" for key, v in t.items())
            print(f"{name:12s} M={m:5d} fp16 {fp16:.1f}us int8 {int8:.1f}us (swap_tile: bm{pick})  {cols}", flush=True)


if __name__ == "__main__":
    main()

"""Run 104: how many programs the M <= 16 decode GEMM launches (the split-K count), its TMA ring depth and tile width.

M = 1 / 16 ops (activation quantization + the Gluon TMA decode GEMM, CUDA graphs, `bench_gemm.time_graph`) on
LLaMA-2-7B / 70B linear shapes, groups of 128: `triton_w4a8.TMA_TARGET_PROGRAMS` {132, 264, 396, 528} x ring depth
{3, 4, 6} at 64-row tiles and depth {3, 4} x {132, 264} at 128-row tiles, up to 128 staged groups per program; the
installed default and cuBLAS fp16 in the same run. (Run 103's version of this probe also timed where the kernel
stages its group scales: `gluon_decode.STAGING`, since removed — ±3 %, GPU_NOTES.)

    PYTHONPATH=src python3 benchmarks/probe_decode_split.py
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench_fp16, bench_ours  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402

SHAPES = [("7B qkv", 12288, 4096), ("7B o", 4096, 4096), ("7B gate+up", 22016, 4096), ("7B down", 4096, 11008),
          ("70B gate/up", 28672, 8192), ("70B down", 8192, 28672)]


def main() -> None:
    print("GPU", torch.cuda.get_device_name(), flush=True)
    default_target, default_groups = tw.TMA_TARGET_PROGRAMS, tw.TMA_MAX_GROUPS
    configs = [(64, s, t) for s in (3, 4, 6) for t in (132, 264, 396, 528)] + [(128, s, t) for s in (3, 4) for t in (132, 264)]
    for m in (1, 16):
        for name, n, k in SHAPES:
            row = {"fp16": bench_fp16(m, n, k), "default": bench_ours(m, n, k, "dynamic", 128)}
            tw.TMA_MAX_GROUPS = 128
            for bn, stages, target in configs:
                tw.TMA_TARGET_PROGRAMS = target
                cfg = tw.KernelConfig(16, bn, 4, 3, split_k=16, tma_stages=stages)
                split = tw._split_k(cfg, m, n, -(-k // 128), tma=True)
                groups = tw._groups_per_program(k, 128, split, 128)
                row[f"bn{bn} s{stages} t{target} (split {split}{', triton' if groups > 128 else ''})"] = bench_ours(
                    m, n, k, "dynamic", 128, cfg)
            tw.TMA_MAX_GROUPS, tw.TMA_TARGET_PROGRAMS = default_groups, default_target
            best = min((v, key) for key, v in row.items() if key != "fp16")
            print(f"M={m} {name} ({n}x{k}): best {best[1]} {best[0]:.1f}us x{row['fp16'] / best[0]:.2f} fp16; " + "; ".join(
                f"{key} {us:.1f}" for key, us in row.items()), flush=True)


if __name__ == "__main__":
    main()

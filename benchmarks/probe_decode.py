"""Run 34: what limits the M = 1 decode GEMMs? Same shapes, CUDA-graph timing (bench_gemm.time_graph):
the Triton and Gluon-TMA kernels with group-128 scales and per-channel scales (one scale load per
program instead of one per K step and column), the same bytes streamed by a torch reduction (the
floor of a plain read on this card), and cuBLAS fp16.

    PYTHONPATH=src python3 benchmarks/probe_decode.py
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench_fp16, bench_ours, time_graph  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402

SHAPES = [("70B gate/up", 28672, 8192), ("7B gate+up fused", 22016, 4096), ("7B down", 4096, 11008),
          ("7B qkv/o", 4096, 4096)]
CONFIGS = {"triton": tw.KernelConfig(16, 64, 4, 3, split_k=8),
           "tma s4": tw.KernelConfig(16, 64, 4, 3, split_k=8, tma_stages=4)}


def stream(n, k):
    def make(copies):
        ws = [torch.randint(0, 255, (n, k // 2), dtype=torch.uint8, device="cuda").view(torch.int64) for _ in range(copies)]
        return [lambda w=w: w.sum() for w in ws]

    return time_graph(make, n * k // 2)


def main() -> None:
    print("GPU", torch.cuda.get_device_name(), flush=True)
    for name, n, k in SHAPES:
        mb = n * k / 2 / 1e6
        row = {"read floor (torch sum)": stream(n, k), "fp16 cuBLAS": bench_fp16(1, n, k)}
        for label, cfg in CONFIGS.items():
            row[f"{label} g128"] = bench_ours(1, n, k, "dynamic", 128, cfg)
            row[f"{label} per-channel"] = bench_ours(1, n, k, "dynamic", k, cfg)
        print(f"{name} ({n}x{k}, {mb:.1f} MB int4): " + "; ".join(
            f"{key} {us:.1f}us ({mb / us:.2f} TB/s)" for key, us in row.items()), flush=True)


if __name__ == "__main__":
    main()

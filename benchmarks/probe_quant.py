"""Runs 43-44: the activation-quantization kernel alone at M = 1 (CUDA graphs, bench_gemm.time_graph),
by columns per program (a row split over programs; 0: one program per row) and warps per program,
and the decode op (quantization + GEMM) at two 7B shapes with each.

    PYTHONPATH=src python3 benchmarks/probe_quant.py
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench_ours, time_graph  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402


def quant_only(m, k):
    def make(copies):
        xs = [torch.randn(m, k, device="cuda", dtype=torch.float16) for _ in range(copies)]
        return [lambda x=x: tw.quantize_activation_triton(x, 128, "dynamic") for x in xs]

    return time_graph(make, m * k * 3)


def main() -> None:
    print("GPU", torch.cuda.get_device_name(), flush=True)
    for cols, warps in ((0, None), (1024, None), (512, None), (2048, None), (1024, 4), (512, 4)):
        tw.QUANT_PART_COLS, tw.QUANT_WARPS = cols, warps
        row = {f"quant K={k}": quant_only(1, k) for k in (4096, 11008, 28672)}
        row["op 4096x11008"] = bench_ours(1, 4096, 11008, "dynamic")
        row["op 22016x4096"] = bench_ours(1, 22016, 4096, "dynamic")
        row["op 4096x4096"] = bench_ours(1, 4096, 4096, "dynamic")
        print(f"part cols {cols} warps {warps}: " + "; ".join(f"{key} {us:.2f}us" for key, us in row.items()), flush=True)


if __name__ == "__main__":
    main()

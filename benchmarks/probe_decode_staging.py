"""Run 103: where the decode kernel stages its group scales, and how many programs it launches.

M = 1 / 16 ops (activation quantization + the Gluon TMA decode GEMM, CUDA graphs, `bench_gemm.time_graph`) on
LLaMA-2-7B / 70B linear shapes, groups of 128: `gluon_decode.STAGING` 0 (scales staged before the activation loads
are issued), 1 (after), 2 (not at all: a timing bound, wrong results), per-channel weights, and
`triton_w4a8.DECODE_TARGET_PROGRAMS` at half / double its default; cuBLAS fp16 in the same run. First checks that
STAGING 1 gives the same output bits as 0.

    PYTHONPATH=src python3 benchmarks/probe_decode_staging.py
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench_fp16, bench_ours, make_layer  # noqa: E402

from fptq.kernels import gluon_decode  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

SHAPES = [("7B qkv", 12288, 4096), ("7B o", 4096, 4096), ("7B gate+up", 22016, 4096), ("7B down", 4096, 11008),
          ("70B gate/up", 28672, 8192), ("70B down", 8192, 28672)]


def same_bits() -> None:
    for m, n, k in ((1, 4096, 11008), (16, 12288, 4096), (3, 22016, 4096)):
        qweight, scales, _, _ = make_layer(n, k, 128, True)[:4]
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)
        outs = []
        for st in (0, 1):
            gluon_decode.STAGING = st
            outs.append(tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode="dynamic"))
        gluon_decode.STAGING = 0
        print(f"same bits STAGING 0 / 1 at {m}x{n}x{k}: {torch.equal(outs[0], outs[1])}", flush=True)


def main() -> None:
    print("GPU", torch.cuda.get_device_name(), flush=True)
    same_bits()
    target = tw.DECODE_TARGET_PROGRAMS
    for m in (1, 16):
        for name, n, k in SHAPES:
            row = {"fp16": bench_fp16(m, n, k)}
            for st in (0, 1, 2):
                gluon_decode.STAGING = st
                row[f"st{st}"] = bench_ours(m, n, k, "dynamic", 128)
            gluon_decode.STAGING = 0
            row["per-ch"] = bench_ours(m, n, k, "dynamic", k)
            gluon_decode.STAGING = 1
            for t in (target // 2, target * 2):
                tw.DECODE_TARGET_PROGRAMS = t
                row[f"st1 t{t}"] = bench_ours(m, n, k, "dynamic", 128)
            tw.DECODE_TARGET_PROGRAMS = target
            gluon_decode.STAGING = 0
            mb = n * k / 2 / 1e6
            print(f"M={m} {name} ({n}x{k}): " + "; ".join(
                f"{key} {us:.1f}us (x{row['fp16'] / us:.2f}, {mb / us:.2f} TB/s)" for key, us in row.items()), flush=True)


def sweep() -> None:
    """Run 104: programs per launch (`DECODE_TARGET_PROGRAMS`, i.e. the split-K count) x ring depth x tile width,
    STAGING 1, up to 128 staged groups per program; the installed default and fp16 in the same run."""
    print("GPU", torch.cuda.get_device_name(), flush=True)
    default_target = tw.DECODE_TARGET_PROGRAMS
    configs = [(64, s, t) for s in (3, 4, 6) for t in (132, 264, 396, 528)] + [(128, s, t) for s in (3, 4) for t in (132, 264)]
    for m in (1, 16):
        for name, n, k in SHAPES:
            row = {"fp16": bench_fp16(m, n, k), "default": bench_ours(m, n, k, "dynamic", 128)}
            gluon_decode.STAGING, tw.TMA_MAX_GROUPS = 1, 128
            for bn, stages, target in configs:
                tw.DECODE_TARGET_PROGRAMS = target
                cfg = tw.KernelConfig(16, bn, 4, 3, split_k=16, tma_stages=stages)
                split = tw._split_k(cfg, m, n, -(-k // 128))
                groups = tw._groups_per_program(k, 128, split, 128)
                row[f"bn{bn} s{stages} t{target} (split {split}{', triton' if groups > 128 else ''})"] = bench_ours(
                    m, n, k, "dynamic", 128, cfg)
            gluon_decode.STAGING, tw.TMA_MAX_GROUPS, tw.DECODE_TARGET_PROGRAMS = 0, 64, default_target
            best = min((v, key) for key, v in row.items() if key != "fp16")
            print(f"M={m} {name} ({n}x{k}): best {best[1]} {best[0]:.1f}us x{row['fp16'] / best[0]:.2f} fp16; " + "; ".join(
                f"{key} {us:.1f}" for key, us in row.items()), flush=True)


if __name__ == "__main__":
    sweep() if "--sweep" in sys.argv else main()

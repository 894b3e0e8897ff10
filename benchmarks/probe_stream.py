"""Run 91: the persistent stream-K decode kernel (`gluon_stream`) against the per-program Gluon TMA kernel (the
installed default) and cuBLAS fp16, whole ops (activation quantization + GEMM) at M <= 16, CUDA-graph medians
(bench_gemm.time_graph: enough weight copies to defeat the L2), same run.

    PYTHONPATH=src python3 benchmarks/probe_stream.py [--ms 1,16] [--variants default,bn128s16,bn64s24,bn128s16c2]

Variant labels: 'default' (STREAM_DECODE off), 'bn<rows>s<stages>[c<ctas per SM>][r<max registers>]' (a
`StreamConfig`; run 91's c2 without r fitted one CTA per SM by registers).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import SHAPES, bench_fp16, bench_ours, make_layer, time_graph  # noqa: E402

from fptq.kernels import gluon_stream  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402
from fptq.kernels.gluon_stream import StreamConfig  # noqa: E402
from fptq.kernels.triton_prefill import _shared_memory  # noqa: E402

FUSED = [("7B q/k/v fused", 12288, 4096), ("7B gate+up fused", 22016, 4096)]


def variant(label: str) -> StreamConfig | None:
    if label == "default":
        return None
    bn, st, ctas, regs = re.fullmatch(r"bn(\d+)s(\d+)(?:c(\d+))?(?:r(\d+))?t?", label).groups()
    return StreamConfig(int(bn), int(st), int(ctas or 1), int(regs) if regs else None)


def tiled_op(x, qweight, scales, group, cfg):
    """The op with the weights in `gluon_stream.tiled_weights`' tile-contiguous order (label suffix 't'): returns a
    closure that quantizes x and runs the stream kernel on that copy."""
    m, k = x.shape
    n, sub = qweight.shape[0], tw._sub_chunk(group)
    tiled = gluon_stream.tiled_weights(qweight, k, cfg.block_n, sub)
    grid = gluon_stream.grid_size(m, n, k, sub, cfg, tw._sms(x))
    pdl = tw._pdl_available(x)

    def call():
        ws = gluon_stream.workspace(m, n, grid, cfg, x.device)
        a, sx, sx_mode = tw._quantized_operand(x, group, "dynamic", None, pdl, ws[1])
        out = torch.empty(m, n, dtype=x.dtype, device=x.device)
        return gluon_stream.stream_gemm(a, tiled, scales, sx, sx_mode, None, out, k, group, sub, cfg, grid, ws, pdl,
                                        _shared_memory(a), tiled=tiled, n=n)

    return call


def bench_tiled(m, n, k, group, cfg):
    def make(copies):
        calls = []
        for _ in range(copies):
            qweight, scales, _, _ = make_layer(n, k, group, True)
            calls.append(tiled_op(torch.randn(m, k, device="cuda", dtype=torch.float16), qweight, scales, group, cfg))
        return calls

    return time_graph(make, n * k // 2 + n * (k // group) * 2 + m * k * 2 + m * n * 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", default="1,16")
    ap.add_argument("--variants", default="default,bn128s16,bn64s24,bn128s8c2")
    ap.add_argument("--group", type=int, default=128)
    args = ap.parse_args()
    labels = args.variants.split(",")
    shapes = [(name, n, k) for name, n, k in SHAPES] + FUSED
    print("GPU", torch.cuda.get_device_name(), flush=True)
    for name, n, k in shapes[:1] + FUSED[1:]:  # each variant against the default on the same operands
        qweight, scales, _, bias = make_layer(n, k, args.group, True)
        for m in (1, 5, 16):
            x = torch.randn(m, k, device="cuda", dtype=torch.float16)
            tw.STREAM_DECODE = None
            ref = tw.w4a8_linear(x, qweight, scales, None, group_size=args.group, act_mode="dynamic").float()
            for label in labels[1:]:
                tw.STREAM_DECODE = variant(label)
                if label.startswith("bn") and label.endswith("t"):
                    y = tiled_op(x, qweight, scales, args.group, variant(label))().float()
                else:
                    y = tw.w4a8_linear(x, qweight, scales, None, group_size=args.group, act_mode="dynamic").float()
                err = ((y - ref).norm() / ref.norm()).item()
                print(f"check {label} {name} M={m}: rel diff vs default {err:.2e}", flush=True)
    tw.STREAM_DECODE = None
    for m in map(int, args.ms.split(",")):
        for name, n, k in shapes:
            fp16 = bench_fp16(m, n, k)
            times = {}
            for label in labels:
                tw.STREAM_DECODE = variant(label)
                if label.startswith("bn") and label.endswith("t"):
                    times[label] = bench_tiled(m, n, k, args.group, variant(label))
                else:
                    times[label] = bench_ours(m, n, k, "dynamic", args.group)
            tw.STREAM_DECODE = None
            gb = (n * k // 2 + n * (k // args.group) * 2) / 1e3  # weight + scale bytes, in units for TB/s at µs
            print(f"M={m} {name} ({n}x{k}): fp16 {fp16:.1f}us | "
                  + "; ".join(f"{lab} {t:.1f} x{fp16 / t:.2f} {gb / t / 1e3:.2f}TB/s" for lab, t in times.items()), flush=True)


if __name__ == "__main__":
    main()

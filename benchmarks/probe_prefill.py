"""Run 47: the warp-specialized Gluon prefill GEMM (`gluon_prefill`) against the installed Triton
kernel of the unpacked path, the GEMM kernels alone (operands already quantized / unpacked) and
the whole op, next to cuBLAS fp16 and int8 (CUDA graphs, bench_gemm.time_graph, same run).

    PYTHONPATH=src python3 benchmarks/probe_prefill.py [--ms 1024,4096] [--variants ws128x128s4,...]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench_fp16, bench_int8, bench_ours, time_graph  # noqa: E402

from fptq.kernels import gluon_prefill as gp  # noqa: E402
from fptq.kernels import gluon_swap as gs  # noqa: E402
from fptq.kernels import triton_prefill as tp  # noqa: E402
from fptq.kernels.gluon_prefill import ws_gemm, ws_rows  # noqa: E402
from fptq.kernels.gluon_swap import swap_gemm  # noqa: E402
from fptq.packing import pack_int4  # noqa: E402

SHAPES = [("7B q/k/v/o", 4096, 4096), ("7B gate+up", 22016, 4096), ("7B down", 4096, 11008),
          ("70B gate/up", 28672, 8192)]
LONG_K = [("70B down", 8192, 28672), ("13B down", 5120, 13824)]  # (`--long-k`: K > 16384 and a 13B one)


_SETTINGS = {gp: ("K_PER_SLOT", "FUSED_UNPACK", "FUSED_MAX_M", "LAG_SCALING"),
             gs: ("K_PER_SLOT", "LAG_SCALING", "PREFETCH_WEIGHTS", "GROUP_SUMS", "DIRECT_SCALES")}
_DEFAULTS = [(mod, name, getattr(mod, name)) for mod, names in _SETTINGS.items() for name in names]


def _reset() -> None:
    """`gluon_prefill`'s and `gluon_swap`'s settings back to their defaults."""
    for mod, name, value in _DEFAULTS:
        setattr(mod, name, value)


def variant(label: str) -> tp.PrefillConfig | None:
    """'default' (what w4a8_linear picks by itself), 'triton' (the Triton kernel's tiles), 'sw<BM>s<stages>'
    (the packed weights as wgmma's register operand, `gluon_swap`, BM tokens per tile; k<n>: n K steps per ring
    slot; l: each step scaled under the next one's wgmma; p: a slot's next step's weights unpacked under the
    current wgmma; g: one scaling per group of 256 / per channel; d: the scales read from global memory by the
    consumers at every M, no scale-row copy; without d at no M) or
    'ws<BM>x<BN>s<stages>[u][k<n>][p][f]' (the warp-specialized Gluon kernel; u: after a separate unpack
    pass, else unpacking in the kernel at every M; k<n>: n K steps per ring slot; p: each step scaled right
    after its own MMA, not under the next one's; f: float8 e4m3
    operands, the W4A8-FP8 path). Sets `gluon_prefill`'s K_PER_SLOT / FUSED_UNPACK / FUSED_MAX_M /
    LAG_SCALING (back to their defaults for 'default' and 'triton'); for 'sw…' `gluon_swap`'s K_PER_SLOT,
    LAG_SCALING, PREFETCH_WEIGHTS and GROUP_SUMS from the label (so 'sw128s6k2' is not the installed kernel since
    run 82: that is 'sw128s6k2p', with 'g' per channel / groups of 256). Run 65 also had fp16 scale rows ('h'),
    run 76 permuted scale rows ('v').
    Runs 48-49 also had ping-pong and slot-release variants, since folded or removed."""
    _reset()
    if label == "default":
        return None
    if label == "triton":
        return tp.PrefillConfig()
    if label.startswith("sw"):
        flags = label[len(label.rstrip("lpgd")):]
        gs.LAG_SCALING, gs.PREFETCH_WEIGHTS, gs.GROUP_SUMS = ("l" in flags), ("p" in flags), ("g" in flags)
        gs.DIRECT_SCALES = 1 << 30 if "d" in flags else 0  # (a row bound: every M, or none)
        bm, rest = label[2:].rstrip("lpgd").split("s")
        st, _, ksub = rest.partition("k")
        gs.K_PER_SLOT = int(ksub or 1)
        return tp.PrefillConfig(int(bm), 128, 4, int(st), swap=True)
    gp.LAG_SCALING = "p" not in label[2:]
    label, _, ksub = label.rstrip("pf").partition("k")
    gp.K_PER_SLOT = int(ksub or 1)
    gp.FUSED_UNPACK = not label.endswith("u")
    gp.FUSED_MAX_M = 1 << 30
    bm, rest = label[2:].rstrip("u").split("x")
    bn, st = rest.split("s")
    return tp.PrefillConfig(int(bm), int(bn), 4, int(st), ws=True)


def operands(m, n, k, group=128):
    """int8 activations, int4 codes as the packed weight and as the unpacked `code - 8` operand (in the
    permuted column order of the kernels: per 128 columns, the low nibbles then the high ones)."""
    a = torch.randint(-127, 128, (m, k), device="cuda", dtype=torch.int8)
    codes = torch.randint(0, 16, (n, k), device="cuda", dtype=torch.uint8)
    packed = pack_int4(codes)
    b = (codes.to(torch.int8) - 8).view(n, k // 128, 64, 2).transpose(2, 3).reshape(n, k)
    scales = (torch.rand(n, k // group, device="cuda") * 1e-3 + 1e-4).half()
    sx = torch.rand(m, device="cuda") * 1e-2
    return a, (b, packed), scales, sx


def run_kernel(cfg, a, b, scales, sx, out, group=128, sub=128):
    stages = max(1, min(cfg.num_stages, (tp._shared_memory(a) - (8 << 10)) //
                        ((cfg.block_m + cfg.block_n) * sub + (cfg.block_n * 4 if cfg.ws else 0))))
    b, packed = b
    if cfg.swap:
        swap_gemm(a, packed, scales, sx, 2, None, out, group, cfg.block_m, cfg.num_stages, cfg.group_m)
    elif cfg.ws and gp.FUSED_UNPACK and a.shape[0] <= gp.FUSED_MAX_M and a.dtype == torch.int8:
        stages = max(1, min(cfg.num_stages, (tp._shared_memory(a) - (8 << 10)) //
                            ((cfg.block_m + cfg.block_n) * sub + cfg.block_n * 4 + cfg.block_n * sub // 2)))
        ws_gemm(a, packed, ws_rows(scales), sx, 2, None, out, group, sub, cfg.block_n, stages, cfg.group_m, fused=True)
    elif cfg.ws:
        ws_gemm(a, b, ws_rows(scales), sx, 2, None, out, group, sub, cfg.block_n, stages, cfg.group_m)
    else:
        tp._gemm(a, b, scales, sx, 2, None, out, a.shape[1], group, sub, tp.KIND_INT8, cfg, stages)
    return out


def kernel_only(cfg, m, n, k, fp8=False, group=128):
    def make(copies):
        calls = []
        for _ in range(copies):
            a, b, scales, sx = operands(m, n, k, group)
            if fp8:  # e4m3 activations, the int4 codes - 8 as e4m3 (exact); sx unused by the kernel's fp8 path
                a, b = a.to(torch.float8_e4m3fn), (b[0].to(torch.float8_e4m3fn), None)
            out = torch.empty(m, n, device="cuda", dtype=torch.float16)
            calls.append(lambda a=a, b=b, s=scales, sx=sx, o=out: run_kernel(cfg, a, b, s, sx, o, group))
        return calls

    return time_graph(make, m * k + n * k + m * n * 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", default="1024,4096")
    ap.add_argument("--variants", default="default,triton,ws128x128s6uk2,ws128x128s5k2")
    ap.add_argument("--no-kernel", action="store_true", help="time the whole op only")
    ap.add_argument("--group", type=int, default=128, help="weight group size (-1: per channel)")
    ap.add_argument("--long-k", action="store_true", help="time the 70B down (K = 28672) and 13B down shapes instead")
    args = ap.parse_args()
    shapes = LONG_K if args.long_k else SHAPES
    labels = args.variants.split(",")
    print("GPU", torch.cuda.get_device_name(), flush=True)
    # correctness of each variant against the Triton kernel on the same operands (both exact up to fp32 order)
    for name, n, k in shapes if args.long_k else shapes[:1] + shapes[2:3]:
        group = k if args.group == -1 else args.group
        a, b, scales, sx = operands(1000, n, k, group)
        ref = run_kernel(variant("triton"), a, b, scales, sx, torch.empty(1000, n, device="cuda", dtype=torch.float16), group)
        for label in labels:
            if label in ("triton", "default") or label.endswith("f"):  # (fp8: the GPU tests check it)
                continue
            out = torch.full((1000, n), float("nan"), device="cuda", dtype=torch.float16)
            y = run_kernel(variant(label), a, b, scales, sx, out, group)
            err = ((y.float() - ref.float()).norm() / ref.float().norm()).item()
            print(f"check {label} {name}: rel diff vs triton {err:.2e}", flush=True)
    for m in map(int, args.ms.split(",")):
        for name, n, k in shapes:
            group = k if args.group == -1 else args.group
            fp16, int8 = bench_fp16(m, n, k), bench_int8(m, n, k)
            kern = {} if args.no_kernel else {label: kernel_only(variant(label), m, n, k, label.endswith("f"), group)
                                              for label in labels if label != "default"}
            _reset()
            op = {label: bench_ours(m, n, k, "dynamic", group, config=variant(label), fp8=label.endswith("f")) for label in labels}
            _reset()
            print(f"M={m} {name} ({n}x{k}): fp16 {fp16:.1f}us int8 {int8:.1f} (x{fp16 / int8:.2f}) | kernel "
                  + "; ".join(f"{lab} {t:.1f} x{fp16 / t:.2f}" for lab, t in kern.items()) + " | op "
                  + "; ".join(f"{lab} {t:.1f} x{fp16 / t:.2f}" for lab, t in op.items()), flush=True)


if __name__ == "__main__":
    main()

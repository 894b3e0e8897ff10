"""Host (CPU) cost of the prefill ops, layer by layer down the call chain, at the LLaMA-2-7B shapes (two-level
groups of 128, 2048 rows): microseconds of host time per call (50 calls enqueued back to back, unsynchronized)
of
- `eager`: `w4a8_linear` on fp16 activations (quantization launch + GEMM; what the eager model runs),
- `op`: `torch.ops.fptq.w4a8_gemm` on quantized activations (what a compiled model runs above 16 rows),
- `prefill`: `triton_w4a8._prefill` (the op without the custom-op dispatch),
- `swap`: `gluon_swap.swap_gemm` with the config `_prefill` picks (no dispatch, no config choice),
- `quant`: `quantize_activation_triton` alone, and `empty`: a Triton kernel with one argument;
with each op's GPU time (CUDA events over the same 50 calls, after a sync) beside it, and a cProfile of the `op`
calls sorted by own time. Run 128: a compiled 2048-token prefill enqueued its ~600 launches in 28-30 ms of host
time against 41 ms of GPU time (fp16: 15 of 54 ms); the slow mode of runs 124-127 (51-57 ms) would be the host
falling behind.

    PYTHONPATH=src python3 benchmarks/probe_host.py [--json F]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time

import torch
import triton
import triton.language as tl

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import make_layer  # noqa: E402

from fptq.kernels import gluon_swap  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

SHAPES = {"qkv": (12288, 4096), "o": (4096, 4096), "gate_up": (22016, 4096), "down": (4096, 11008)}


@triton.jit
def _empty(x_ptr):
    tl.store(x_ptr, 1.0)


def host_us(fn, calls=50):
    """(host µs per call enqueued, GPU µs per call) over `calls` back-to-back calls."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    t1 = time.perf_counter()
    b.record()
    b.synchronize()
    return 1e6 * (t1 - t0) / calls, 1e3 * a.elapsed_time(b) / calls


def _cases(m: int, n: int, k: int, g: int) -> dict:
    """The calls timed for one (n, k) layer, each a closure over its own operands."""
    qweight, scales, _, _, chan = make_layer(n, k, g, True, two_level=True)
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    a, sx = tw.quantize_activation_triton(x, g, "dynamic")
    out = torch.empty(m, n, device="cuda", dtype=torch.float16)
    cfg = tw._prefill_config(m, n, tw._sms(a), tw.SWAP_WIDE_MIN_M <= m)
    return {
        "eager": lambda: tw.w4a8_linear(x, qweight, scales, None, group_size=g, channel_scales=chan),
        "op": lambda: torch.ops.fptq.w4a8_gemm(a, sx, qweight, scales, None, None, k, g, 2, torch.float16, chan),
        "prefill": lambda: tw._prefill(a, sx, 2, qweight, scales, None, None, k, g, torch.float16, None, out, chan),
        "swap": lambda: gluon_swap.swap_gemm(a, qweight, scales, sx, 2, None, out, g, cfg.block_m, cfg.num_stages,
                                             cfg.group_m, chan, cfg.block_n),
        "quant": lambda: tw.quantize_activation_triton(x, g, "dynamic"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=2048)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    m, g = args.m, 128
    results = []
    flag = torch.zeros(1, device="cuda")
    h, d = host_us(lambda: _empty[(1,)](flag))
    print(f"empty Triton kernel: host {h:.1f} µs/call (GPU {d:.1f})", flush=True)
    results.append({"case": "empty", "host_us": h, "gpu_us": d})
    for name, (n, k) in SHAPES.items():
        cases = _cases(m, n, k, g)
        line = []
        for case, fn in cases.items():
            h, d = host_us(fn)
            results.append({"case": case, "shape": name, "m": m, "n": n, "k": k, "host_us": h, "gpu_us": d})
            line.append(f"{case} {h:.1f} ({d:.0f})")
        print(f"{name:8s} {n}x{k} M={m}: host µs/call (GPU µs): " + ", ".join(line), flush=True)
        if name == "o":
            pr = cProfile.Profile()
            pr.enable()
            for _ in range(50):
                cases["op"]()
            pr.disable()
            torch.cuda.synchronize()
            s = io.StringIO()
            pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(30)
            print(s.getvalue(), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

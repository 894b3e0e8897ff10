"""Host (Python) cost of an eager `QuantLinear` call on the CUDA path, measured on a machine without a GPU.

Eager decode is host bound: a W4A8 linear at M = 1 costs the H100 machine's CPU ~75-200 µs of Python and launch
against ~15 µs for fp16's cuBLAS call (benchmarks/GPU_NOTES.md, runs 132-134), so uncompiled `generate` loses to fp16.
This probe runs the same Python with the GPU stood in for: CPU tensors, the device's capability reported as Hopper
(9, 0), the kept split-K counters as a CPU buffer, and each Triton / Gluon kernel's `run` replaced by a stand-in that
returns a compiled kernel whose launch does nothing — so `fptq.kernels.launch`'s short path, the keys, the TMA
descriptors and every check run as on the GPU, and the time is everything but the driver's launch (~5-10 µs on
the H100 machine) and the CUDA caching allocator (CPU `torch.empty` here instead). This machine's CPU is faster
than the H100 machine's (~2-4×): compare variants in one run, not with GPU-side numbers.

    PYTHONPATH=src python3 benchmarks/probe_host_cpu.py [--calls N] [--profile] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

os.environ["FPTQ_KERNEL"] = "triton"  # QuantLinear -> the Triton backend although the tensors live on the CPU

from fptq.kernels import gluon_decode, launch, scratch, triton_prefill  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402
from fptq.nn.quant_linear import QuantLinear  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from probe_host import own_time_profile  # noqa: E402

SHAPES = {"q/k/v": (12288, 4096), "o": (4096, 4096), "gate+up": (22016, 4096), "down": (4096, 11008)}
_CUDA = torch.device("cuda", 0)


class _Compiled:
    """A compiled kernel whose launch does nothing (what `launch` keeps and calls as `compiled[grid](*args)`)."""

    run = None

    def __getitem__(self, grid):
        return lambda *args: None


def stand_in_gpu() -> None:
    """Patch the device queries and kernel launches of the CUDA path (see the module docstring)."""
    hopper = lambda index: (9, 0)  # noqa: E731
    tw._capability = triton_prefill._capability = hopper
    torch.cuda.current_device = lambda: 0
    tw._pdl_available = lambda x: tw.USE_PDL
    real_tma_capable = tw._tma_capable
    tw._tma_capable = lambda cfg, device, *rest: real_tma_capable(cfg, _CUDA, *rest)
    counters = torch.zeros(tw.FUSED_COUNTERS, dtype=torch.int32)
    scratch.kept_zeros = lambda name, numel, device: counters if numel <= counters.numel() else None
    compiled = _Compiled()
    for kernel in (gluon_decode._decode_tma_kernel, tw._act_quant_kernel, tw._w4a8_kernel):
        kernel.run = lambda *args, **kwargs: compiled


def layer(n: int, k: int, group: int, scale_format: str) -> QuantLinear:
    return QuantLinear(k, n, group_size=group, scale_format=scale_format, act_mode="dynamic", dtype=torch.float16).eval()


def time_calls(fn, calls: int) -> float:
    """µs per call (best of 5 rounds of `calls` calls)."""
    for _ in range(20):
        fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return 1e6 * best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rows", default="1,16", help="token rows per call (M)")
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--scale-format", default="two-level", choices=["fp16", "two-level"])
    ap.add_argument("--profile", action="store_true", help="cProfile the o projection's calls at the first M")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    stand_in_gpu()
    rows = [int(m) for m in args.rows.split(",")]
    results = {}
    print(f"{'layer':>8} " + " ".join(f"{'M=' + str(m):>10}" for m in rows) + "   (host µs per QuantLinear call)")
    with torch.no_grad():
        for name, (n, k) in SHAPES.items():
            mod = layer(n, k, args.group, args.scale_format)
            row = {}
            for m in rows:
                x = torch.randn(m, 1, k, dtype=torch.float16)
                row[m] = time_calls(lambda mod=mod, x=x: mod(x), args.calls)
            results[name] = row
            print(f"{name:>8} " + " ".join(f"{row[m]:10.1f}" for m in rows))
        if args.profile:
            n, k = SHAPES["o"]
            mod, x = layer(n, k, args.group, args.scale_format), torch.randn(rows[0], 1, k, dtype=torch.float16)
            print(own_time_profile(lambda: mod(x), args.calls, 25))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "us_per_call": results, "short_launch": launch.ENABLED}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

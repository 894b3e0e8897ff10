"""Host (CPU) cost of the prefill ops, layer by layer down the call chain, at the LLaMA-2-7B shapes (two-level
groups of 128, 2048 rows): microseconds of host time per call (50 calls enqueued back to back, unsynchronized)
of
- `eager`: `w4a8_linear` on fp16 activations (quantization launch + GEMM; what the eager model runs),
- `op`: `torch.ops.fptq.w4a8_gemm` on quantized activations (what a compiled model runs above 16 rows),
- `prefill`: `triton_w4a8._prefill` (the op without the custom-op dispatch),
- `swap`: `gluon_swap.swap_gemm` with the config `_prefill` picks (no dispatch, no config choice),
- `quant`: `quantize_activation_triton` alone, and `empty`: a Triton kernel with one argument;
with each op's GPU time (CUDA events over the same 50 calls, after a sync) beside it, through Triton's launch path and
through `fptq.kernels.launch`'s short one; a cProfile of the `op` calls sorted by own time; the launch split of
`launch_split` and the dispatch costs of a trivial op. Run 128: a compiled 2048-token prefill enqueued its ~600 launches in 28-30 ms of host
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

from fptq.kernels import gluon_swap, launch  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

SHAPES = {"qkv": (12288, 4096), "o": (4096, 4096), "gate_up": (22016, 4096), "down": (4096, 11008)}


@triton.jit
def _empty(x_ptr):
    tl.store(x_ptr, 1.0)


def own_time_profile(fn, calls: int, rows: int = 30) -> str:
    """cProfile of `calls` calls of `fn` (then a CUDA sync, outside the profile), its `rows` functions of most own
    time, as text."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(rows)
    return text.getvalue()


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
        "op_body": lambda: tw._w4a8_gemm_op(a, sx, qweight, scales, None, None, k, g, 2, torch.float16, chan),
        "prefill": lambda: tw._prefill(a, sx, 2, qweight, scales, None, None, k, g, torch.float16, None, out, chan),
        "swap": lambda: gluon_swap.swap_gemm(a, qweight, scales, sx, 2, None, out, g, cfg.block_m, cfg.num_stages,
                                             cfg.group_m, chan, cfg.block_n),
        "quant": lambda: tw.quantize_activation_triton(x, g, "dynamic"),
    }


class _Spy:
    """Stands in for a Triton kernel object: records the last launch's grid, arguments and compiled kernel."""

    def __init__(self, kernel):
        self.kernel, self.last = kernel, None

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            compiled = self.kernel[grid](*args, **kwargs)
            self.last = (grid, args, kwargs, compiled)
            return compiled

        return launch


def launch_split(m: int, n: int, k: int, g: int) -> dict:  # (with launch.ENABLED off: the spy sees every launch)
    """Host µs of one swap launch, split: `swap_gemm` whole, its Triton launch alone (`kernel[grid](...)`: binder,
    cache key, launcher), the compiled kernel launched with its bound arguments (`compiled[grid](*args)`: no binder),
    the three TMA descriptors' encodings, and the op's custom-op dispatch (`torch.ops` against its Python body)."""
    from triton.backends.nvidia.driver import make_tensordesc_arg

    cases = _cases(m, n, k, g)
    spy = _Spy(gluon_swap._swap_kernel)
    gluon_swap._swap_kernel = spy
    try:
        cases["swap"]()
    finally:
        gluon_swap._swap_kernel = spy.kernel
    grid, args, kwargs, compiled = spy.last
    binder = spy.kernel.device_caches[torch.cuda.current_device()][4]
    bound = tuple(binder(*args, **kwargs)[0].values())
    grid3 = (grid[0], 1, 1)
    descs = [x for x in args if type(x).__name__ == "TensorDescriptor"]
    metas = getattr(compiled.metadata, "tensordesc_meta", None) or [None] * len(descs)
    timed = {
        "swap_gemm": cases["swap"],
        "triton_launch": lambda: spy.kernel[grid](*args, **kwargs),
        "compiled_launch": lambda: compiled[grid3](*bound),
        "tma_encode_x3": lambda: [make_tensordesc_arg(d, meta) for d, meta in zip(descs, metas)],
        "op": cases["op"],
        "op_body": cases["op_body"],
    }
    return {name: host_us(fn)[0] for name, fn in timed.items()}


def dispatch_costs() -> dict:
    """Host µs of a trivial op (returns a 4-element empty tensor) called as a plain function, through
    `torch.library.custom_op`, and through a `torch.library.Library` definition with a CUDA implementation."""

    def body(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None, k: int, dt: torch.dtype) -> torch.Tensor:
        return a.new_empty(4)

    custom = torch.library.custom_op("fptq_probe::custom", body, mutates_args=())
    custom.register_fake(body)
    lib = torch.library.Library("fptq_probe", "FRAGMENT")
    lib.define("plain(Tensor a, Tensor b, Tensor? c, int k, ScalarType dt) -> Tensor")
    lib.impl("plain", body, "CUDA")
    a = torch.zeros(8, device="cuda")
    return {name: host_us(lambda fn=fn: fn(a, a, None, 4096, torch.float16))[0]
            for name, fn in (("function", body), ("custom_op", torch.ops.fptq_probe.custom),
                             ("library_impl", torch.ops.fptq_probe.plain))}


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
    for fast in (False, True):  # Triton's launch path, then `fptq.kernels.launch`'s short path (the default)
        launch.ENABLED = fast
        for name, (n, k) in SHAPES.items():
            cases = _cases(m, n, k, g)
            line = []
            for case, fn in cases.items():
                if case == "op_body":
                    continue
                h, d = host_us(fn)
                results.append({"case": case, "shape": name, "m": m, "n": n, "k": k, "short_launch": fast,
                                "host_us": h, "gpu_us": d})
                line.append(f"{case} {h:.1f} ({d:.0f})")
            print(f"{'short' if fast else 'triton'} {name:8s} {n}x{k} M={m}: host µs/call (GPU µs): " + ", ".join(line),
                  flush=True)
    launch.ENABLED = True
    print(own_time_profile(_cases(m, *SHAPES["o"], g)["op"], 50), flush=True)
    n, k = SHAPES["o"]
    launch.ENABLED = False
    split = launch_split(m, n, k, g)
    launch.ENABLED = True
    print(f"o at M={m}, host µs per call: " + ", ".join(f"{c} {v:.1f}" for c, v in split.items()), flush=True)
    results.append({"case": "launch_split", "shape": "o", "m": m, **split})
    costs = dispatch_costs()
    print("trivial op, host µs per call: " + ", ".join(f"{c} {v:.1f}" for c, v in costs.items()), flush=True)
    results.append({"case": "dispatch", **costs})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

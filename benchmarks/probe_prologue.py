"""The op with the RMSNorm before it inside (`fptq.kernels.prologue`: one token in the one-launch M = 1 op,
`gluon_decode` NORM; more rows in the quantization kernel, `_act_quant_kernel` NORM) against the op on an input made
by kernels before it, on the LLaMA-2 layers that read a norm (q/k/v and gate/up fused); with `--kind silu` the same
for SiLU * up before the down projections (`_act_quant_kernel` SILU; rows of `[gate, up]`).

Per layer and row count (random int4 weights, groups of 128, fp16 rows), each in CUDA graphs
(`bench_gemm.time_graph`: medians over replays, copies on their own weights to defeat the L2), the variants in turn,
twice (the best of each pair reported):

- torch (with --torch-norm): the norm's eager torch ops (eight kernels, as the module runs uncompiled), then the op;
- before: the norm as one compiled Inductor kernel (`torch.compile(apply_prologue)`; a compiled model's also adds
  the residual), then the op;
- prologue: the op with the prologue inside (as installed: SiLU * up of fewer than SILU_MIN_ROWS rows in torch ops);
- inside (with --kind silu): SiLU * up in the quantization kernel at any row count (SILU_MIN_ROWS 1);
- torch1 (with --kind silu): one token of SiLU * up in torch ops, then the one-launch op (SILU_MIN_ROWS 2);
- plain: the op alone on a ready input (what the prologue costs inside the op: prologue - plain).

Also checks that the prologue op ran with the norm inside (no torch norm, no fallback) and matches the op on the
torch prologue (relative error).

    PYTHONPATH=src python benchmarks/probe_prologue.py [--rows 1,16,2048] [--torch-norm] [--kind silu] \
        --json $OUT/prologue.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import time_graph  # noqa: E402

from fptq.kernels import gluon_fallback  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402
from fptq.kernels.prologue import Prologue, apply_prologue  # noqa: E402

GROUP = 128
SHAPES = [("7B qkv fused", 12288, 4096), ("7B gate+up fused", 22016, 4096), ("13B qkv fused", 15360, 5120),
          ("13B gate+up fused", 27648, 5120), ("70B qkv fused", 10240, 8192)]
SILU_SHAPES = [("7B down", 4096, 11008), ("13B down", 5120, 13824), ("70B down", 8192, 28672)]


def layer(n: int, k: int):
    qweight = torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device="cuda")
    scales = (torch.rand(n, k // GROUP, device="cuda") * 0.01 + 1e-3).half()
    return qweight, scales


def inputs(k: int, m: int = 1, kind: str = "rmsnorm"):
    """`m` rows of the layer's raw input and its prologue: rows of K values and an RMSNorm, or rows of `[gate, up]`
    (2 K values) and SiLU * up."""
    if kind == "silu":
        return (torch.randn(m, 2 * k, device="cuda") * 2).half(), Prologue("silu_glu")
    x = (torch.randn(m, k, device="cuda") * 3).half()
    return x, Prologue("rmsnorm", (1 + 0.3 * torch.randn(k, device="cuda")).half(), 1e-5)


def silu_inside(fn, min_rows: int = 1):
    """`fn` with SiLU * up in the quantization kernel from `min_rows` rows on (SILU_MIN_ROWS; the Python runs at
    capture)."""

    def call():
        kept, tw.SILU_MIN_ROWS = tw.SILU_MIN_ROWS, min_rows
        try:
            return fn()
        finally:
            tw.SILU_MIN_ROWS = kept

    return call


def ran_fused(qweight, scales, x, prologue) -> tuple[torch.Tensor, bool]:
    """The prologue op's output (SiLU * up: inside at any row count), and whether the prologue ran inside its launches:
    a norm of one token in the one launch (not a fallback), no torch ops at any row count."""
    launched, real, real_norm = [], tw._launch_fused_m1, tw.apply_prologue

    def spy(*a, prologue=None, **kw):
        y = real(*a, prologue=prologue, **kw)
        launched.append(prologue is not None and y is not None)
        return y

    def torch_norm(*a, **kw):
        launched.append(False)
        return real_norm(*a, **kw)

    tw._launch_fused_m1, tw.apply_prologue = spy, torch_norm
    try:
        y = silu_inside(lambda: tw.w4a8_linear(x, qweight, scales, group_size=GROUP, prologue=prologue))()
        return y, launched == ([True] if x.shape[0] == 1 and prologue.kind == "rmsnorm" else [])
    finally:
        tw._launch_fused_m1, tw.apply_prologue = real, real_norm


def variant_calls(variant: str, n: int, k: int, compiled, m: int = 1, kind: str = "rmsnorm"):
    """`time_graph`'s maker of `copies` calls of one variant, each on a layer and rows of its own."""

    def calls(copies):
        out = []
        for _ in range(copies):
            q, s = layer(n, k)
            xi, p = inputs(k, m, kind)
            if variant == "torch":
                out.append(lambda xi=xi, p=p, q=q, s=s: tw.w4a8_linear(apply_prologue(xi, p), q, s, group_size=GROUP))
            elif variant == "before":
                out.append(lambda xi=xi, p=p, q=q, s=s: tw.w4a8_linear(compiled(xi, p), q, s, group_size=GROUP))
            elif variant == "prologue":
                out.append(lambda xi=xi, p=p, q=q, s=s: tw.w4a8_linear(xi, q, s, group_size=GROUP, prologue=p))
            elif variant in ("inside", "torch1"):
                out.append(silu_inside(lambda xi=xi, p=p, q=q, s=s: tw.w4a8_linear(xi, q, s, group_size=GROUP,
                                                                                   prologue=p),
                                       1 if variant == "inside" else 2))
            else:
                xn = apply_prologue(xi, p)
                out.append(lambda xn=xn, q=q, s=s: tw.w4a8_linear(xn, q, s, group_size=GROUP))
        return out

    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1", help="comma-separated row counts (tokens)")
    parser.add_argument("--torch-norm", action="store_true", help="also time the norm's eager torch ops + the op")
    parser.add_argument("--kind", choices=("rmsnorm", "silu"), default="rmsnorm",
                        help="the prologue: the RMSNorm before q/k/v and gate/up, or SiLU * up before down")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    t0 = time.time()
    print("GPU", torch.cuda.get_device_name(), flush=True)
    compiled = torch.compile(apply_prologue)
    rows, failed = [], False
    silu = args.kind == "silu"
    variants = (("torch",) if args.torch_norm else ()) + ("before", "prologue") + (("inside", "torch1") if silu else ()) + (
        "plain",)
    for (name, n, k), m in ((shape, int(r)) for r in args.rows.split(",") for shape in (SILU_SHAPES if silu else SHAPES)):
        qweight, scales = layer(n, k)
        x, prologue = inputs(k, m, args.kind)
        got, ran = ran_fused(qweight, scales, x, prologue)
        want = tw.w4a8_linear(apply_prologue(x, prologue), qweight, scales, group_size=GROUP)
        err = ((got.double() - want.double()).norm() / want.double().norm()).item()
        failed |= not ran or err > 5e-3 or gluon_fallback.failed("decode_prologue")

        times = {v: [] for v in variants}
        for _ in range(2):
            for v in times:
                times[v].append(time_graph(variant_calls(v, n, k, compiled, m, args.kind),
                                           n * k // 2 + n * (k // GROUP) * 2))
        best = {v: min(t) for v, t in times.items()}
        row = {"shape": name, "m": m, "n": n, "k": k, "ran": ran, "rel_err": err, **{f"{v}_us": best[v] for v in best},
               "runs": times}
        rows.append(row)
        torch_part = f"torch ops + op {best['torch']:6.1f} us, " if "torch" in best else ""
        inside_part = (f"inside at any rows {best['inside']:6.1f}, one token in torch ops {best['torch1']:6.1f}, "
                       if "inside" in best else "")
        print(f"{name:18s} M={m:5d} {n:5d}x{k:5d}: {torch_part}before {best['before']:6.1f} us, prologue op "
              f"{best['prologue']:6.1f} (x{best['before'] / best['prologue']:.3f}), {inside_part}plain op "
              f"{best['plain']:6.1f} "
              f"(prologue inside {best['prologue'] - best['plain']:+.1f}); rel err {err:.1e}"
              f"{'' if ran else ' PROLOGUE OP DID NOT RUN'}", flush=True)
    print(f"({time.time() - t0:.0f}s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "rows": rows, "failed": failed}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

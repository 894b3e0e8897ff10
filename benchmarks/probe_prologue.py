"""The one-launch M = 1 op with the RMSNorm before it inside (`fptq.kernels.prologue`, `gluon_decode` NORM) against
the op on an input made by a kernel before it, on the LLaMA-2 layers that read a norm (q/k/v and gate/up fused).

Per layer (random int4 weights, groups of 128, one fp16 token), each in CUDA graphs (`bench_gemm.time_graph`:
medians over replays, copies on their own weights to defeat the L2), in the order before, prologue, plain, before,
prologue, plain (the best of each pair reported):

- before: the norm as one compiled Inductor kernel (`torch.compile(apply_prologue)`; a compiled model's also adds
  the residual), then the op (the one-launch M = 1 op, its quantization inside);
- prologue: the op with the prologue inside (one launch);
- plain: the op alone on a ready input (what the prologue costs inside the op: prologue - plain).

Also checks that the prologue op ran (no fallback) and matches the op on the torch prologue (relative error).

    PYTHONPATH=src python benchmarks/probe_prologue.py --json $OUT/prologue.json
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


def layer(n: int, k: int):
    qweight = torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device="cuda")
    scales = (torch.rand(n, k // GROUP, device="cuda") * 0.01 + 1e-3).half()
    return qweight, scales


def inputs(k: int):
    x = (torch.randn(1, k, device="cuda") * 3).half()
    return x, Prologue("rmsnorm", (1 + 0.3 * torch.randn(k, device="cuda")).half(), 1e-5)


def ran_fused(qweight, scales, x, prologue) -> tuple[torch.Tensor, bool]:
    """The prologue op's output, and whether its one launch with the norm inside ran (not a fallback)."""
    launched, real = [], tw._launch_fused_m1

    def spy(*a, prologue=None, **kw):
        y = real(*a, prologue=prologue, **kw)
        launched.append(prologue is not None and y is not None)
        return y

    tw._launch_fused_m1 = spy
    try:
        return tw.w4a8_linear(x, qweight, scales, group_size=GROUP, prologue=prologue), launched == [True]
    finally:
        tw._launch_fused_m1 = real


def variant_calls(variant: str, n: int, k: int, compiled):
    """`time_graph`'s maker of `copies` calls of one variant, each on a layer and row of its own."""

    def calls(copies):
        out = []
        for _ in range(copies):
            q, s = layer(n, k)
            xi, p = inputs(k)
            if variant == "before":
                out.append(lambda xi=xi, p=p, q=q, s=s: tw.w4a8_linear(compiled(xi, p), q, s, group_size=GROUP))
            elif variant == "prologue":
                out.append(lambda xi=xi, p=p, q=q, s=s: tw.w4a8_linear(xi, q, s, group_size=GROUP, prologue=p))
            else:
                xn = apply_prologue(xi, p)
                out.append(lambda xn=xn, q=q, s=s: tw.w4a8_linear(xn, q, s, group_size=GROUP))
        return out

    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    t0 = time.time()
    print("GPU", torch.cuda.get_device_name(), flush=True)
    compiled = torch.compile(apply_prologue)
    rows, failed = [], False
    for name, n, k in SHAPES:
        qweight, scales = layer(n, k)
        x, prologue = inputs(k)
        got, ran = ran_fused(qweight, scales, x, prologue)
        want = tw.w4a8_linear(apply_prologue(x, prologue), qweight, scales, group_size=GROUP)
        err = ((got.double() - want.double()).norm() / want.double().norm()).item()
        failed |= not ran or err > 5e-3 or gluon_fallback.failed("decode_prologue")

        times = {v: [] for v in ("before", "prologue", "plain")}
        for _ in range(2):
            for v in times:
                times[v].append(time_graph(variant_calls(v, n, k, compiled), n * k // 2 + n * (k // GROUP) * 2))
        best = {v: min(t) for v, t in times.items()}
        row = {"shape": name, "n": n, "k": k, "ran": ran, "rel_err": err, **{f"{v}_us": best[v] for v in best},
               "runs": times}
        rows.append(row)
        print(f"{name:28s} {n:5d}x{k:5d}: before {best['before']:6.1f} us, prologue op {best['prologue']:6.1f} "
              f"(x{best['before'] / best['prologue']:.3f}), plain op {best['plain']:6.1f} (prologue inside "
              f"{best['prologue'] - best['plain']:+.1f}); rel err {err:.1e}{'' if ran else ' PROLOGUE OP DID NOT RUN'}",
              flush=True)
    print(f"({time.time() - t0:.0f}s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "rows": rows, "failed": failed}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

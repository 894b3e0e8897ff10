"""SiLU * up inside the quantization kernel (`_act_quant_kernel` SILU): how `silu(gate)` is computed, and what it
costs.

1. Exhaustive check: `_silu_glu`'s value for every 16-bit gate value (all 65536 fp16, all 65536 bf16 bit patterns)
   against `F.silu` on the GPU, per variant: exp (libdevice's / `tl.exp`) x division (`DIV` 0 correctly rounded, 2
   the approximate reciprocal with one fma correction; run 207 also had Triton's `/` and two corrections, since
   removed from the kernel: one fp16 mismatch / none, 4.9 / 5.6 µs at 16 rows). A variant with no
   mismatch gives torch's value for every input the kernel can see: the value rounded to 16 bits depends on the gate
   alone.
2. Timing: the quantization kernel alone (CUDA graphs, `bench_gemm.time_graph`) on rows of `[gate, up]` of the
   LLaMA down projections at 16 and 2048 rows per variant, and on ready rows of K values (no SiLU) for reference;
   `--max-k`: each with these SILU_MAX_K (rows past it in two passes over blocks of that many columns).

    PYTHONPATH=src python benchmarks/probe_silu.py [--rows 16,2048] [--max-k 16384,32768] [--variants 1/2,1/0] \
        --json $OUT/silu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import time_graph  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402
from fptq.kernels.prologue import Prologue  # noqa: E402

VARIANTS = [(True, 0), (True, 2), (False, 0), (False, 2)]  # (libdevice exp, DIV)
SHAPES = [("7B down", 11008), ("13B down", 13824), ("70B down", 28672)]


@triton.jit
def _silu_values(g_ptr, out_ptr, n, XT: tl.constexpr, EXACT: tl.constexpr, DIV: tl.constexpr, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    g = tl.load(g_ptr + i, mask=i < n).to(tl.float32)
    one = tl.full((BLOCK,), 1.0, tl.float32)
    tl.store(out_ptr + i, tw._silu_glu(g, one, XT, EXACT, DIV).to(XT), mask=i < n)


def mismatches(dtype: torch.dtype, exact: bool, div: int) -> tuple[int, list]:
    """Gate values (of all 65536 bit patterns of `dtype`) whose `_silu_glu` differs from `F.silu`'s (NaN = NaN)."""
    g = torch.arange(-32768, 32768, dtype=torch.int32, device="cuda").to(torch.int16).view(dtype)
    want = F.silu(g)
    got = torch.empty_like(g)
    xt = tl.float16 if dtype == torch.float16 else tl.bfloat16
    _silu_values[(g.numel() // 1024,)](g, got, g.numel(), XT=xt, EXACT=exact, DIV=div, BLOCK=1024)
    same = (got.view(torch.int16) == want.view(torch.int16)) | (got.isnan() & want.isnan())
    bad = (~same).nonzero().flatten()
    return bad.numel(), [(g[i].item(), got[i].item(), want[i].item()) for i in bad[:6].tolist()]


def quant_calls(m: int, k: int, variant, silu: bool):
    """`time_graph`'s maker: quantization launches of `m` rows (`[gate, up]` with SiLU * up, else K values)."""

    def calls(copies):
        out = []
        for _ in range(copies):
            x = (torch.randn(m, 2 * k if silu else k, device="cuda") * 2).half()
            quant = tw._QuantLaunch(m, k, x.dtype, x.device, 128, "dynamic", tw._words(x), False, False,
                                    Prologue("silu_glu") if silu else None)
            if silu:
                quant.constexprs.update(EXACT_EXP=variant[0], SILU_DIV=variant[1])
            out.append(lambda x=x, quant=quant: quant.run(x, x.stride(0)))
        return out

    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="16,2048", help="comma-separated row counts")
    parser.add_argument("--max-k", default=str(tw.SILU_MAX_K), help="comma-separated SILU_MAX_K values to time")
    parser.add_argument("--variants", default=",".join(f"{int(e)}/{d}" for e, d in VARIANTS),
                        help="timed variants, libdevice-exp/DIV pairs")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    t0 = time.time()
    print("GPU", torch.cuda.get_device_name(), flush=True)
    checks = []
    for dtype in (torch.float16, torch.bfloat16):
        for exact, div in VARIANTS:
            count, examples = mismatches(dtype, exact, div)
            checks.append({"dtype": str(dtype), "libdevice_exp": exact, "div": div, "mismatches": count,
                           "examples": examples})
            print(f"{str(dtype):15s} exp={'libdevice' if exact else 'tl.exp':9s} div={div}: {count:5d} of 65536 gate "
                  f"values differ from F.silu {examples[:3]}", flush=True)
    timings = []
    timed = [(bool(int(v.split("/")[0])), int(v.split("/")[1])) for v in args.variants.split(",")]
    installed = tw.SILU_MAX_K
    for max_k, m in ((int(c), int(r)) for c in args.max_k.split(",") for r in args.rows.split(",")):
        tw.SILU_MAX_K = max_k
        for name, k in SHAPES:
            row = {"shape": name, "m": m, "k": k, "silu_max_k": max_k}
            row["plain_us"] = time_graph(quant_calls(m, k, None, False), m * k * 3)
            for variant in timed:
                row[f"exp{int(variant[0])}_div{variant[1]}_us"] = time_graph(quant_calls(m, k, variant, True),
                                                                             m * k * 5)
            timings.append(row)
            print(f"{name:9s} M={m:5d} K={k:5d} SILU_MAX_K={max_k:5d}: plain rows {row['plain_us']:6.1f} us; SiLU * up "
                  + ", ".join(f"exp{int(v[0])}/div{v[1]} {row[f'exp{int(v[0])}_div{v[1]}_us']:6.1f}" for v in timed),
                  flush=True)
    tw.SILU_MAX_K = installed
    print(f"({time.time() - t0:.0f}s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "checks": checks, "timings": timings}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

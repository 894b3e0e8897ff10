"""Session 18: the swap kernel with each ring slot's first K step unpacked under the previous slot's last wgmma
(`gluon_swap.PREFETCH_SLOT`) against without, in one process (the setting is part of the launch key), variants
alternated, best of two each: as ops (activation quantization + GEMM) and as the GEMM alone (activations quantized
beforehand), two-level groups of 128 (the default format), CUDA graphs (`bench_gemm.time_graph`), cuBLAS fp16 in the
same run; and that the outputs are the same (one int32 sum per output either way: bit for bit).

Variants: `off` (no slot prefetch, two-level scales one slot ahead only from TL_AHEAD columns), `narrow` (128-row
tiles only), `both` (128- and 256-row tiles).

    PYTHONPATH=src python3 benchmarks/probe_prefetch_slot.py [--ms 1024,4096] [--shapes all] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import SHAPES, bench_fp16, bench_gemm_alone, bench_ours, make_layer  # noqa: E402

from fptq.kernels import gluon_swap  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

VARIANTS = {"off": (), "narrow": (128,), "both": (128, 256)}


def _same(m: int, n: int, k: int) -> bool:
    qweight, scales, _, _, chan = make_layer(n, k, 128, True, two_level=True)
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    ys = []
    for ps in VARIANTS.values():
        gluon_swap.PREFETCH_SLOT = ps
        ys.append(tw.w4a8_linear(x, qweight, scales, None, group_size=128, channel_scales=chan))
    return all(torch.equal(ys[0], y) for y in ys[1:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", default="1024,4096")
    ap.add_argument("--shapes", default="all", help="'all' or comma-separated indices into bench_gemm.SHAPES")
    ap.add_argument("--no-gemm", action="store_true", help="ops only")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    installed = gluon_swap.PREFETCH_SLOT
    shapes = SHAPES if args.shapes == "all" else [SHAPES[int(v)] for v in args.shapes.split(",")]
    rows = []
    for name, n, k in shapes:
        for m in (int(v) for v in args.ms.split(",")):
            row = {"shape": name, "n": n, "k": k, "m": m, "fp16_us": bench_fp16(m, n, k)}
            for kind in ("op",) + (() if args.no_gemm else ("gemm",)):
                runs = {label: [] for label in VARIANTS}
                for _ in range(2):
                    for label, ps in VARIANTS.items():
                        gluon_swap.PREFETCH_SLOT = ps
                        runs[label].append(bench_ours(m, n, k, "dynamic", 128, two_level=True) if kind == "op"
                                           else bench_gemm_alone(m, n, k, 128, two_level=True))
                for label in VARIANTS:
                    row[f"{kind}_{label}_us"] = min(runs[label])
            row["same"] = _same(m, n, k)
            gluon_swap.PREFETCH_SLOT = installed
            rows.append(row)
            f = row["fp16_us"]
            msg = f"{name:12s} M={m:5d} fp16 {f:7.1f}"
            for kind in ("op",) + (() if args.no_gemm else ("gemm",)):
                msg += f"  {kind}: " + " ".join(f"{label} {row[f'{kind}_{label}_us']:.1f} (x{f / row[f'{kind}_{label}_us']:.2f})"
                                                 for label in VARIANTS)
            print(msg + f"  same={row['same']}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()

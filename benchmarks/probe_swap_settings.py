"""A/B of `gluon_swap` module settings in one process (they are part of the swap kernel's launch key), variants
alternated, best of two each: as ops (activation quantization + GEMM) and as the GEMM alone (activations quantized
beforehand), two-level groups of 128 (the default format), CUDA graphs (`bench_gemm.time_graph`), cuBLAS fp16 in the
same run; and whether every variant gives the installed variant's outputs bit for bit (one int32 sum per output).

A variant is `installed` or comma-separated NAME=VALUE assignments of `gluon_swap` settings (Python literals; a
`tw.` prefix names a `triton_w4a8` setting instead, e.g. `tw.QUANT_PDL=False`), joined by `;` on the command line:

    PYTHONPATH=src python3 benchmarks/probe_swap_settings.py --variants "installed;LOADER_SCALES=False,TL_AHEAD=0" \\
        [--ms 1024,4096] [--shapes 0,3] [--json F]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import SHAPES, bench_fp16, bench_gemm_alone, bench_ours, make_layer  # noqa: E402

from fptq.kernels import gluon_swap  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402


def _module(name: str) -> tuple:
    """(module, attribute) of a setting name: `tw.NAME` in triton_w4a8, else gluon_swap."""
    return (tw, name[3:]) if name.startswith("tw.") else (gluon_swap, name)


def parse(variant: str) -> dict:
    if variant == "installed":
        return {}
    out = {}
    for item in re.split(r",(?=\s*[A-Za-z_][\w.]*\s*=)", variant):  # (commas inside a value, e.g. a tuple, stay)
        name, value = (part.strip() for part in item.split("=", 1))
        module, attr = _module(name)
        if not hasattr(module, attr):
            raise SystemExit(f"{module.__name__} has no setting {attr!r}")
        out[name] = ast.literal_eval(value)
    return out


def apply(settings: dict, installed: dict) -> None:
    for name, value in [*installed.items(), *settings.items()]:
        setattr(*_module(name), value)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="installed;CHAIN_STEPS=False")
    ap.add_argument("--ms", default="1024,4096")
    ap.add_argument("--shapes", default="0,3", help="'all' or comma-separated indices into bench_gemm.SHAPES")
    ap.add_argument("--no-gemm", action="store_true", help="ops only")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    variants = {v: parse(v) for v in args.variants.split(";")}
    names = {name for s in variants.values() for name in s}
    installed = {name: getattr(*_module(name)) for name in names}
    shapes = SHAPES if args.shapes == "all" else [SHAPES[int(v)] for v in args.shapes.split(",")]
    kinds = ("op",) + (() if args.no_gemm else ("gemm",))
    rows = []
    for name, n, k in shapes:
        for m in (int(v) for v in args.ms.split(",")):
            row = {"shape": name, "n": n, "k": k, "m": m, "fp16_us": bench_fp16(m, n, k)}
            for kind in kinds:
                runs = {v: [] for v in variants}
                for _ in range(2):
                    for v, settings in variants.items():
                        apply(settings, installed)
                        runs[v].append(bench_ours(m, n, k, "dynamic", 128, two_level=True) if kind == "op"
                                       else bench_gemm_alone(m, n, k, 128, two_level=True))
                row[kind] = {v: min(r) for v, r in runs.items()}
            qweight, scales, _, _, chan = make_layer(n, k, 128, True, two_level=True)
            x = torch.randn(m, k, device="cuda", dtype=torch.float16)
            ys = {}
            for v, settings in variants.items():
                apply(settings, installed)
                ys[v] = tw.w4a8_linear(x, qweight, scales, None, group_size=128, channel_scales=chan)
            apply({}, installed)
            row["same"] = all(torch.equal(next(iter(ys.values())), y) for y in ys.values())
            rows.append(row)
            f = row["fp16_us"]
            msg = f"{name:12s} M={m:5d} fp16 {f:7.1f}"
            for kind in kinds:
                msg += f" | {kind}: " + "  ".join(f"[{v}] {t:.1f} (x{f / t:.2f})" for v, t in row[kind].items())
            print(msg + f"  same={row['same']}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()

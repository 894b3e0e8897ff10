"""Run 116: the swap kernel's stream-K schedule (`gluon_swap.STREAM_K`) against whole tiles per program, as ops
(activation quantization + GEMM, two-level groups of 128, CUDA graphs: `bench_gemm.time_graph`), next to cuBLAS fp16
and int8 in the same run, on the bench_gemm shapes at prefill M. Per shape and M: the tiles and their rounds over the
SMs, whether the installed rule takes stream-K, and (unless --no-check) that both schedules give the same outputs —
bit for bit with two-level scales (one int32 sum per output either way).

    PYTHONPATH=src python3 benchmarks/probe_stream_k.py [--ms 512,1024,2048,4096] [--shapes 0,3,5120x13824] [--json F]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import SHAPES, bench_fp16, bench_int8, bench_ours, make_layer  # noqa: E402

from fptq.kernels import gluon_prefill  # noqa: E402
from fptq.kernels import gluon_swap as gs  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

FORCED = (0.0, 1e9)  # stream-K wherever there are more tiles than SMs


def _same_outputs(m: int, n: int, k: int) -> bool:
    qweight, scales, _, _, chan = make_layer(n, k, 128, True, two_level=True)
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    ys = []
    for setting in (None, FORCED):
        gs.STREAM_K = setting
        ys.append(tw.w4a8_linear(x, qweight, scales, None, group_size=128, channel_scales=chan))
    return torch.equal(ys[0], ys[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", default="512,1024,2048,4096")
    ap.add_argument("--shapes", default="all",
                    help="'all' or comma-separated indices into bench_gemm.SHAPES or NxK (e.g. 5120x13824: 13B down)")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--installed", action="store_true", help="also the installed schedule (256-row tiles where taken), "
                    "alternating with stream-K, best of two each")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    installed, wide = gs.STREAM_K, tw.SWAP_WIDE
    tw.SWAP_WIDE = None  # 128-row tiles throughout (stream-K does not run with 256-row ones)
    sms = gluon_prefill._sm_count(torch.cuda.current_device())
    shapes = SHAPES if args.shapes == "all" else [
        (v, *map(int, v.split("x"))) if "x" in v else SHAPES[int(v)] for v in args.shapes.split(",")]
    rows = []
    for name, n, k in shapes:
        for m in (int(v) for v in args.ms.split(",")):
            cfg = tw._prefill_config(m, n, sms)
            tiles = tw._output_tiles(m, n, cfg)
            row = {"shape": name, "n": n, "k": k, "m": m, "block_m": cfg.block_m, "tiles": tiles,
                   "rounds": tiles / sms, "rule": gs.stream_k(tiles, min(tiles, sms)) if installed else False,
                   "fp16_us": bench_fp16(m, n, k), "int8_us": bench_int8(m, n, k)}
            for label, setting in (("tiles_us", None), ("stream_k_us", FORCED)):
                gs.STREAM_K = setting
                row[label] = bench_ours(m, n, k, "dynamic", 128, two_level=True)
            if args.installed:  # the installed schedule (256-row tiles where `swap_tile` takes them, the SK rule), and
                # stream-K again, alternately: the best of two each
                gs.STREAM_K, tw.SWAP_WIDE = installed, wide
                row["installed_runs"], row["stream_k_runs"] = [], [row["stream_k_us"]]
                for setting in (None, FORCED, None):
                    if setting is None:
                        gs.STREAM_K, tw.SWAP_WIDE = installed, wide
                    else:
                        gs.STREAM_K, tw.SWAP_WIDE = FORCED, None
                    row["stream_k_runs" if setting else "installed_runs"].append(
                        bench_ours(m, n, k, "dynamic", 128, two_level=True))
                tw.SWAP_WIDE = None
                row["installed_us"], row["stream_k_us"] = min(row["installed_runs"]), min(row["stream_k_runs"])
            if not args.no_check and tiles > sms:
                row["same"] = _same_outputs(m, n, k)
            gs.STREAM_K = installed
            rows.append(row)
            gain = row["tiles_us"] / row["stream_k_us"]
            print(f"{name:12s} M={m:5d} bm{cfg.block_m} {tiles:5d} tiles {row['rounds']:5.2f} rounds "
                  f"(ceil {math.ceil(row['rounds'])}) rule={'SK' if row['rule'] else 'tiles'}  fp16 {row['fp16_us']:.1f}us "
                  f"int8 {row['int8_us']:.1f}  tiles {row['tiles_us']:.1f} (x{row['fp16_us'] / row['tiles_us']:.2f})  "
                  f"stream-K {row['stream_k_us']:.1f} (x{row['fp16_us'] / row['stream_k_us']:.2f})  SK gain x{gain:.3f}"
                  + (f"  same={row['same']}" if "same" in row else "")
                  + (f"  installed {row['installed_us']:.1f} (x{row['fp16_us'] / row['installed_us']:.2f}; SK gain over it "
                     f"x{row['installed_us'] / row['stream_k_us']:.3f})" if args.installed else ""), flush=True)
    tw.SWAP_WIDE = wide
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "sms": sms, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

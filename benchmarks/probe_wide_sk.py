"""Session 18: stream-K with 256-row weight tiles (WIDE + SK in `gluon_swap`). Per shape and M, as ops (activation
quantization + GEMM, two-level groups of 128, CUDA graphs), cuBLAS fp16 in the same run: 128-row tiles whole and
stream-K, 256-row tiles whole and stream-K, and the installed dispatch; the GEMM alone (activations quantized
beforehand) for the two 256-row schedules and the installed one; and (unless --no-check) that the four schedules
give the same outputs — bit for bit with two-level scales (one int32 sum per output).

Why (GPU_NOTES, run 163): the kernel runs at the card's power cap, so a layer whose tiles round badly over the SMs
(13B q/k/v/o at 1024 rows: 320 128-row tiles, 2.42 rounds) gains nothing from balance alone (run 157) but might from
balance with the tiles that spend less energy per multiply-add (256 rows: 160 tiles, 1.21 rounds, whole tiles 16 %
slower, run 123).

    PYTHONPATH=src python3 benchmarks/probe_wide_sk.py [--cases 5120x5120@1024,4096x4096@1152] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench_fp16, bench_gemm_alone, bench_ours, make_layer  # noqa: E402

from fptq.kernels import gluon_prefill  # noqa: E402
from fptq.kernels import gluon_swap as gs  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

FORCED = (0.0, 1e9)  # stream-K wherever there are more tiles than SMs
NARROW = tw.PrefillConfig(128, 128, 4, 6, swap=True)
WIDE = tw.PrefillConfig(128, 256, 4, 3, swap=True)
CASES = "5120x5120@1024,5120x5120@1152,4096x4096@1152,4096x4096@1280,1024x8192@2304,1024x8192@4608,5120x5120@512"
SCHEDULES = {"narrow": (NARROW, None), "narrow_sk": (NARROW, FORCED), "wide": (WIDE, None), "wide_sk": (WIDE, FORCED),
             "installed": (None, "installed")}


def _set(setting, installed):
    gs.STREAM_K = installed if setting == "installed" else setting


def _outputs(m, n, k, installed):
    qweight, scales, _, _, chan = make_layer(n, k, 128, True, two_level=True)
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    ys = {}
    for label, (cfg, setting) in SCHEDULES.items():
        _set(setting, installed)
        ys[label] = tw.w4a8_linear(x, qweight, scales, None, group_size=128, channel_scales=chan, config=cfg)
    _set("installed", installed)
    return all(torch.equal(ys["narrow"], y) for y in ys.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=CASES, help="comma-separated NxK@M")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    installed = gs.STREAM_K
    sms = gluon_prefill._sm_count(torch.cuda.current_device())
    rows = []
    for case in args.cases.split(","):
        shape, m = case.split("@")
        n, k = map(int, shape.split("x"))
        m = int(m)
        row = {"n": n, "k": k, "m": m, "fp16_us": bench_fp16(m, n, k),
               "tiles": {"narrow": tw._output_tiles(m, n, NARROW), "wide": tw._output_tiles(m, n, WIDE)},
               "installed_config": str(tw._prefill_config(m, n, sms, wide=True))}
        for label, (cfg, setting) in SCHEDULES.items():
            _set(setting, installed)
            row[label + "_us"] = bench_ours(m, n, k, "dynamic", 128, cfg, two_level=True)
        for label in ("wide", "wide_sk", "installed"):  # the GEMM alone (its default config; 256-row tiles forced by
            # SWAP_WIDE's cost, so here by the module setting)
            cfg, setting = SCHEDULES[label]
            _set(setting, installed)
            saved = tw.SWAP_WIDE, tw.SWAP_WIDE_MIN_M
            if cfg is WIDE:
                tw.SWAP_WIDE, tw.SWAP_WIDE_MIN_M = (0.0, WIDE), 0  # (free: `swap_tile` takes it at any M)
            row[label + "_gemm_us"] = bench_gemm_alone(m, n, k, 128, two_level=True)
            tw.SWAP_WIDE, tw.SWAP_WIDE_MIN_M = saved
        _set("installed", installed)
        if not args.no_check:
            row["same"] = _outputs(m, n, k, installed)
        rows.append(row)
        f = row["fp16_us"]
        print(f"{n}x{k} M={m:5d} tiles {row['tiles']['narrow']}/{row['tiles']['wide']} ({row['tiles']['narrow'] / sms:.2f}/"
              f"{row['tiles']['wide'] / sms:.2f} rounds) fp16 {f:.1f}  "
              + "  ".join(f"{label} {row[label + '_us']:.1f} (x{f / row[label + '_us']:.2f})" for label in SCHEDULES)
              + "  | gemm: " + "  ".join(f"{label} {row[label + '_gemm_us']:.1f} (x{f / row[label + '_gemm_us']:.2f})"
                                         for label in ("wide", "wide_sk", "installed"))
              + (f"  same={row['same']}" if "same" in row else ""), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "sms": sms, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()

"""What bounds the swap prefill kernel at 1024-4096 rows (session 18)? Timing-only variants of `gluon_swap`, each in its
own process (the kernels read the patched module globals when they compile), as ops and as the GEMM alone, cuBLAS fp16
in the same process, plus the SM clock and power while each runs for a second or more:

- `installed`: the default dispatch as it is;
- `nounpack`: the consumers' int4 unpacking (`UNPACK_*`: LOP3 / IMAD per 4 weights) replaced by a plain move of the
  packed bytes — wrong outputs, the same loads, wgmmas and schedule: how much of the time is the unpacking;
- `k1`: one K step per ring slot (`gluon_swap.K_PER_SLOT = 1`; twice the slots, a wgmma wait and a slot release per
  step);
- `narrow`: no 256-row tiles (`triton_w4a8.SWAP_WIDE = None`).

Reading (GPU_NOTES, session 18): 128-row and 256-row tiles both run at ~1 POP/s (~50 % of the int8 wgmma rate at the
boost clock) while moving 5.2 and 3.7 TB/s from L2; if `nounpack` is as slow, the unpacking is not the bound; if the
clock under the W4A8 ops sits well below fp16's, the card's power is.

    PYTHONPATH=src python3 benchmarks/probe_swap_bound.py [--variants installed,nounpack,k1,narrow] [--ms 1024,4096]
        [--shapes 0,3] [--clock-seconds 1.5] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_e2e import GpuSampler  # noqa: E402
from bench_gemm import SHAPES, bench_fp16, bench_gemm_alone, bench_ours, fp16_calls, ours_calls  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402

MOVE = "mov.b32 $0, $1;"  # (the packed bytes as they are: timing only)


def _patch(variant: str) -> None:
    import triton.language as tl

    from fptq.kernels import gluon_swap

    if variant == "nounpack":
        for name in ("UNPACK_LO", "UNPACK_HI", "UNPACK_LO_TL", "UNPACK_HI_TL"):
            setattr(gluon_swap, name, tl.constexpr(MOVE))
    elif variant == "k1":
        gluon_swap.K_PER_SLOT = 1
    elif variant == "narrow":
        tw.SWAP_WIDE = None
    elif variant != "installed":
        raise SystemExit(f"unknown variant {variant!r}")


def _sustained(calls, seconds: float, path: str) -> dict:
    """Replays `calls` in one CUDA graph for `seconds` while nvidia-smi samples the card into `path`: the median SM clock
    (MHz) and power (W) of the samples in the second half."""
    g = torch.cuda.CUDAGraph()
    for c in calls:
        c()
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        for c in calls:
            c()
    if os.path.exists(path):
        os.remove(path)
    with GpuSampler(path):
        time.sleep(0.3)  # (nvidia-smi's start-up)
        t0 = time.time()
        while time.time() - t0 < seconds:
            for _ in range(20):
                g.replay()
            torch.cuda.synchronize()
    rows = []
    if os.path.exists(path):
        for line in open(path):
            parts = [v.strip() for v in line.split(",")]
            try:
                rows.append((float(parts[1].split()[0]), float(parts[3].split()[0]), parts[5]))
            except (IndexError, ValueError):
                continue
    rows = rows[len(rows) // 2:]
    if not rows:
        return {}
    return {"clock_mhz": statistics.median(r[0] for r in rows), "power_w": statistics.median(r[1] for r in rows),
            "throttle": sorted({r[2] for r in rows}), "samples": len(rows)}


def child(args) -> None:
    _patch(args.child)
    shapes = [SHAPES[int(v)] for v in args.shapes.split(",")]
    for name, n, k in shapes:
        for m in (int(v) for v in args.ms.split(",")):
            row = {"variant": args.child, "shape": name, "m": m, "n": n, "k": k,
                   "fp16_us": bench_fp16(m, n, k), "op_us": bench_ours(m, n, k, "dynamic", 128, two_level=True),
                   "gemm_us": bench_gemm_alone(m, n, k, 128, two_level=True)}
            if args.clock_seconds > 0 and m == max(int(v) for v in args.ms.split(",")):
                tmp = os.path.join(args.tmp, f"smi_{args.child}_{n}_{k}_{m}")
                row["clock_op"] = _sustained(ours_calls(m, n, k, 8, "dynamic", 128, two_level=True), args.clock_seconds,
                                             tmp + "_op.csv")
                row["clock_fp16"] = _sustained(fp16_calls(m, n, k, 8), args.clock_seconds, tmp + "_fp16.csv")
            print("ROW " + json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="installed,nounpack,k1,narrow")
    ap.add_argument("--ms", default="1024,4096")
    ap.add_argument("--shapes", default="0,3", help="comma-separated indices into bench_gemm.SHAPES")
    ap.add_argument("--clock-seconds", type=float, default=1.5, help="sustained run per variant at the largest M (0: none)")
    ap.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    rows = []
    for variant in args.variants.split(","):
        cmd = [sys.executable, __file__, "--child", variant, "--ms", args.ms, "--shapes", args.shapes,
               "--clock-seconds", str(args.clock_seconds), "--tmp", args.tmp]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{variant}: failed rc={r.returncode}\n{r.stderr[-3000:]}", flush=True)
            continue
        for line in r.stdout.splitlines():
            if not line.startswith("ROW "):
                continue
            row = json.loads(line[4:])
            rows.append(row)
            f = row["fp16_us"]
            msg = (f"{variant:9s} {row['shape']:12s} M={row['m']:5d} fp16 {f:7.1f}  op {row['op_us']:7.1f} (x{f / row['op_us']:.2f})"
                   f"  gemm {row['gemm_us']:7.1f} (x{f / row['gemm_us']:.2f})")
            for key in ("clock_op", "clock_fp16"):
                c = row.get(key)
                if c:
                    msg += f"  {key[6:]}: {c['clock_mhz']:.0f} MHz {c['power_w']:.0f} W {'|'.join(c['throttle'])}"
            print(msg, flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "rows": rows}, fh,
                      indent=1)


if __name__ == "__main__":
    main()

"""The one-launch M = 1 decode op (`triton_w4a8.FUSED_DECODE_M1`): the activation quantization inside the Gluon TMA
decode kernel (`gluon_decode`, FUSED_ROW) against today's two launches (quantization, then the decode GEMM as its
programmatic dependent).

For one token on LLaMA-2 7B / 13B / 70B linear shapes (q/k/v and gate/up also fused into one GEMM each), random int4
weights, groups of 128, fp16 activations:

1. checks that the fused op gives the two-launch op's output (max abs difference; the same codes, scale, split and
   summation order, so 0) and that it ran (no quantization launch, no fallback to the Triton kernel);
2. times both ops (`w4a8_linear` with the flag on / off) in CUDA graphs (`bench_gemm.time_graph`: medians over
   replays, copies on their own weights to defeat the L2), each twice in the order two, one, two, one (the
   best of each pair is reported), with cuBLAS fp16 `x @ w.T` and, where this torch has it, tinygemm W4A16 for ratios;
3. prints a table and, with `--json PATH`, writes the rows there; the last line estimates what the flag would save
   per 7B decode step (32 layers of q/k/v, o, gate+up, down).

    PYTHONPATH=src python benchmarks/probe_fused_decode.py --json $OUT/fused.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench_fp16, bench_tinygemm, time_graph  # noqa: E402

from fptq.kernels import gluon_fallback  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

SHAPES = [("7B q/k/v/o", 4096, 4096), ("7B qkv fused", 12288, 4096), ("7B gate+up fused", 22016, 4096),
          ("7B down", 4096, 11008), ("13B q/k/v/o", 5120, 5120), ("13B gate/up", 13824, 5120),
          ("70B q/o", 8192, 8192), ("70B gate/up", 28672, 8192), ("70B down", 8192, 28672)]
# one 7B decoder layer at M = 1 (fused q/k/v and gate/up, as `fptq.fuse_shared_inputs` leaves them)
STEP_7B = ("7B qkv fused", "7B q/k/v/o", "7B gate+up fused", "7B down")
GROUP = 128


def random_layer(n: int, k: int):
    """Random int4 codes (two a byte, as `QuantLinear.qweight`) and group scales: decode time does not depend on
    the values."""
    qweight = torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device="cuda")
    scales = (torch.rand(n, k // GROUP, device="cuda") * 0.01 + 1e-3).half()
    return qweight, scales


INSTALLED = tw.FUSED_DECODE_M1


def op(x, qweight, scales, fused: bool, out=None):
    tw.FUSED_DECODE_M1 = fused
    return tw.w4a8_linear(x, qweight, scales, None, group_size=GROUP, act_mode="dynamic", out=out)


def check(n: int, k: int) -> dict:
    """The fused op against the two launches on one layer; whether it was the one that ran."""
    qweight, scales = random_layer(n, k)
    x = (torch.randn(1, k, device="cuda") * (1 + 3 * torch.rand(1, device="cuda"))).half()  # (fp16: run 117's fp32 row
    # took the two launches, as it should, and was reported as a fused launch that did not run)
    two = op(x, qweight, scales, False)
    quantize, launches = tw.quantize_activation_triton, []

    def counted(*args, **kwargs):
        launches.append(1)
        return quantize(*args, **kwargs)

    tw.quantize_activation_triton = counted
    try:
        out = torch.full((1, n), float("nan"), dtype=x.dtype, device="cuda")
        one = op(x, qweight, scales, True, out)
    finally:
        tw.quantize_activation_triton = quantize
    torch.cuda.synchronize()
    diff = (one.float() - two.float()).abs().max().item()
    return {"max_abs_diff": diff, "equal": bool(torch.equal(one, two)), "fused_ran": not launches,
            "finite": bool(torch.isfinite(one).all())}


def bench_op(n: int, k: int, fused: bool) -> float:
    def make(copies):
        calls = []
        for _ in range(copies):
            qweight, scales = random_layer(n, k)
            x = torch.randn(1, k, device="cuda", dtype=torch.float16)
            calls.append(lambda x=x, q=qweight, s=scales: op(x, q, s, fused))
        return calls

    try:
        return time_graph(make, n * k // 2 + n * (k // GROUP) * 2 + k * 2 + n * 2)
    finally:
        tw.FUSED_DECODE_M1 = INSTALLED


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--no-tinygemm", action="store_true", help="skip torch's W4A16 kernel")
    args = parser.parse_args()
    t0 = time.time()
    print("GPU", torch.cuda.get_device_name(), flush=True)
    cfg = tw.CONFIGS[0][1]
    rows, failed = [], False
    for name, n, k in SHAPES:
        steps = -(-k // 128)
        split = tw._split_k(cfg, 1, n, steps, tw._tma_slice_steps(True, k, GROUP))
        row = {"shape": name, "n": n, "k": k, "split": split, "steps_per_program": -(-steps // split),
               "programs": tw._tiles(cfg, 1, n) * split, **check(n, k)}
        if gluon_fallback.failed("decode") or not row["fused_ran"] or not row["equal"] or not row["finite"]:
            failed = True
        row["fp16_us"] = bench_fp16(1, n, k)
        times = {True: [], False: []}
        for fused in (False, True, False, True):
            times[fused].append(bench_op(n, k, fused))
        row["two_launch_us"], row["one_launch_us"] = min(times[False]), min(times[True])
        row["two_launch_runs"], row["one_launch_runs"] = times[False], times[True]
        row["tinygemm_us"] = None if args.no_tinygemm else bench_tinygemm(1, n, k, GROUP)
        row["speedup"] = row["two_launch_us"] / row["one_launch_us"]
        rows.append(row)
        tiny = f", tinygemm {row['tinygemm_us']:.1f}" if row["tinygemm_us"] else ""
        print(f"{name:17s} {n:5d}x{k:5d} split {split:2d} ({row['programs']} programs, {row['steps_per_program']} steps): "
              f"two launches {row['two_launch_us']:6.1f} us, one {row['one_launch_us']:6.1f} us "
              f"(x{row['speedup']:.3f}; runs {', '.join(f'{t:.1f}' for t in times[False])} / "
              f"{', '.join(f'{t:.1f}' for t in times[True])}); fp16 {row['fp16_us']:.1f} "
              f"(x{row['fp16_us'] / row['one_launch_us']:.2f} fused){tiny}; max|diff| {row['max_abs_diff']:.3g}"
              f"{'' if row['fused_ran'] else ' FUSED DID NOT RUN'}{'' if row['equal'] else ' NOT EQUAL'}", flush=True)
    by_name = {r["shape"]: r for r in rows}
    saved = 32 * sum(by_name[s]["two_launch_us"] - by_name[s]["one_launch_us"] for s in STEP_7B)
    print(f"7B decode step (32 x q/k/v, o, gate+up, down): {saved / 1000:+.3f} ms with the flag "
          f"(ops timed alone; {time.time() - t0:.0f}s)", flush=True)
    if gluon_fallback.failed("decode"):
        print("FAIL: the Gluon decode kernel failed to compile (the timings above are the Triton kernel's)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "group": GROUP, "tma_target_programs": tw.TMA_TARGET_PROGRAMS,
                       "fused_row_block": tw.FUSED_ROW_BLOCK, "step_7b_saved_us": saved, "failed": failed, "rows": rows},
                      f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

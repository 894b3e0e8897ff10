"""Session 30 probe: how fast can anything read a layer's packed int4 weights once, in the GEMM benchmark's harness?

    PYTHONPATH=src python3 benchmarks/probe_stream_floor.py [--shapes all] [--json OUT]

The M <= 16 target (3x cuBLAS fp16) assumes the int4 bytes stream at about the rate cuBLAS streams fp16 ones. This
times, per LLaMA-2 shape and in the same CUDA-graph harness as `bench_gemm.py` (each call on its own copy of the layer,
back to back), kernels that do nothing but read the packed weights (N x K / 2 bytes, read as int32 words):

- TMA rings (Gluon, the decode kernel's structure without its arithmetic): each program a BLOCK_N-row tile and one K
  slice (split so that the grid has ~`target` programs), a STAGES-deep ring of TMA boxes of ROWS x BYTES (the decode
  kernel's slot is 64 x 64 B, paired 64 x 128 B); the first STAGES boxes requested before a programmatic-dependent
  wait, as the decode kernel does. CONSUME: each slot read into registers (16 bytes a lane) and xor-accumulated;
  otherwise the slot is only waited on and refilled.
- plain loads (Triton): BLOCK_N rows x BLOCK_K words a step, 16-byte vectors.

against cuBLAS fp16 (`torch.matmul`) and our W4A8 op (two-level g128, dynamic activations) at M = 1 (and its GEMM
alone, on activations quantized beforehand). Then the op's other parts, one at a time, on the decode kernel's slots
(`+row`: every program reads the whole fp16 row for its absmax after the wait; `+epi`: the split-K epilogue, partials
to a workspace and the last slice to arrive sums them), to see where the time between the stream and the op goes. The best floor
gives the most any int4 kernel could be faster than cuBLAS fp16 in this harness (`ceiling`), and the spread between
box shapes says whether the row-segment length (64 B ... 1 KB contiguous a row) matters to a pure stream."""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import triton
import triton.language as tl
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import FUSED_SHAPES, SHAPES, bench_fp16, bench_gemm_alone, bench_ours, time_graph  # noqa: E402

from fptq.kernels.gluon_prefill import gdc_wait  # noqa: E402


@gluon.constexpr_function
def _words_layout(bk, num_warps):
    """Registers of a (rows, bk) int32 slot: 4 contiguous words (16 bytes) a lane."""
    lanes = min(32, bk // 4)
    return gl.BlockedLayout([1, 4], [32 // lanes, lanes], [num_warps, 1], [1, 0])


@gluon.jit
def _tma_stream(w_desc, out_ptr, x_ptr, ws_ptr, cnt_ptr, N, KW, KX, STAGES: gl.constexpr, PDL: gl.constexpr,
                CONSUME: gl.constexpr, num_warps: gl.constexpr, ROW: gl.constexpr = False, EPI: gl.constexpr = False):
    BN: gl.constexpr = w_desc.block_type.shape[0]
    BK: gl.constexpr = w_desc.block_type.shape[1]
    pid_n = gl.program_id(0)
    pid_k = gl.program_id(1)
    steps = (KW + BK - 1) // BK
    per = (steps + gl.num_programs(1) - 1) // gl.num_programs(1)
    lo = pid_k * per
    n = gl.minimum(per, steps - lo)
    smem = gl.allocate_shared_memory(gl.int32, [STAGES, BN, BK], w_desc.layout)
    bars = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(STAGES):
        mbarrier.init(bars.index(i), count=1)
    for i in gl.static_range(STAGES):
        mbarrier.expect(bars.index(i), w_desc.block_type.nbytes, pred=i < n)
        tma.async_copy_global_to_shared(w_desc, [pid_n * BN, (lo + i) * BK], bars.index(i), smem.index(i), pred=i < n)
    if PDL:
        gdc_wait()
    if ROW:  # the one-launch op's absmax of the whole fp16 row after the wait (8192-column passes)
        r_l: gl.constexpr = gl.BlockedLayout([8], [32], [num_warps], [0])
        offs = gl.arange(0, 8192, layout=r_l)
        amax = gl.zeros([8192], gl.float32, r_l)
        for c0 in range(0, KX, 8192):
            amax = gl.maximum(amax, gl.abs(gl.load(x_ptr + c0 + offs, mask=c0 + offs < KX, other=0.0).to(gl.float32)))
        row_max = gl.max(amax, axis=0)
    lay: gl.constexpr = _words_layout(BK, num_warps)
    acc = gl.zeros([BN, BK], gl.int32, lay)
    for j in range(0, n):
        slot = j % STAGES
        mbarrier.wait(bars.index(slot), (j // STAGES) & 1)
        if CONSUME:
            acc = acc ^ smem.index(slot).load(lay)
            gl.thread_barrier()
        ok = j + STAGES < n
        mbarrier.expect(bars.index(slot), w_desc.block_type.nbytes, pred=ok)
        tma.async_copy_global_to_shared(w_desc, [pid_n * BN, (lo + j + STAGES) * BK], bars.index(slot),
                                        smem.index(slot), pred=ok)
    for i in gl.static_range(STAGES):
        mbarrier.invalidate(bars.index(i))
    rows = pid_n * BN + gl.arange(0, BN, layout=gl.SliceLayout(1, lay))
    part = gl.xor_sum(acc, axis=1).to(gl.float32)
    if ROW:
        part = part * row_max
    if EPI:  # the decode kernel's split-K epilogue: partial to the workspace, the last slice to arrive sums them
        split = gl.num_programs(1)
        gl.store(ws_ptr + pid_k * N + rows, part)
        gl.thread_barrier()
        arrived = gl.atomic_add(cnt_ptr + pid_n, 1, sem="acq_rel", scope="gpu")
        if arrived == split - 1:
            total = gl.load(ws_ptr + rows, cache_modifier=".cg")
            for s in range(1, split):
                total += gl.load(ws_ptr + s * N + rows, cache_modifier=".cg")
            gl.store(out_ptr + rows, total.to(gl.int32))
            gl.atomic_xchg(cnt_ptr + pid_n, 0)
    else:
        gl.store(out_ptr + rows, part.to(gl.int32))


@triton.jit
def _ldg_stream(w_ptr, out_ptr, KW, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    per = tl.cdiv(tl.cdiv(KW, BLOCK_K), tl.num_programs(1)) * BLOCK_K
    lo = tl.program_id(1) * per
    acc = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.int32)
    for k0 in range(lo, tl.minimum(lo + per, KW), BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)[None, :]
        acc ^= tl.load(w_ptr + rows[:, None].to(tl.int64) * KW + cols, mask=cols < KW, other=0)
    tl.store(out_ptr + rows, tl.xor_sum(acc, axis=1))


TMA = [  # (rows, bytes a row, STAGES, target programs, consume, ROW, EPI)
    (64, 64, 3, 264, True, False, False), (64, 128, 3, 264, True, False, False), (64, 128, 3, 264, False, False, False),
    (64, 128, 6, 264, True, False, False), (32, 256, 3, 264, True, False, False), (16, 512, 3, 264, True, False, False),
    (16, 512, 3, 264, False, False, False), (8, 1024, 3, 264, True, False, False), (16, 512, 3, 528, True, False, False),
    (64, 128, 3, 528, True, False, False),
    # the op's other parts on the decode kernel's slots: the row's absmax after the wait, the split-K epilogue
    (64, 64, 3, 264, True, True, False), (64, 64, 3, 264, True, False, True), (64, 64, 3, 264, True, True, True),
    (64, 128, 3, 264, True, True, False), (64, 128, 3, 264, True, False, True), (64, 128, 3, 264, True, True, True),
]
LDG = [(16, 256, 4), (32, 128, 4), (8, 512, 4)]  # (BLOCK_N, BLOCK_K words, warps), ~264 programs by K split


def _grid(n: int, k: int, rows: int, words: int, target: int) -> tuple[int, int]:
    """(row tiles, K slices) for about `target` programs of `rows` rows, `words` int32 words a step (no empty slices)."""
    tiles, steps = -(-n // rows), -(-(k // 8) // words)
    split = max(1, min(steps, -(-target // tiles)))
    return tiles, -(-steps // -(-steps // split))


def _copies(n: int, k: int, launch):
    """`make(copies)` for `time_graph`: each copy a layer's packed weights of its own (random int32 words) and an
    output, launched by `launch(w, out)`."""
    def make(copies):
        return [launch(torch.randint(-2**31, 2**31 - 1, (n, k // 8), device="cuda", dtype=torch.int32),
                       torch.empty(n, device="cuda", dtype=torch.int32)) for _ in range(copies)]
    return make


def tma_make(n, k, rows, nbytes, stages, target, consume, row=False, epi=False):
    bk = nbytes // 4
    layout = gl.NVMMASharedLayout(swizzle_byte_width=0, element_bitwidth=32, rank=2)
    grid = _grid(n, k, rows, bk, target)

    def launch(w, out):
        desc = TensorDescriptor.from_tensor(w, [rows, bk], layout)
        x = torch.randn(k, device="cuda", dtype=torch.float16)
        ws = torch.empty(grid[1] * n, device="cuda", dtype=torch.float32)
        cnt = torch.zeros(grid[0], device="cuda", dtype=torch.int32)
        return lambda: _tma_stream[grid](desc, out, x, ws, cnt, n, k // 8, k, STAGES=stages, PDL=True,
                                         CONSUME=consume, ROW=row, EPI=epi, num_warps=4, launch_pdl=True)
    return _copies(n, k, launch), grid


def ldg_make(n, k, bn, bk, warps, target=264):
    grid = _grid(n, k, bn, bk, target)
    return _copies(n, k, lambda w, out: lambda: _ldg_stream[grid](w, out, k // 8, BLOCK_N=bn, BLOCK_K=bk,
                                                                    num_warps=warps)), grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="all", help="indices into SHAPES + FUSED_SHAPES, e.g. 0,3,6,7")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print("GPU", torch.cuda.get_device_name(), flush=True)
    shapes = SHAPES + FUSED_SHAPES
    shapes = shapes if args.shapes == "all" else [shapes[int(i)] for i in args.shapes.split(",")]
    results = []
    for name, n, k in shapes:
        nbytes = n * k // 2
        row = dict(shape=name, n=n, k=k, mbytes=nbytes / 1e6, fp16_us=bench_fp16(1, n, k),
                   ours_us=bench_ours(1, n, k, "dynamic", two_level=True),
                   gemm_alone_us=bench_gemm_alone(1, n, k, two_level=True), floors={})
        for rows, seg, stages, target, consume, rw, epi in TMA:
            make, grid = tma_make(n, k, rows, seg, stages, target, consume, rw, epi)
            label = (f"tma {rows}x{seg}B s{stages} p{grid[0] * grid[1]}{'' if consume else ' wait-only'}"
                     f"{' +row' if rw else ''}{' +epi' if epi else ''}")
            row["floors"][label] = time_graph(make, nbytes)
        for bn, bk, warps in LDG:
            make, grid = ldg_make(n, k, bn, bk, warps)
            row["floors"][f"ldg {bn}x{bk * 4}B w{warps} p{grid[0] * grid[1]}"] = time_graph(make, nbytes)
        best = min((lab for lab in row["floors"] if "+" not in lab), key=row["floors"].get)
        t = row["floors"][best]
        row.update(best=best, best_us=t, ceiling=row["fp16_us"] / t, ours_x=row["fp16_us"] / row["ours_us"])
        results.append(row)
        print(f"floor {name} ({n}x{k}, {nbytes / 1e6:.1f} MB): fp16 {row['fp16_us']:.1f}us "
              f"({2 * nbytes / row['fp16_us'] / 1e6:.2f} TB/s), ours {row['ours_us']:.1f}us (x{row['ours_x']:.2f}), "
              f"its GEMM alone {row['gemm_alone_us']:.1f}us; "
              f"best floor {best} {t:.1f}us ({nbytes / t / 1e6:.2f} TB/s): ceiling x{row['ceiling']:.2f}", flush=True)
        print("   " + "; ".join(f"{lab} {v:.1f}" for lab, v in row["floors"].items()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

"""W4A8 GEMM benchmark and GPU correctness check (needs CUDA; run on the H100 via gpu_run.sh).

One run does, in order:

1. correctness of the Triton kernels against a float64 GPU evaluation of the reference semantics
   (and the CPU reference itself on small cases): every act mode, group sizes 64/128/per-channel,
   symmetric and asymmetric, bias, fp16/bf16, M from 1 to 8192 with odd sizes and K tails, the
   fp8 variant; outputs are poisoned with NaN before each run.
2. optional config sweeps (`--sweep`) on representative shapes, to pick the launch parameters.
3. the timing table: our W4A8 (dynamic and static activations), our W4A16, cuBLAS fp16
   (`torch.matmul`), cuBLAS int8 W8A8 (`torch._int_mm`, B column-major) and tinygemm W4A16
   (`torch._weight_int4pack_mm`, when this torch has it) on LLaMA-2 7B/13B/70B linear shapes.

Timing: every contender is captured `copies` times in one CUDA graph, each copy on its own
weights and activations (so that the working set exceeds the 50 MB L2), and the graph is
replayed; the time per call is the median over replays of (event time / copies).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import statistics
import sys
import time

import torch

from fptq.kernels import reference as ref_mod
from fptq.kernels import triton_prefill as tp
from fptq.kernels import triton_w4a8 as tw
from fptq.kernels.triton_gemv import GemvConfig
from fptq.packing import pack_int4
from fptq.primitives import per_token_scale, quantize_activation, quantize_weight

SHAPES = [  # (N, K), LLaMA-2 linear layers
    ("7B qkv/o", 4096, 4096),
    ("7B gate/up", 11008, 4096),
    ("7B down", 4096, 11008),
    ("13B qkv/o", 5120, 5120),
    ("13B gate/up", 13824, 5120),
    ("70B q/o", 8192, 8192),
    ("70B gate/up", 28672, 8192),
    ("70B down", 8192, 28672),
]
# q/k/v and gate/up fused into one GEMM each (`fptq.fuse_shared_inputs`); 70B q/k/v with GQA
FUSED_SHAPES = [
    ("7B qkv fused", 12288, 4096),
    ("7B gate+up fused", 22016, 4096),
    ("70B qkv fused", 10240, 8192),
    ("70B gate+up fused", 57344, 8192),
]
MS = [1, 4, 16, 64, 256, 1024, 4096, 8192]
L2_BYTES = 50 * 2**20


# ---------------------------------------------------------------- reference on the GPU (float64)
def ref64(x, qweight, scales, zeros, group_size, act_mode, act_scale, bias):
    """The semantics of `fptq.kernels.reference`, evaluated in float64 on x's device."""
    k = x.shape[-1]
    n, groups = scales.shape
    w_int = ref_mod.integer_weight(qweight, zeros, 4, group_size).double()  # (N, K)
    x2 = x.reshape(-1, k)
    if act_mode == "none":
        xq, sx = x2.double(), None
    else:
        sx = act_scale.float().reshape(1, 1) if act_mode == "static" else per_token_scale(x2)
        xq = quantize_activation(x2, sx).double()
    xg = xq.reshape(-1, groups, group_size).transpose(0, 1)  # (groups, M, G)
    wg = w_int.reshape(n, groups, group_size).permute(1, 2, 0)  # (groups, G, N)
    y = (torch.bmm(xg, wg) * scales.double().t()[:, None, :]).sum(0)
    if sx is not None:
        y = y * sx.double()
    if bias is not None:
        y = y + bias.double()
    return y


def make_layer(n, k, group_size, symmetric, device="cuda", bias=False, dtype=torch.float16, two_level=False):
    """(qweight, scales, zeros, bias); with `two_level` also the channel scales (a 5th element)."""
    w = torch.randn(n, k, device=device) * 0.02
    qw = quantize_weight(w, 4, group_size, symmetric, "two-level" if two_level else "fp16")
    b = (torch.randn(n, device=device) * 0.1).to(dtype) if bias else None
    return (pack_int4(qw.codes), qw.scales, qw.zeros, b) + ((qw.channel_scales,) if two_level else ())


def rel_err(y, ref):
    y = y.double()
    if not torch.isfinite(y).all():
        return float("inf")
    return ((y - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def check_correctness(log) -> bool:
    torch.manual_seed(0)
    ok = True
    cases = []
    for m in (1, 2, 3, 7, 16, 17, 33, 64, 100, 257, 1024, 8192):
        cases.append((m, 4096 if m < 8192 else 1024, 1024, 128, "dynamic", True, False, torch.float16))
    for m in (1, 5, 16, 31, 129):
        for g, k in ((64, 576), (128, 640), (-1, 200), (-1, 4096), (256, 512)):
            for mode in ("static", "dynamic", "none"):
                for sym in (True, False):
                    cases.append((m, 96, k, g, mode, sym, m % 2 == 1, torch.float16))
    for m in (1, 300):
        for mode in ("static", "dynamic", "none"):
            cases.append((m, 256, 512, 128, mode, True, True, torch.bfloat16))
            cases.append((m, 256, 512, 64, mode, False, False, torch.float32))
    fused = [tw.KernelConfig(16, 64, 4, 3, sk, fused_act=True) for sk in (1, 3)]
    for m in (1, 5, 16):
        for mode in ("static", "dynamic", "none"):
            for g, k in ((128, 640), (64, 576), (-1, 200)):
                cases.append((m, 96, k, g, mode, m == 5, m == 1, torch.float16, fused[m % 2]))
    worst = 0.0
    for case in cases:
        m, n, k, g, mode, sym, has_bias, dtype = case[:8]
        cfg = case[8] if len(case) > 8 else None
        gs = k if g == -1 else g
        qweight, scales, zeros, bias = make_layer(n, k, gs, sym, bias=has_bias, dtype=dtype)
        x = (torch.randn(m, k, device="cuda") * (1 + 3 * torch.rand(m, 1, device="cuda"))).to(dtype)
        x[0, 0] = 0.0
        if m > 3:
            x[2] = 0.0  # an all-zero row: per-token scale 1
        act_scale = (x.float().abs().max() / 127 * 0.8).reshape(()) if mode == "static" else None
        out = torch.full((m, n), float("nan"), dtype=dtype, device="cuda")
        y = tw.w4a8_linear(x, qweight, scales, zeros, group_size=gs, act_mode=mode, act_scale=act_scale, bias=bias, out=out)
        r = ref64(x, qweight, scales, zeros, gs, mode, act_scale, bias)
        e = rel_err(y, r)
        tol = {torch.float16: 2e-3, torch.bfloat16: 1e-2, torch.float32: 2e-5}[dtype]
        tol = tol * 3 if mode == "none" and dtype == torch.float16 else tol
        worst = max(worst, e)
        if not (e < tol) or y.data_ptr() != out.data_ptr() and mode != "none":
            ok = False
            log(f"FAIL m={m} n={n} k={k} g={g} {mode} sym={sym} bias={has_bias} {dtype} {cfg}: rel err {e:.2e}")
        if m * n * k <= 2**22:  # the CPU reference itself, on small cases
            yc = ref_mod.quant_linear_reference(
                x.cpu(),
                qweight.cpu(),
                scales.cpu(),
                None if zeros is None else zeros.cpu(),
                group_size=gs,
                act_mode=mode,
                act_scale=None if act_scale is None else act_scale.cpu(),
                bias=None if bias is None else bias.cpu(),
            )
            ec = rel_err(y.cpu(), yc.double())
            if not ec < tol:
                ok = False
                log(f"FAIL vs CPU reference m={m} n={n} k={k} g={g} {mode} {dtype}: {ec:.2e}")
    log(f"correctness: {len(cases)} cases, worst rel err {worst:.2e}, {'OK' if ok else 'FAILED'}")
    # fp8 variant
    for m, n, k, g in ((1, 256, 512, 128), (77, 256, 640, 64), (300, 512, 1024, 128), (64, 128, 200, 200)):
        qweight, scales, zeros, bias = make_layer(n, k, g, True, bias=True)
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)
        out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda")
        y = tw.w4a8_fp8_linear(x, qweight, scales, zeros, group_size=g, bias=bias, out=out)
        r = ref_mod.quant_linear_reference(x.double(), qweight, scales, zeros, group_size=g, act_mode="dynamic_fp8",
                                           bias=bias.double())
        e = rel_err(y, r)
        log(f"fp8 m={m} n={n} k={k} g={g}: rel err vs fp8 reference {e:.2e}")
        if not e < 3e-3:
            ok = False
            log("FAIL fp8")
    # dispatch through QuantLinear
    from fptq.kernels import select_backend

    name = select_backend(torch.zeros(1, 8, device="cuda"), 4, 128, "dynamic").name
    log(f"backend picked on CUDA: {name}")
    ok = ok and name == "triton"
    return ok


DECODE_CHECK_CONFIGS = [
    tw.DecodeConfig(64, 4, 4, tw.DOT_INT8, True),
    tw.DecodeConfig(32, 2, 4, tw.DOT_INT8, False),
    tw.DecodeConfig(128, 1, 8, tw.DOT_INT8, True),
    tw.DecodeConfig(64, 4, 4, tw.DOT_FP16, True),
    tw.DecodeConfig(32, 2, 4, tw.DOT_FMA, True, 1),
]


def check_decode(log) -> bool:
    """The single-launch decode kernel: every config kind, mode, format; poisoned outputs; determinism."""
    torch.manual_seed(1)
    ok, worst, count = True, 0.0, 0
    layers = (
        (4096, 4096, 128, True, torch.float16),
        (1000, 11008, 128, False, torch.float16),
        (96, 576, 64, False, torch.bfloat16),
        (130, 200, -1, True, torch.float16),
        (256, 512, 256, True, torch.float32),
    )
    for ci, cfg in enumerate(DECODE_CHECK_CONFIGS):
        for m in (1, 3, 16):
            if cfg.block_m == 1 and m > 1:
                continue
            for n, k, g, sym, dtype in layers if ci == 0 else layers[:2]:
                gs = k if g == -1 else g
                qweight, scales, zeros, bias = make_layer(n, k, gs, sym, bias=m != 3, dtype=dtype)
                x = (torch.randn(m, k, device="cuda") * (1 + 3 * torch.rand(m, 1, device="cuda"))).to(dtype)
                if m > 2:
                    x[1] = 0.0
                for mode in ("static", "dynamic", "none") if ci == 0 else ("dynamic",):
                    if mode == "none" and dtype == torch.float32:
                        continue
                    act_scale = (x.float().abs().max() / 127 * 0.8).reshape(()) if mode == "static" else None
                    outs = []
                    for _ in range(2):
                        out = torch.full((m, n), float("nan"), dtype=dtype, device="cuda")
                        y = tw.w4a8_linear(
                            x, qweight, scales, zeros, group_size=gs, act_mode=mode, act_scale=act_scale, bias=bias, config=cfg, out=out
                        )
                        outs.append(y.clone())
                    r = ref64(x, qweight, scales, zeros, gs, mode, act_scale, bias)
                    e = rel_err(outs[0], r)
                    tol = {torch.float16: 2e-3, torch.bfloat16: 1e-2, torch.float32: 2e-5}[dtype]
                    tol = tol * 3 if mode == "none" else tol
                    worst, count = max(worst, e), count + 1
                    same = torch.equal(outs[0], outs[1]) and y.data_ptr() == out.data_ptr()
                    if not (e < tol) or not same:
                        ok = False
                        log(f"FAIL decode {cfg} m={m} n={n} k={k} g={g} {mode} {dtype}: rel err {e:.2e} deterministic={same}")
    log(f"decode kernel: {count} cases, worst rel err {worst:.2e}, {'OK' if ok else 'FAILED'}")
    return ok


# ---------------------------------------------------------------- timing
def time_graph(make_calls, bytes_per_call, reps=20):
    """Median µs per call of the closures made by `make_calls(copies)`, replayed in a CUDA graph."""
    copies = max(1, min(64, math.ceil(4 * L2_BYTES / max(bytes_per_call, 1))))
    calls = make_calls(copies)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for c in calls:  # warm-up: compilation, handles, conversions
            c()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for c in calls:
            c()
    g.replay()
    torch.cuda.synchronize()
    # Several replays between the two events: the graph's launch latency (~10-20 µs, measured in
    # run 11 with an empty kernel) is then paid once per R replays instead of once per `copies`
    # calls, which inflated the per-call time of large shapes (2 copies) by ~8 µs before run 11.
    replays = max(1, math.ceil(64 / copies))
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    g.replay()
    b.record()
    b.synchronize()
    replays = max(1, min(replays, math.ceil(2.0 / max(a.elapsed_time(b), 1e-3))))  # ~2 ms between events
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(replays):
            g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1000 / (copies * replays))
    del g
    return statistics.median(times)


def ours_calls(m, n, k, copies, act_mode, group_size=128, config=None, dtype=torch.float16, fp8=False, two_level=False):
    """`copies` W4A8 ops (activation quantization + GEMM), each on its own random layer and input."""
    calls = []
    for _ in range(copies):
        qweight, scales, zeros, _, *chan = make_layer(n, k, group_size, True, two_level=two_level)
        chan = chan[0] if chan else None
        x = torch.randn(m, k, device="cuda", dtype=dtype)
        sx = (x.float().abs().max() / 127).reshape(()) if act_mode == "static" else None
        if fp8:
            calls.append(lambda x=x, q=qweight, s=scales: tw.w4a8_fp8_linear(x, q, s, None, group_size=group_size, config=config))
        else:
            calls.append(
                lambda x=x, q=qweight, s=scales, sx=sx, c=chan: tw.w4a8_linear(
                    x, q, s, None, group_size=group_size, act_mode=act_mode, act_scale=sx, config=config, channel_scales=c
                )
            )
    return calls


def bench_ours(m, n, k, act_mode, group_size=128, config=None, dtype=torch.float16, fp8=False, two_level=False):
    return time_graph(lambda copies: ours_calls(m, n, k, copies, act_mode, group_size, config, dtype, fp8, two_level),
                      n * k // 2 + n * (k // group_size) * 2 + m * k * 2 + m * n * 2)


def bench_gemm_alone(m, n, k, group_size=128, two_level=False):
    """The W4A8 GEMM on activations quantized beforehand (`fptq::w4a8_gemm`: what a compiled model runs above
    DECODE_MAX_M rows, its quantization traced into the kernel that makes the activations)."""
    def make(copies):
        calls = []
        for _ in range(copies):
            qweight, scales, zeros, _, *chan = make_layer(n, k, group_size, True, two_level=two_level)
            a, sx = tw.quantize_activation_triton(torch.randn(m, k, device="cuda", dtype=torch.float16), group_size, "dynamic")
            calls.append(lambda a=a, sx=sx, q=qweight, s=scales, c=(chan[0] if chan else None): torch.ops.fptq.w4a8_gemm(
                a, sx, q, s, None, None, k, group_size, 2, torch.float16, c))
        return calls

    return time_graph(make, n * k // 2 + n * (k // group_size) * 2 + m * k + m * n * 2)


def fp16_calls(m, n, k, copies):
    """`copies` cuBLAS fp16 matmuls, each on its own random weight and input."""
    calls = []
    for _ in range(copies):
        w = torch.randn(n, k, device="cuda", dtype=torch.float16)
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)
        calls.append(lambda x=x, w=w: torch.matmul(x, w.t()))
    return calls


def bench_fp16(m, n, k):
    return time_graph(lambda copies: fp16_calls(m, n, k, copies), n * k * 2 + m * k * 2 + m * n * 2)


def bench_int8(m, n, k):
    mm = max(m, 17)  # torch._int_mm needs M > 16

    def make(copies):
        calls = []
        for _ in range(copies):
            w = torch.randint(-127, 128, (n, k), device="cuda", dtype=torch.int8)
            x = torch.randint(-127, 128, (mm, k), device="cuda", dtype=torch.int8)
            calls.append(lambda x=x, w=w: torch._int_mm(x, w.t()))
        return calls

    return time_graph(make, n * k + mm * k + mm * n * 4)


def bench_tinygemm(m, n, k, group_size=128):
    """torch's W4A16 kernel (bf16 activations); None where this torch lacks it."""
    try:
        inner_k_tiles = 8

        def make(copies):
            calls = []
            for _ in range(copies):
                codes = torch.randint(0, 16, (n, k), device="cuda", dtype=torch.int32)
                packed = ((codes[:, ::2] << 4) | codes[:, 1::2]).to(torch.uint8)
                wp = torch.ops.aten._convert_weight_to_int4pack(packed, inner_k_tiles)
                sz = torch.randn(k // group_size, n, 2, device="cuda", dtype=torch.bfloat16) * 0.01
                x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
                calls.append(lambda x=x, wp=wp, sz=sz: torch.ops.aten._weight_int4pack_mm(x, wp, group_size, sz))
            return calls

        return time_graph(make, n * k // 2 + m * k * 2 + m * n * 2)
    except Exception as e:  # noqa: BLE001 - a baseline this torch lacks is reported, not fatal
        print(f"tinygemm unavailable: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
        return None


SWEEP = {
    # bucket index in tw.CONFIGS -> (Ms timed, candidate configs)
    0: (
        (1, 16),
        [tw.KernelConfig(16, bn, 4, st, sk) for bn in (64, 128, 256) for st in (3, 5) for sk in (1, 2, 4, 8)]
        + [
            tw.KernelConfig(16, bn, 4, st, sk, fused_act=True)
            for bn, st, sk in ((32, 3, 1), (64, 3, 1), (64, 4, 2), (128, 3, 4), (64, 3, 8))
        ],
    ),
    1: (
        (64,),
        [
            tw.KernelConfig(64, 64, 4, 4),
            tw.KernelConfig(64, 64, 4, 4, split_k=2),
            tw.KernelConfig(64, 128, 4, 4),
            tw.KernelConfig(64, 128, 4, 4, split_k=2),
            tw.KernelConfig(32, 64, 4, 4),
            tw.KernelConfig(32, 128, 4, 4, split_k=2),
            tw.KernelConfig(64, 32, 4, 4),
        ],
    ),
    2: ((256,), None),
    3: ((4096,), None),
}


def _decode_candidates():
    int8 = [(32, 4, 4), (32, 8, 4), (64, 2, 4), (64, 4, 4), (64, 8, 4), (128, 2, 4), (128, 4, 8)]
    c = [tw.DecodeConfig(bn, st, w, tw.DOT_INT8, fused) for bn, st, w in int8 for fused in (True, False)]
    c += [tw.DecodeConfig(64, 4, 4, tw.DOT_FP16, True), tw.DecodeConfig(32, 4, 4, tw.DOT_FP16, True)]
    c += [tw.DecodeConfig(bn, st, w, tw.DOT_FMA, True, 1) for bn, st, w in ((16, 4, 4), (32, 2, 4), (64, 2, 8))]
    return c


def _cfg_name(c):
    if isinstance(c, tw.DecodeConfig):
        dot = {tw.DOT_INT8: "i8dot", tw.DOT_FP16: "f16dot", tw.DOT_FMA: "fma"}[c.dot]
        return f"{dot} bn{c.block_n} st{c.steps} w{c.num_warps}" + (" fused" if c.fused else " prequant")
    return f"old bm{c.block_m} bn{c.block_n} w{c.num_warps} s{c.num_stages} sk{c.split_k}" + (" fused" if c.fused_act else "")


DECODE_SWEEP_SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008), (28672, 8192)]


def decode_sweep(log, results):
    """Time the decode-kernel candidates at M = 1 and 16; install the best per bucket in tw.DECODE_CONFIGS."""
    for bucket, m in enumerate((1, 16)):
        score = {}
        for n, k in DECODE_SWEEP_SHAPES:
            row = []
            for cfg in _decode_candidates() + [tw.CONFIGS[0][1]]:
                if isinstance(cfg, tw.DecodeConfig) and cfg.block_m < m:
                    continue
                try:
                    t = bench_ours(m, n, k, "dynamic", 128, cfg)
                except Exception as e:  # noqa: BLE001 - a config that fails to compile is skipped
                    log(f"config {_cfg_name(cfg)} failed: {type(e).__name__}: {str(e)[:200]}")
                    continue
                row.append((t, cfg))
                results.append({"decode_sweep": True, "m": m, "n": n, "k": k, "cfg": _cfg_name(cfg), "us": t})
            row.sort(key=lambda r: r[0])
            for t, cfg in row:
                if isinstance(cfg, tw.DecodeConfig):
                    score[cfg] = score.get(cfg, 0.0) + t / row[0][0]
            log(f"decode sweep M={m} N={n} K={k}: " + "; ".join(f"{t:.1f}us {_cfg_name(c)}" for t, c in row))
        winner = min(score, key=score.get)
        tw.DECODE_CONFIGS[bucket] = (tw.DECODE_CONFIGS[bucket][0], winner)
        log(f"decode bucket M<={tw.DECODE_CONFIGS[bucket][0]}: {_cfg_name(winner)} (score {score[winner]:.2f})")


SWEEP_LARGE = [
    tw.KernelConfig(128, 128, 8, 3),
    tw.KernelConfig(128, 128, 8, 4),
    tw.KernelConfig(128, 64, 4, 4),
    tw.KernelConfig(128, 64, 8, 4),
    tw.KernelConfig(128, 64, 4, 5),
    tw.KernelConfig(64, 128, 4, 4),
    tw.KernelConfig(128, 256, 8, 3),
    tw.KernelConfig(256, 128, 8, 3),
    tw.KernelConfig(64, 64, 4, 4),
    tw.KernelConfig(128, 32, 4, 4),
]


SMALL_M_CANDIDATES = [  # run 9: narrow tiles without split-K (no zero fill, atomics or cast) and deeper pipelines
    tw.KernelConfig(16, bn, w, st, sk)
    for bn, w in ((16, 2), (16, 4), (32, 4))
    for st in (4, 6, 8)
    for sk in (1, 2, 4)
] + [tw.KernelConfig(16, 64, 4, 3, 8), tw.KernelConfig(16, 64, 4, 6, 4), tw.KernelConfig(16, 128, 4, 4, 2)]


GEMV_CANDIDATES = [  # the dp4a GEMV (fptq.kernels.triton_gemv), M <= 4; run 10's best five
    GemvConfig(16, 8, 1, 4), GemvConfig(16, 4, 1, 4), GemvConfig(32, 2, 4, 4), GemvConfig(32, 2, 1, 4), GemvConfig(16, 4, 4, 4),
]


def _label(c) -> str:
    if isinstance(c, GemvConfig):
        return f"gemv bn{c.block_n} ch{c.chunks} sk{c.split_k} w{c.num_warps}"
    return f"bn{c.block_n} w{c.num_warps} s{c.num_stages} sk{c.split_k}"


def small_m_sweep(log, results, ms=(1, 16), shapes=(0, 1, 6), act_mode="dynamic", group_size=128,
                  candidates=None, tag="small-M"):
    """Time candidate configs at small M against the current default and cuBLAS fp16; every
    candidate's output is checked against the default config's on the same inputs. Returns the
    winner per M (lowest sum over shapes of time / best time)."""
    candidates = candidates or SMALL_M_CANDIDATES
    score = {}
    for m in ms:
        for si in shapes:
            name, n, k = SHAPES[si]
            qweight, scales, _, _ = make_layer(n, k, group_size, True)
            x = torch.randn(m, k, device="cuda", dtype=torch.float16)
            ref = tw.w4a8_linear(x, qweight, scales, None, group_size=group_size, act_mode=act_mode).float()
            fp16 = bench_fp16(m, n, k)
            base = bench_ours(m, n, k, act_mode, group_size)
            row = []
            for cfg in candidates:
                try:
                    out = tw.w4a8_linear(x, qweight, scales, None, group_size=group_size, act_mode=act_mode, config=cfg)
                    err = float((out.float() - ref).norm() / ref.norm())
                    if not err < 1e-2:
                        log(f"WRONG {cfg}: rel err {err:.2e} at M={m} {name}")
                        continue
                    t = bench_ours(m, n, k, act_mode, group_size, cfg)
                except Exception as e:  # noqa: BLE001 - a config that fails to compile is skipped
                    log(f"config {cfg} failed: {type(e).__name__}: {str(e)[:120]}")
                    continue
                row.append((t, cfg))
                results.append({"small_m": tag, "m": m, "n": n, "k": k, "cfg": _label(cfg), "us": t,
                                "default_us": base, "fp16_us": fp16})
            row.sort(key=lambda r: r[0])
            for t, cfg in row:
                score[(m, cfg)] = score.get((m, cfg), 0.0) + t / row[0][0]
            top = "; ".join(f"{t:.1f}us {_label(c)}" for t, c in row[:3])
            log(f"{tag} M={m} {name}: fp16 {fp16:.1f}us default {base:.1f}us (x{fp16 / base:.2f}) | best {top} "
                f"(x{fp16 / row[0][0]:.2f})")
    winners = {}
    for m in ms:
        mine = {c: v for (mm, c), v in score.items() if mm == m}
        winners[m] = best = min(mine, key=mine.get)
        log(f"{tag} winner M={m}: {_label(best)} (sum of time/best over shapes {mine[best]:.2f} for {len(shapes)} shapes)")
    return winners


def _settings_sweep(log, results, tag, shapes, ms, settings, apply, two_level=False, act_mode="dynamic"):
    """Time the default W4A8 op under each `(label, params)` of `settings` (installed by
    `apply(params)`, module settings restored afterwards) on every shape and M; each output is
    checked against the first setting's. Returns the score per label (sum of time / best).
    `two_level`: layers with two-level scales (the library's default format) instead of fp16 group scales;
    `act_mode`: "dynamic" or "static" (the per-tensor scale `ours_calls` sets)."""
    saved = (tw.USE_PDL, tw.DECODE_TARGET_PROGRAMS, tw.TMA_TARGET_PROGRAMS, tw.PREFETCH_BUDGET, tw.CONFIGS[0],
             tw.USE_PREFILL, tw.PREFILL_CONFIGS, tp.CHUNK_BYTES, tw.TMA_MAX_GROUPS, tw.FUSED_HOLD, tw.FUSED_ROW_UNROLL,
             tw.FUSED_ROW_BLOCK)
    score = {}
    for m in ms:
        for name, n, k in shapes:
            qweight, scales, _, _, *chan = make_layer(n, k, 128, True, two_level=two_level)
            chan = chan[0] if chan else None
            x = torch.randn(m, k, device="cuda", dtype=torch.float16)
            act_scale = (x.float().abs().max() / 127).reshape(()) if act_mode == "static" else None
            fp16 = bench_fp16(m, n, k)
            int8 = bench_int8(m, n, k) if m > 16 else None
            row, ref = [], None
            for label, params in settings:
                apply(params)
                try:
                    out = tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode=act_mode,
                                         act_scale=act_scale, channel_scales=chan).float()
                    ref = out if ref is None else ref
                    err = float((out - ref).norm() / ref.norm())
                    if not err < 1e-2:
                        log(f"WRONG {label}: rel err {err:.2e} at M={m} {name}")
                        continue
                    t = bench_ours(m, n, k, act_mode, two_level=two_level)
                except Exception as e:  # noqa: BLE001 - reported, the others still run
                    log(f"{tag} {label} failed at M={m} {name}: {type(e).__name__}: {str(e)[:300]}")
                    continue
                finally:
                    (tw.USE_PDL, tw.DECODE_TARGET_PROGRAMS, tw.TMA_TARGET_PROGRAMS, tw.PREFETCH_BUDGET, tw.CONFIGS[0],
                     tw.USE_PREFILL, tw.PREFILL_CONFIGS, tp.CHUNK_BYTES, tw.TMA_MAX_GROUPS, tw.FUSED_HOLD, tw.FUSED_ROW_UNROLL,
                     tw.FUSED_ROW_BLOCK) = saved
                row.append((t, label))
                results.append({tag: label, "m": m, "n": n, "k": k, "us": t, "fp16_us": fp16, "int8_us": int8})
            best = min(t for t, _ in row)
            for t, label in row:
                score[label] = score.get(label, 0.0) + t / best
            log(f"{tag} M={m} {name} ({n}x{k}): fp16 {fp16:.1f}us"
                + (f" int8 {int8:.1f}us (x{fp16 / int8:.2f})" if int8 else "") + " | "
                + "; ".join(f"{label} {t:.1f}us x{fp16 / t:.2f}" + (f" ({int8 / t:.2f} int8)" if int8 else "")
                            for t, label in row))
    log(f"{tag} scores (sum of time/best): "
        + ", ".join(f"{k} {v:.2f}" for k, v in sorted(score.items(), key=lambda kv: kv[1])))
    return score


def _set_targets(target: int) -> None:
    """The program target of a sweep, for whichever decode kernel runs (Triton or TMA)."""
    tw.DECODE_TARGET_PROGRAMS = tw.TMA_TARGET_PROGRAMS = target


def decode3_sweep(log, results, ms=(1, 16)):
    """Runs 13-16: programmatic dependent launch (weights prefetched into L2 while the activations
    are quantized) and split-K only as far as needed to fill the GPU, on the unfused and the fused
    (q/k/v, gate+up) LLaMA shapes. Settings: (USE_PDL, program target (`_set_targets`), PREFETCH_BUDGET)."""
    settings = [("base", (False, 0, 0)), ("pdl", (True, 0, 24 << 20)), ("t528", (False, 528, 0)),
                ("pdl t528", (True, 528, 24 << 20)), ("pdl t264", (True, 264, 24 << 20))]

    def apply(params):
        tw.USE_PDL, target, tw.PREFETCH_BUDGET = params
        _set_targets(target)

    score = _settings_sweep(log, results, "decode3", [SHAPES[i] for i in (0, 1, 2, 6)] + FUSED_SHAPES, ms,
                            settings, apply)
    pdl, target, budget = dict(settings)[min(score, key=score.get)]
    log(f"DECODE3_WINNER pdl={int(pdl)} target={target} budget={budget}")
    return pdl, target, budget


def decode4_sweep(log, results, m=1):
    """Run 17: the decode tile width and the program target, with PDL, on every LLaMA shape and the
    fused ones at M = 1. Settings: (BLOCK_N of the M <= 16 config, program target)."""
    settings = [(f"bn{bn} t{t}", (bn, t)) for bn, t in ((64, 528), (64, 792), (64, 1056), (32, 528), (32, 1056),
                                                          (128, 528))]

    def apply(params):
        bn, target = params
        _set_targets(target)
        tw.CONFIGS[0] = (tw.CONFIGS[0][0], tw.KernelConfig(16, bn, 4, 3, split_k=8))

    _settings_sweep(log, results, "decode4", SHAPES + FUSED_SHAPES, (m,), settings, apply)


def mma_decode_sweep(log, results, ms=(1, 16)):
    """Runs 31-35: the Gluon TMA decode kernel (`gluon_decode`) against the Triton one at M <= 16,
    on every LLaMA shape and the fused ones. Settings: (M <= 16 KernelConfig, program target)."""
    kc = tw.KernelConfig
    settings = [("triton", (kc(16, 64, 4, 3, split_k=8), 528))]
    # (runs 31-33 also had a register-fed Gluon kernel and TMA rings of 8-12 stages: all slower)
    for bn, w, st, t in ((64, 4, 3, 528), (64, 4, 4, 528), (64, 4, 6, 528), (128, 4, 4, 528), (64, 4, 4, 264),
                         (128, 8, 4, 264), (64, 4, 4, 792)):
        settings.append((f"tma bn{bn} w{w} s{st} t{t}", (kc(16, bn, w, 3, split_k=16, tma_stages=st), t)))

    def apply(params):
        cfg, target = params
        _set_targets(target)
        tw.CONFIGS[0] = (tw.CONFIGS[0][0], cfg)

    score = _settings_sweep(log, results, "mma_decode", SHAPES + FUSED_SHAPES, ms, settings, apply)
    best = min((label for label in score if label != "triton"), key=score.get)
    cfg, target = dict(settings)[best]
    log(f"MMA_DECODE_WINNER decode={cfg.block_n},{cfg.num_warps},{cfg.tma_stages} target={target}")


def tma_sweep(log, results, ms=(1, 4, 16)):
    """Session 24: the TMA decode kernel's tile width, ring depth and program target again, on the layers that
    decide the M <= 16 target (70B q/o and down, within 3-25 % of 3x fp16) and three for the 7B model's decode,
    two-level scales (the default format since round 12; runs 31-35 and 104-111 swept fp16 group scales).
    Settings: (M <= 16 KernelConfig, TMA_TARGET_PROGRAMS); the first is the installed one."""
    kc, installed = tw.KernelConfig, tw.CONFIGS[0][1]
    settings = [("installed", (installed, tw.TMA_TARGET_PROGRAMS))]
    for bn, st, t in ((64, 4, 264), (64, 6, 264), (64, 3, 132), (64, 3, 396), (64, 4, 396), (64, 6, 132),
                      (128, 3, 264), (128, 4, 264), (128, 4, 132), (128, 6, 132)):
        settings.append((f"bn{bn} s{st} t{t}", (kc(16, bn, 4, 3, split_k=16, tma_stages=st), t)))

    def apply(params):
        cfg, target = params
        tw.TMA_TARGET_PROGRAMS = target
        tw.CONFIGS[0] = (tw.CONFIGS[0][0], cfg)

    names = ("70B q/o", "70B down", "70B gate/up", "7B down", "7B qkv fused", "7B gate+up fused")
    shapes = [s for s in SHAPES + FUSED_SHAPES if s[0] in names]
    score = _settings_sweep(log, results, "tma", shapes, ms, settings, apply, two_level=True)
    log(f"TMA_WINNER {min(score, key=score.get)}")


def stages_sweep(log, results, ms=(1, 4)):
    """Session 29: the TMA decode kernel's ring depth again, now that the one-launch M = 1 op reads 128-byte row
    segments (FUSED_PAIR; run 214 swept depth 4 / 6 with 64-byte ones and found nothing). Every LLaMA shape and the
    fused ones, two-level scales; at M = 4 the 2-16-row GEMM (unpaired) takes the same depth. Installed first and last."""
    installed = tw.CONFIGS[0][1]
    settings = [("installed s3", installed)] + [(f"s{st}", dataclasses.replace(installed, tma_stages=st))
                                                for st in (4, 5, 6)]
    settings.append(("installed s3 again", installed))

    def apply(cfg):
        tw.CONFIGS[0] = (tw.CONFIGS[0][0], cfg)

    score = _settings_sweep(log, results, "stages", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True)
    log(f"STAGES_WINNER {min(score, key=score.get)}")


def _outputs_close(log, tag, settings, apply, rows, restore):
    """Session 30: the output of each of `settings` (installed by `apply`) against the first one's, on every LLaMA shape,
    the fused ones and two odd ones (N not a multiple of a program's rows, K steps not a multiple of 4), at each of
    `rows`: fp16 dynamic, bf16 static with bias, and the RMSNorm inside; outputs poisoned (NaN), so unwritten ones show.
    The settings add the same products in other orders: close, not equal. `restore`: the installed setting."""
    from fptq.kernels import gluon_fallback
    from fptq.kernels.prologue import Prologue

    worst, calls = 0.0, 0
    extra = [("N 1000, 9 steps", 1000, 1152), ("N 4100, 87 steps", 4100, 11136)]
    for name, n, k in SHAPES + FUSED_SHAPES + extra:
        qweight, scales, _, _, chan = make_layer(n, k, 128, True, two_level=True)
        bias = (torch.randn(n, device="cuda") * 0.1).half()
        for m, (dtype, act_mode, norm) in itertools.product(rows, ((torch.float16, "dynamic", False),
                                                                    (torch.bfloat16, "static", False),
                                                                    (torch.float16, "dynamic", True))):
            x = (torch.randn(m, k, device="cuda") * torch.rand(m, k, device="cuda")).to(dtype)
            prologue = Prologue("rmsnorm", (1 + 0.3 * torch.randn(k, device="cuda")).to(dtype), 1e-5) if norm else None
            act_scale = torch.tensor(0.02, device="cuda") if act_mode == "static" else None
            b = bias.to(dtype) if act_mode == "static" else None
            outs = []
            for _, params in settings:
                apply(params)
                out = torch.full((m, n), float("nan"), device="cuda", dtype=dtype)
                tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode=act_mode, act_scale=act_scale, bias=b,
                               channel_scales=chan, prologue=prologue, out=out)
                outs.append(out.float())
                calls += 1
            apply(restore)
            # (NaN, i.e. unwritten, anywhere, the first setting's output included: infinitely far)
            written = all(bool(torch.isfinite(o).all()) for o in outs)
            errs = [float((o - outs[0]).norm() / outs[0].norm()) if written else float("inf") for o in outs[1:]]
            worst = max([worst] + errs)
            log(f"{tag} close {name} M={m} {str(dtype)[6:]} {act_mode}{' norm' if norm else ''}: "
                + " ".join(f"{e:.1e}" for e in errs))
    fell_back = any(gluon_fallback.failed(key) for key in ("decode", "decode_fused", "decode_prologue"))
    log(f"{tag.upper()}_CLOSE worst rel diff {worst:.2e} over {calls} calls ({'OK' if worst < 2e-3 else 'TOO FAR'}); "
        f"decode launches {'FELL BACK (a Gluon error)' if fell_back else 'ran'}")


def ksub_sweep(log, results, ms=(1,)):
    """Session 30: the one-launch M = 1 op unsplit with KSUB K steps a weight-ring slot (FUSED_KSUB: a program's slot
    one box of KSUB * 64 bytes of 64 / KSUB rows, no split-K epilogue) against the installed split launch: the outputs
    (`_outputs_close`), then the timings, alternated. Settings: (FUSED_KSUB, FUSED_KSUB_STAGES): -1 the rule that picks
    KSUB per shape, 0 off."""
    settings = [("rule", (-1, 0)), ("off", (0, 0)), ("ksub4", (4, 0)), ("ksub2", (2, 0)), ("rule again", (-1, 0)),
                ("off again", (0, 0))]  # (run 262: "off" installed, KSUB 2 / 4, their rings 4 / 6, KSUB 8)
    saved = (tw.FUSED_KSUB, tw.FUSED_KSUB_STAGES, tw.FUSED_KSUB_MIN_PROGRAMS)

    def apply(params):
        tw.FUSED_KSUB, tw.FUSED_KSUB_STAGES = params

    tw.FUSED_KSUB_MIN_PROGRAMS = 1  # (the odd shapes too)
    _outputs_close(log, "ksub", settings[:4], apply, (1,), saved[:2])
    tw.FUSED_KSUB_MIN_PROGRAMS = saved[2]
    score = _settings_sweep(log, results, "ksub", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True)
    tw.FUSED_KSUB, tw.FUSED_KSUB_STAGES, tw.FUSED_KSUB_MIN_PROGRAMS = saved
    log(f"KSUB_WINNER {min(score, key=score.get)}")


def dksub_sweep(log, results, ms=(2, 4, 8)):
    """Session 30: the 2-16-row GEMM of the two-launch op unsplit with KSUB K steps a slot over 16 / KSUB rows
    (DECODE_KSUB) against the installed split launch: the outputs at 2 / 3 / 4 / 8 rows (`_outputs_close`), then the
    ops timed, alternated twice. Settings: DECODE_KSUB (-1 the rule, 0 off; 4 applies up to 4 rows, 2 up to 8)."""
    settings = [("rule", -1), ("off", 0), ("ksub2", 2), ("rule again", -1), ("off again", 0)]
    # (run 267: off / KSUB 4 / KSUB 2, twice)
    saved = (tw.DECODE_KSUB, tw.FUSED_KSUB_MIN_PROGRAMS)

    def apply(ksub):
        tw.DECODE_KSUB = ksub

    tw.FUSED_KSUB_MIN_PROGRAMS = 1
    _outputs_close(log, "dksub", settings[:3], apply, (2, 3, 4, 8), saved[0])
    tw.FUSED_KSUB_MIN_PROGRAMS = saved[1]
    score = _settings_sweep(log, results, "dksub", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True)
    tw.DECODE_KSUB, tw.FUSED_KSUB_MIN_PROGRAMS = saved
    log(f"DKSUB_WINNER {min(score, key=score.get)}")


def flags_sweep(log, results, ms=(1, 4, 16)):
    """Session 31: the TMA decode kernel's split-K reduction without an arrival counter (SPLIT_FLAGS: the last slice
    waits for the others' flagged partials in a kept zeroed buffer) against the counter: the outputs at 1 / 2 / 4 / 16
    rows (the same sum in the same order: equal), then the ops timed, alternated twice, every shape (the unsplit
    launches are the control)."""
    settings = [("flags", True), ("counters", False), ("flags again", True), ("counters again", False)]
    saved = tw.SPLIT_FLAGS

    def apply(on):
        tw.SPLIT_FLAGS = on

    _outputs_close(log, "flags", settings[:2], apply, (1, 2, 4, 16), saved)
    score = _settings_sweep(log, results, "flags", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True)
    tw.SPLIT_FLAGS = saved
    log(f"FLAGS_WINNER {min(score, key=score.get)}")


def groups_sweep(log, results, ms=(1, 4, 16)):
    """Session 24: the staged group scales' bound (`TMA_MAX_GROUPS`), which sets the K split of the long-K layers
    (70B down: 4 slices at 64 groups, 3 at 128, 2 at 128 with 132 programs; each program of the one-launch M = 1 op
    reads the whole row), with 70B gate/up (unsplit) as the control; two-level scales.
    Settings: (TMA_MAX_GROUPS, TMA_TARGET_PROGRAMS); the first is the installed pair."""
    settings = [("installed", (tw.TMA_MAX_GROUPS, tw.TMA_TARGET_PROGRAMS)), ("g128 t264", (128, 264)),
                ("g128 t132", (128, 132))]

    def apply(params):
        tw.TMA_MAX_GROUPS, tw.TMA_TARGET_PROGRAMS = params

    shapes = [s for s in SHAPES if s[0] in ("70B down", "70B gate/up", "7B down")]
    score = _settings_sweep(log, results, "groups", shapes, ms, settings, apply, two_level=True)
    log(f"GROUPS_WINNER {min(score, key=score.get)}")


def trigger_sweep(log, results, ms=(1, 4, 16)):
    """Session 32: the TMA decode kernel letting the next op's kernel be placed before it is done (DECODE_TRIGGER: 1
    once a program has requested its first ring slots, 2 after its K steps) against not (0: the next op's programs
    are placed when the grid ends), ops back to back as in every timing here; alternated twice, every shape."""
    settings = [("off", 0), ("start", 1), ("end", 2), ("off again", 0), ("start again", 1), ("end again", 2)]
    saved = tw.DECODE_TRIGGER

    def apply(trigger):
        tw.DECODE_TRIGGER = trigger

    score = _settings_sweep(log, results, "trigger", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True)
    tw.DECODE_TRIGGER = saved
    log(f"TRIGGER_WINNER {min(score, key=score.get)}")


def pdl_sweep(log, results, ms=(4, 16)):
    """Session 32: where the 2-16-row op loses to its GEMM alone (run 274: 70B gate+up fused at 16 rows 107 against
    97 µs, 70B down at 4 rows 56.5 against 51.6): the op with programmatic dependent launch as installed, without the
    quantization kernel's (QUANT_PDL), without any (USE_PDL), without the decode GEMM's trigger; then the GEMM alone
    (pre-quantized activations, as installed and without PDL), every shape."""
    settings = [("installed", (True, True, tw.DECODE_TRIGGER)), ("no quant pdl", (True, False, tw.DECODE_TRIGGER)),
                ("no pdl", (False, False, tw.DECODE_TRIGGER)), ("no trigger", (True, True, 0)),
                ("installed again", (True, True, tw.DECODE_TRIGGER))]
    saved = settings[0][1]

    def apply(params):
        tw.USE_PDL, tw.QUANT_PDL, tw.DECODE_TRIGGER = params

    score = _settings_sweep(log, results, "pdl", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True)
    apply(saved)
    log(f"PDL_WINNER {min(score, key=score.get)}")
    for m in ms:
        for name, n, k in SHAPES + FUSED_SHAPES:
            alone = bench_gemm_alone(m, n, k, two_level=True)
            apply((False, False, saved[2]))
            plain = bench_gemm_alone(m, n, k, two_level=True)
            apply(saved)
            results.append({"pdl": "gemm alone", "m": m, "n": n, "k": k, "us": alone, "us_no_pdl": plain})
            log(f"pdl gemm alone M={m} {name}: {alone:.1f}us, without PDL {plain:.1f}us")


def waves_sweep(log, results, ms=(4, 8, 16)):
    """Session 32: run 279 found PDL costing the 2-16-row op ~6 µs on 70B gate+up fused at 16 rows (896 programs, 3.4
    rounds of TMA_TARGET_PROGRAMS) while it pays on every smaller grid. Is it the grid's rounds? The op with and without
    PDL on wide layers of 1.5-5 rounds (K 4096 / 8192 / 16384), alternated twice."""
    shapes = [(f"{n}x{k}", n, k) for n, k in ((32768, 8192), (40960, 8192), (49152, 8192), (57344, 8192),
                                              (65536, 8192), (65536, 4096), (81920, 4096), (28672, 16384))]
    settings = [("pdl", True), ("no pdl", False), ("pdl again", True), ("no pdl again", False)]

    def apply(on):
        tw.USE_PDL = on

    score = _settings_sweep(log, results, "waves", shapes, ms, settings, apply, two_level=True)
    tw.USE_PDL = True
    log(f"WAVES_WINNER {min(score, key=score.get)}")


def placement_probe(log, results, ms=(16,)):
    """Session 32: run 280's open question — is the PDL loss on wide layers (K 8192, 512-896 programs) the GEMM's
    programs placed behind the quantization kernel's (8 warps each at these rows)? The op with PDL and the
    quantization programs at 8 (installed) / 4 / 2 warps, against no PDL; 70B gate/up (448 programs, PDL pays) the
    control. Alternated twice."""
    shapes = [("70B gate/up", 28672, 8192), ("32768x8192", 32768, 8192), ("57344x8192", 57344, 8192)]
    settings = [("pdl", (True, None)), ("pdl quant 4 warps", (True, 4)), ("pdl quant 2 warps", (True, 2)),
                ("no pdl", (False, None)), ("pdl again", (True, None)), ("pdl quant 4 warps again", (True, 4)),
                ("pdl quant 2 warps again", (True, 2)), ("no pdl again", (False, None))]

    def apply(params):
        tw.USE_PDL, tw.QUANT_WARPS = params

    score = _settings_sweep(log, results, "placement", shapes, ms, settings, apply, two_level=True)
    apply((True, None))
    log(f"PLACEMENT_WINNER {min(score, key=score.get)}")


def static_rows_sweep(log, results, ms=(2, 4)):
    """Session 32: 2-4 rows of static activations in one launch (FUSED_STATIC_ROWS: each program quantizes its own K
    slice of every row, no absmax) against the two launches, every shape, alternated twice; the outputs must be equal
    bit for bit (the same codes, products and order; 70B gate+up fused, whose two launches take KSUB 2, within 1e-4)."""
    settings = [("two launches", 0), ("one launch", 4), ("two launches again", 0), ("one launch again", 4)]
    saved = tw.FUSED_STATIC_ROWS

    def apply(rows):
        tw.FUSED_STATIC_ROWS = rows

    for name, n, k in SHAPES + FUSED_SHAPES:
        qweight, scales, _, _, chan = make_layer(n, k, 128, True, two_level=True)
        for m in (2, 3, 4):
            x = torch.randn(m, k, device="cuda", dtype=torch.float16)
            sx = (x.float().abs().max() / 127).reshape(())
            outs = []
            for rows in (0, 4):
                apply(rows)
                out = torch.full((m, n), float("nan"), device="cuda", dtype=torch.float16)
                tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode="static", act_scale=sx,
                               channel_scales=chan, out=out)
                outs.append(out.float())
            err = float((outs[1] - outs[0]).norm() / outs[0].norm())
            exact = torch.equal(outs[0], outs[1])
            log(f"static rows {name} M={m}: " + ("equal" if exact else f"rel {err:.1e}")
                + ("" if torch.isfinite(outs[1]).all() else " UNWRITTEN"))
    apply(saved)
    score = _settings_sweep(log, results, "srows", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True,
                            act_mode="static")
    apply(saved)
    log(f"SROWS_WINNER {min(score, key=score.get)}")


def peers_sweep(log, results, ms=(1, 4, 16)):
    """Session 32 (prepared, not yet run): the flagged reduction's last slice reading the other slices' partials all at
    once (255 registers at 16 slices with a runtime M) against 4 / 8 at a time (`FLAG_PEER_GROUP`), on the layers split
    16 ways (N 1024: an unfused 70B k / v projection, and at K 4096) and 4096² (5 slices) as the control; alternated
    twice. The outputs must equal the all-at-once ones bit for bit (`test_gpu_flag_peer_groups_agree`)."""
    shapes = [("70B k/v", 1024, 8192), ("1024x4096", 1024, 4096), ("7B qkv/o", 4096, 4096)]
    settings = [("all", 0), ("4", 4), ("8", 8), ("all again", 0), ("4 again", 4), ("8 again", 8)]
    saved = tw.FLAG_PEER_GROUP

    def apply(group):
        tw.FLAG_PEER_GROUP = group

    score = _settings_sweep(log, results, "peers", shapes, ms, settings, apply, two_level=True)
    apply(saved)
    log(f"PEERS_WINNER {min(score, key=score.get)}")


def swap_trigger_sweep(log, results, ms=(256, 1024)):
    """Session 32: the prefill swap kernel's loader letting the next op's quantization kernel be placed after its last
    requests (`gluon_swap.TRIGGER`) against not, ops back to back; alternated twice, the eight LLaMA-2 shapes."""
    from fptq.kernels import gluon_swap

    settings = [("off", False), ("on", True), ("off again", False), ("on again", True)]
    saved = gluon_swap.TRIGGER

    def apply(on):
        gluon_swap.TRIGGER = on

    score = _settings_sweep(log, results, "swaptrig", SHAPES, ms, settings, apply, two_level=True)
    gluon_swap.TRIGGER = saved
    log(f"SWAPTRIG_WINNER {min(score, key=score.get)}")


def target_sweep(log, results, ms=(1, 4, 16)):
    """Session 24: the TMA decode kernel's program target (the K split of the layers with few column tiles) on every
    LLaMA shape and the fused ones, two-level scales; run 217 found 70B down slower with fewer slices (3 or 2
    instead of 4). Session 32 timed it again at 1 / 4 / 16 rows once split launches no longer paid for an arrival
    counter (SPLIT_FLAGS). Settings: TMA_TARGET_PROGRAMS; the first is the installed one, timed again last."""
    settings = ([("installed", tw.TMA_TARGET_PROGRAMS)] + [(f"t{t}", t) for t in (396, 528)]
                + [("installed again", tw.TMA_TARGET_PROGRAMS)])

    def apply(target):
        tw.TMA_TARGET_PROGRAMS = target

    score = _settings_sweep(log, results, "target", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True)
    log(f"TARGET_WINNER {min(score, key=score.get)}")


def act_sweep(log, results, ms=(1, 4, 16)):
    """Session 32: the decode sizes with the activations FPTQ gives most layers (per-tensor static: 207 of 210 on the
    bundled model) against per-token dynamic, and the GEMM alone on activations quantized beforehand (what a one-launch
    op could reach at 2-16 rows); every shape and the fused ones, two-level scales, two alternated rounds."""
    kinds = (("dynamic", lambda m, n, k: bench_ours(m, n, k, "dynamic", two_level=True)),
             ("static", lambda m, n, k: bench_ours(m, n, k, "static", two_level=True)),
             ("gemm alone", lambda m, n, k: bench_gemm_alone(m, n, k, two_level=True)))
    for m in ms:
        for name, n, k in SHAPES + FUSED_SHAPES:
            fp16 = bench_fp16(m, n, k)
            times = {label: [] for label, _ in kinds}
            for _ in range(2):
                for label, bench in kinds:
                    times[label].append(bench(m, n, k))
            for label, ts in times.items():
                results.append({"act": label, "m": m, "n": n, "k": k, "us": min(ts), "us_all": ts, "fp16_us": fp16})
            log(f"act M={m} {name} ({n}x{k}): fp16 {fp16:.1f}us  " + "  ".join(
                f"{label} " + "/".join(f"{t:.1f}" for t in ts) + f" x{fp16 / min(ts):.2f}" for label, ts in times.items()))


def prologue_sweep(log, results, ms=(1,)):
    """Session 25: how the one-launch M = 1 op reads the row after its PDL wait (run 219: that part is on the op's
    critical path): the program's own K slice held in registers from before the absmax on split launches
    (FUSED_HOLD), the absmax passes unrolled (FUSED_ROW_UNROLL), 4096-column passes (FUSED_ROW_BLOCK); every LLaMA
    shape and the fused ones, two-level scales. Each setting's output must equal the installed one's bit for bit (the
    same codes and scale). Settings: (HOLD, UNROLL, ROW_BLOCK); the first is installed, and timed again last (the
    run's noise). Runs 221-222 also timed wider quantization passes and holding unsplit rows (slower, removed), run
    227 the held load masked to the slice's steps (no faster, removed)."""
    first = (tw.FUSED_HOLD, tw.FUSED_ROW_UNROLL, tw.FUSED_ROW_BLOCK)
    settings = [("installed", first), ("neither (session 24)", (False, False, 8192)),
                ("unroll only", (False, True, 8192)), ("b4096", (first[0], first[1], 4096)), ("installed again", first)]

    def apply(params):
        tw.FUSED_HOLD, tw.FUSED_ROW_UNROLL, tw.FUSED_ROW_BLOCK = params

    saved = settings[0][1]
    for name, n, k in SHAPES + FUSED_SHAPES:  # bit for bit against the installed reading of the row
        qweight, scales, _, _, *chan = make_layer(n, k, 128, True, two_level=True)
        x = torch.randn(1, k, device="cuda", dtype=torch.float16) * torch.rand(1, k, device="cuda", dtype=torch.float16)
        outs = []
        for label, params in settings:
            apply(params)
            outs.append((label, tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode="dynamic",
                                               channel_scales=chan[0] if chan else None)))
        apply(saved)
        bad = [label for label, o in outs[1:] if not torch.equal(o, outs[0][1])]
        log(f"prologue exact {name}: " + ("all equal" if not bad else f"DIFFERENT {bad}"))
    score = _settings_sweep(log, results, "prologue", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True)
    log(f"PROLOGUE_WINNER {min(score, key=score.get)}")


def pair_sweep(log, results, ms=(1,)):
    """Session 28: the one-launch M = 1 op with two K steps a weight-ring slot (FUSED_PAIR: 128 contiguous bytes a
    weight row a TMA box instead of 64), installed (one step) timed first and last. Bit for bit the same output (same
    steps, same order) on every LLaMA shape, the fused ones, odd slices and step counts, bf16 and static rows, with and
    without the RMSNorm inside."""
    from fptq.kernels.prologue import Prologue

    settings = [("installed", 0), ("pair", 1), ("pair sequential", 2), ("installed again", 0), ("pair again", 1),
                ("pair sequential again", 2)]

    def apply(pair):
        tw.FUSED_PAIR = pair

    extra = [("odd 7-step slices", 4096, 4096), ("9 steps, K 1152", 1000, 1152), ("87 steps, K 11136", 4096, 11136)]
    bad = 0
    for name, n, k in SHAPES + FUSED_SHAPES + extra:
        qweight, scales, _, _, chan = make_layer(n, k, 128, True, two_level=True)
        for dtype, act_mode, norm in ((torch.float16, "dynamic", False), (torch.bfloat16, "static", False),
                                      (torch.float16, "dynamic", True)):
            x = (torch.randn(1, k, device="cuda") * torch.rand(1, k, device="cuda")).to(dtype)
            x[0, 3] = float("nan") if norm else x[0, 3]
            prologue = Prologue("rmsnorm", (1 + 0.3 * torch.randn(k, device="cuda")).to(dtype), 1e-5) if norm else None
            act_scale = torch.tensor(0.02, device="cuda") if act_mode == "static" else None
            outs = []
            for _, pair in settings[:3]:
                apply(pair)
                outs.append(tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode=act_mode,
                                           act_scale=act_scale, channel_scales=chan, prologue=prologue))
            apply(0)
            same = all(torch.equal(outs[0].nan_to_num(7.0), o.nan_to_num(7.0)) for o in outs[1:])
            bad += not same
            log(f"pair exact {name} {str(dtype)[6:]} {act_mode}{' norm' if norm else ''}: "
                + ("equal" if same else "DIFFERENT"))
    log(f"PAIR_EXACT {'all equal' if not bad else f'{bad} DIFFERENT'}")
    score = _settings_sweep(log, results, "pair", SHAPES + FUSED_SHAPES, ms, settings, apply, two_level=True)
    apply(0)
    log(f"PAIR_WINNER {min(score, key=score.get)}")


def prefill_sweep(log, results, ms=(256, 1024, 4096)):
    """Runs 19-25: the unpack-then-GEMM path (`triton_prefill`; Triton or Gluon kernel, tile shapes)
    against the tiled kernel at prefill M, then the fp8 activation option with the winner.
    Settings: (USE_PREFILL, PrefillConfig or None, CHUNK_BYTES)."""
    pc = tp.PrefillConfig
    settings = [("tiled", (False, None, tp.CHUNK_BYTES))]
    for cfg in (pc(64, 128, 4, 4), pc(128, 128, 8, 4, wgmma=True), pc(64, 128, 4, 4, wgmma=True),
                pc(64, 128, 4, 3, wgmma=True, maxnreg=168), pc(64, 128, 4, 2, wgmma=True, maxnreg=168)):
        settings.append((_prefill_label(cfg), (True, cfg, tp.CHUNK_BYTES)))

    saved = tw.PREFILL_MIN_M, tw.PREFILL_CONFIGS, tp.CHUNK_BYTES
    shapes = [SHAPES[i] for i in (0, 1, 2, 6)] + FUSED_SHAPES[:2]
    score = _settings_sweep(log, results, "prefill", shapes, ms, settings, _apply_prefill)
    best = min(score, key=score.get)
    use, cfg, chunk = dict(settings)[best]
    cfg = cfg or saved[1][-1][1]  # "tiled" won: report the installed unpacked config
    log(f"PREFILL_WINNER {best}: prefill={cfg.block_m},{cfg.block_n},{cfg.num_warps},{cfg.num_stages},"
        f"{int(cfg.wgmma)},{cfg.maxnreg or 0} chunk={chunk}")
    # the fp8 activation option with the winner and with the installed Triton kernel
    for label, c in ((best, cfg), ("triton u64x128w4s4", pc(64, 128, 4, 4))):
        tw.PREFILL_CONFIGS, tp.CHUNK_BYTES = [(1 << 62, c)], chunk
        for m in ms[1:]:
            for name, n, k in shapes:
                t = bench_ours(m, n, k, "dynamic", fp8=True)
                results.append({"prefill_fp8": label, "m": m, "n": n, "k": k, "us": t})
                log(f"prefill fp8 {label} M={m} {name}: {t:.1f}us")
    tw.PREFILL_MIN_M, tw.PREFILL_CONFIGS, tp.CHUNK_BYTES = saved
    return use, cfg, chunk


def _apply_prefill(params):
    """Install (USE_PREFILL, PrefillConfig or None, CHUNK_BYTES), the unpacked path from M = 17 on."""
    tw.USE_PREFILL, cfg, tp.CHUNK_BYTES = params
    tw.PREFILL_MIN_M = [(1 << 62, 17, 17)]
    if cfg is not None:
        tw.PREFILL_CONFIGS = [(1 << 62, cfg)]


def prefill_threshold_sweep(log, results, ms=(128, 256, 384, 512)):
    """Run 28: the tiled kernel against the installed prefill path (run 28: the unpacked one; since round 9 the
    swap kernel where it serves the layer, its tile by `swap_tile`) at the M where PREFILL_MIN_M is chosen, on
    every LLaMA shape and the fused ones."""
    saved = tw.PREFILL_MIN_M, tw.PREFILL_CONFIGS, tp.CHUNK_BYTES
    settings = [("tiled", (False, None, tp.CHUNK_BYTES)), ("installed", (True, saved[1][-1][1], tp.CHUNK_BYTES)),
                ("unpacked 64x64", (True, tp.PrefillConfig(64, 64, 4, 4), tp.CHUNK_BYTES))]
    _settings_sweep(log, results, "threshold", SHAPES + FUSED_SHAPES[:2], ms, settings, _apply_prefill)
    tw.PREFILL_MIN_M, tw.PREFILL_CONFIGS, tp.CHUNK_BYTES = saved


def _prefill_label(cfg) -> str:
    regs = f"r{cfg.maxnreg}" if cfg.maxnreg else ""
    return f"{'wg' if cfg.wgmma else 'u'}{cfg.block_m}x{cfg.block_n}w{cfg.num_warps}s{cfg.num_stages}{regs}"


def per_channel_probe(log, results, ms=(1024, 4096)):
    """The ceiling of a format without per-group scaling in the K loop (QServe-style): the same
    kernel with per-channel weights (int32 accumulation over all of K) next to group 128, fp16 and
    cuBLAS int8 W8A8, at prefill sizes."""
    for _, n, k in (SHAPES[0], SHAPES[1], SHAPES[2]):
        for m in ms:
            r = {"probe": "per-channel", "m": m, "n": n, "k": k, "g128": bench_ours(m, n, k, "dynamic", 128),
                 "per_channel": bench_ours(m, n, k, "dynamic", k), "fp16": bench_fp16(m, n, k), "int8": bench_int8(m, n, k)}
            results.append(r)
            log(f"per-channel probe M={m} {n}x{k}: g128 {r['g128']:.1f}us (x{r['fp16'] / r['g128']:.2f} fp16)  "
                f"per-channel {r['per_channel']:.1f}us (x{r['fp16'] / r['per_channel']:.2f})  fp16 {r['fp16']:.1f}  "
                f"int8 {r['int8']:.1f} (x{r['fp16'] / r['int8']:.2f})")


def sweep(log, results):
    """Time candidate configs per M bucket on three shapes; install each bucket's best in tw.CONFIGS."""
    for bucket, (ms, configs) in SWEEP.items():
        configs = configs or SWEEP_LARGE
        score = {}
        for m in ms:
            for _, n, k in (SHAPES[0], SHAPES[1], SHAPES[6]):
                row = []
                for cfg in configs:
                    try:
                        t = bench_ours(m, n, k, "dynamic", 128, cfg)
                    except Exception as e:  # noqa: BLE001 - a config that fails to compile is skipped
                        log(f"config {cfg} failed: {type(e).__name__}: {str(e)[:120]}")
                        continue
                    row.append((t, cfg))
                    results.append({"sweep": True, "m": m, "n": n, "k": k, "cfg": cfg.__dict__, "us": t})
                row.sort(key=lambda r: r[0])
                for t, cfg in row:
                    score[cfg] = score.get(cfg, 0.0) + t / row[0][0]
                best = ", ".join(
                    f"{t:.1f}us bm{c.block_m} bn{c.block_n} w{c.num_warps} s{c.num_stages} sk{c.split_k}"
                    + (" fused" if c.fused_act else "")
                    for t, c in row[:3]
                )
                log(f"sweep M={m} N={n} K={k}: {best}")
        winner = min(score, key=score.get)
        tw.CONFIGS[bucket] = (tw.CONFIGS[bucket][0], winner)
        log(f"bucket M<={tw.CONFIGS[bucket][0]}: {winner} (score {score[winner]:.2f})")


def _studies() -> list:
    """The studies `main` can run after the check, in this order: (flag, function, its --help)."""
    return [
        ("prologue_sweep", prologue_sweep,
         "session 25: how the one-launch M = 1 op reads the row after its PDL wait, two-level scales"),
        ("pair_sweep", pair_sweep,
         "session 28: the one-launch M = 1 op with two K steps a weight-ring slot (FUSED_PAIR)"),
        ("stages_sweep", stages_sweep,
         "session 29: the TMA decode kernel's ring depth (3-6) with the one-launch op's paired slots"),
        ("ksub_sweep", ksub_sweep,
         "session 30: the one-launch M = 1 op unsplit with K steps of a slot spread over the MMA rows"),
        ("dksub_sweep", dksub_sweep,
         "session 30: the 2-16-row GEMM unsplit with K steps of a slot spread over the MMA rows"),
        ("flags_sweep", flags_sweep,
         "session 31: split-K without an arrival counter (SPLIT_FLAGS) against the counter"),
        ("trigger_sweep", trigger_sweep,
         "session 32: the decode GEMM letting the next op's kernel be placed early (DECODE_TRIGGER) at M = 1 / 4 / 16"),
        ("pdl_sweep", pdl_sweep,
         "session 32: the 2-16-row op with / without each programmatic dependent launch, and the GEMM alone"),
        ("waves_sweep", waves_sweep, "session 32: the 2-16-row op with / without PDL on wide layers (grid rounds)"),
        ("placement_probe", placement_probe,
         "session 32: the PDL loss on wide layers against the quantization programs' warps"),
        ("static_rows_sweep", static_rows_sweep,
         "session 32: 2-4 rows of static activations in one launch (FUSED_STATIC_ROWS) against two"),
        ("peers_sweep", peers_sweep,
         "session 32: the flagged reduction's peers read all at once against a few at a time (FLAG_PEER_GROUP)"),
        ("swap_trigger_sweep", swap_trigger_sweep,
         "session 32: the prefill swap kernel letting the next op's kernel be placed early (gluon_swap.TRIGGER)"),
        ("act_sweep", act_sweep,
         "session 32: static against dynamic activations and the GEMM alone at M = 1 / 4 / 16, every shape"),
        ("target_sweep", target_sweep,
         "session 24 / 32: the TMA decode kernel's program target (K split) at M = 1 / 4 / 16, every shape"),
        ("groups_sweep", groups_sweep,
         "session 24: the staged group scales' bound (the K split of long-K layers) at M <= 16"),
        ("tma_sweep", tma_sweep,
         "session 24: the TMA decode kernel's tile width, ring depth and program target, two-level scales"),
        ("mma_decode", mma_decode_sweep, "run 31: the Gluon mma.sync decode kernel vs Triton, M <= 16"),
        ("decode3", decode3_sweep, "run 13: PDL + L2 prefetch, split-K by program count"),
        ("per_channel_probe", per_channel_probe, "run 14: per-channel vs group-128 at prefill M"),
        ("prefill_threshold", prefill_threshold_sweep, "run 28: tiled vs unpacked at M = 128-512"),
        ("prefill_sweep", prefill_sweep, "run 19: unpack-then-GEMM tiles and chunks at prefill M"),
        ("decode4", decode4_sweep, "run 17: decode tile width x program target at M = 1"),
        ("small_m_sweep", small_m_sweep, "run 9: narrow split-K-free tiles at M <= 16"),
        ("decode_sweep", decode_sweep, "sweep the single-launch decode kernel (M <= 16)"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--gemv-sweep", action="store_true", help="run 10: the dp4a GEMV at M = 1, 4")
    for flag, _, text in _studies():
        ap.add_argument("--" + flag.replace("_", "-"), action="store_true", help=text)
    ap.add_argument("--old-decode", action="store_true", help="also time the round-1 decode path (M <= 16)")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--decode-check-only", action="store_true", help="check only the single-launch decode kernel")
    ap.add_argument("--shapes", default="all", help="'all' or comma-separated indices into SHAPES")
    ap.add_argument("--ms", default=",".join(map(str, MS)))
    ap.add_argument("--extra", action="store_true", help="also time static, W4A16 ours, tinygemm, fp8, g64")
    ap.add_argument("--group", type=int, default=128, help="weight group size of the W4A8 column (-1: per channel)")
    ap.add_argument("--two-level", action="store_true", help="also time W4A8 with two-level scales (w4a8_2l) at every M")
    ap.add_argument("--gemm-alone", action="store_true",
                    help="also the GEMM alone on pre-quantized activations (w4a8_gemm; two-level with --two-level): at decode "
                         "sizes, what a one-launch op could reach")
    args = ap.parse_args()
    logf = open(f"{args.out}/gemm_log.txt", "a")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    import triton

    log(f"GPU {torch.cuda.get_device_name()} | torch {torch.__version__} | triton {triton.__version__}")
    ok = True
    if not args.no_check:
        t0 = time.time()
        ok = check_decode(log) and (args.decode_check_only or check_correctness(log))
        log(f"check took {time.time() - t0:.0f}s")
    results = []
    if args.sweep:
        t0 = time.time()
        sweep(log, results)
        log(f"sweep took {time.time() - t0:.0f}s")
    if args.gemv_sweep:
        t0 = time.time()
        winners = small_m_sweep(log, results, ms=(1, 4), shapes=(0, 1, 2, 6), candidates=GEMV_CANDIDATES, tag="gemv")
        w = winners[1]
        log(f"GEMV_WINNER {w.block_n},{w.chunks},{w.split_k},{w.num_warps}")
        log(f"gemv sweep took {time.time() - t0:.0f}s")
    # the other studies, each timed in the log, in this order
    for flag, study, _ in _studies():
        if getattr(args, flag):
            t0 = time.time()
            study(log, results)
            log(f"{flag} took {time.time() - t0:.0f}s")
    shapes = SHAPES if args.shapes == "all" else [SHAPES[int(i)] for i in args.shapes.split(",")]
    ms = [int(v) for v in args.ms.split(",")]
    t0 = time.time()
    table = []
    for name, n, k in shapes:
        for m in ms:
            gs = k if args.group == -1 else args.group
            r = {"shape": name, "m": m, "n": n, "k": k, "group": gs}
            r["w4a8"] = bench_ours(m, n, k, "dynamic", gs)
            r["fp16"] = bench_fp16(m, n, k)
            r["int8"] = bench_int8(m, n, k)
            if args.two_level and args.group != -1:
                r["w4a8_2l"] = bench_ours(m, n, k, "dynamic", gs, two_level=True)
            if args.gemm_alone:
                r["w4a8_gemm"] = bench_gemm_alone(m, n, k, gs, args.two_level and args.group != -1)
            if args.old_decode and m <= 16:
                r["w4a8_old"] = bench_ours(m, n, k, "dynamic", 128, tw.CONFIGS[0][1])
                r["w4a8_static"] = bench_ours(m, n, k, "static")
            if args.extra and m in (1, 16, 1024, 8192):
                r["w4a8_static"] = bench_ours(m, n, k, "static")
                r["w4a8_g64"] = bench_ours(m, n, k, "dynamic", 64)
                r["w4a16"] = bench_ours(m, n, k, "none")
                r["tinygemm"] = bench_tinygemm(m, n, k)
                if m > 16:
                    r["w4a8_fp8"] = bench_ours(m, n, k, "dynamic", fp8=True)
            r["tops"] = 2 * m * n * k / r["w4a8"] / 1e6
            r["weight_tbps"] = (n * k / 2 + n * k / gs * 2) / r["w4a8"] / 1e6
            table.append(r)
            extra = " ".join(f"{key}={r[key]:.1f}" for key in r if key.startswith(("w4a8_", "w4a16", "tinygemm")) and r[key])
            log(
                f"{name:12s} M={m:5d}  w4a8 {r['w4a8']:8.1f}us  fp16 {r['fp16']:8.1f}  int8 {r['int8']:8.1f}  "
                f"x{r['fp16'] / r['w4a8']:.2f} vs fp16  x{r['int8'] / r['w4a8']:.2f} vs int8  "
                f"{r['tops']:.0f} TOP/s  {r['weight_tbps']:.2f} TB/s  {extra}"
            )
    log(f"timing took {time.time() - t0:.0f}s")
    with open(f"{args.out}/gemm.json", "w") as f:
        configs = [(bound, cfg.__dict__) for bound, cfg in tw.CONFIGS + tw.DECODE_CONFIGS]
        json.dump({"gpu": torch.cuda.get_device_name(), "ok": ok, "configs": configs, "table": table, "sweep": results}, f, indent=1)
    log("SUMMARY " + ("correctness OK" if ok else "CORRECTNESS FAILED"))
    for r in table:
        old = f" old {r['w4a8_old']:.1f}us" if "w4a8_old" in r else ""
        st = f" static {r['w4a8_static']:.1f}us x{r['fp16'] / r['w4a8_static']:.2f}" if r.get("w4a8_static") else ""
        st += f" two-level {r['w4a8_2l']:.1f}us x{r['fp16'] / r['w4a8_2l']:.2f}" if r.get("w4a8_2l") else ""
        st += f" GEMM alone {r['w4a8_gemm']:.1f}us x{r['fp16'] / r['w4a8_gemm']:.2f}" if r.get("w4a8_gemm") else ""
        print(
            f"{r['shape']:12s} M={r['m']:5d} w4a8 {r['w4a8']:8.1f}us x{r['fp16'] / r['w4a8']:.2f}fp16 "
            f"x{r['int8'] / r['w4a8']:.2f}int8 {r['weight_tbps']:.2f}TB/s{old}{st}"
        )


if __name__ == "__main__":
    main()

"""Compile the Triton kernels for sm_90a on a machine without a GPU (no device time).

The CPU interpreter (TRITON_INTERPRET=1) runs the kernels' Python semantics but not Triton's
GPU compiler, which is stricter (a variable's type may not change across a constexpr branch)
and is where inline PTX is checked (ptxas). This script lowers each kernel variant that the
library launches to PTX and a cubin for sm_90a and prints register and shared-memory use, so
a kernel change is known to compile before a GPU run is spent on it.

    python benchmarks/compile_sm90.py            # all variants; non-zero exit if one fails
    python benchmarks/compile_sm90.py --regs --prefill-candidates   # + ptxas registers/spills, more tiles
    python benchmarks/compile_sm90.py --decode-variants   # + the Gluon decode kernel's other formats and modes
    python benchmarks/compile_sm90.py --regs --decode-variants --only "fused m1"  # the one-launch M = 1 kernel
    python benchmarks/compile_sm90.py --only " tl" --regs  # the variants whose name contains " tl"
"""

from __future__ import annotations

import os
import sys
import time

os.environ.pop("TRITON_INTERPRET", None)

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from fptq.kernels import (
    gluon_decode,  # noqa: E402
    gluon_prefill,  # noqa: E402
    gluon_swap,  # noqa: E402
)
from fptq.kernels import triton_prefill as tp  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)


def _signature(fn, types: dict, constexprs: dict) -> dict:
    sig = {}
    for name in fn.arg_names:
        sig[name] = "constexpr" if name in constexprs else types.get(name, "i32")
    return sig


def _attrs(fn, sig: dict, not_aligned=("M",)) -> dict:
    """What Triton's launcher specializes for LLaMA-sized launches: pointers aligned to 16 bytes and
    integer arguments divisible by 16 (`tt.divisibility`), except those named in `not_aligned`."""
    return {(i,): [["tt.divisibility", 16]] for i, name in enumerate(fn.arg_names) if sig[name] != "constexpr" and name not in not_aligned}


def compile_variant(fn, types, constexprs, num_warps, num_stages, **options):
    sig = _signature(fn, types, constexprs)
    if getattr(fn, "is_gluon", lambda: False)():
        from triton.experimental.gluon._runtime import GluonASTSource

        src = GluonASTSource(fn, sig, constexprs, _attrs(fn, sig))
    else:
        src = ASTSource(fn, sig, constexprs, _attrs(fn, sig))
    return triton.compile(src, target=TARGET, options=dict(num_warps=num_warps, num_stages=num_stages, **options))


GEMM_TYPES = {
    "a_ptr": "*i8",
    "w_ptr": "*u8",
    "scales_ptr": "*fp16",
    "zeros_ptr": "*u8",
    "sx_ptr": "*fp32",
    "bias_ptr": "*fp16",
    "out_ptr": "*fp16",
    "ws_ptr": "*fp32",
    "cnt_ptr": "*i32",
}
PREFILL_TYPES = {"a_ptr": "*i8", "b_ptr": "*i8", "scales_ptr": "*fp16", "sx_ptr": "*fp32", "bias_ptr": "*fp16", "out_ptr": "*fp16"}
UNPACK_TYPES = {"w_ptr": "*u8", "zeros_ptr": "*u8", "out_ptr": "*i8"}
# launch parameters to look at besides the installed ones (`--prefill-candidates`)
PREFILL_CANDIDATES = [
    tp.PrefillConfig(128, 128, 8, 4),
    tp.PrefillConfig(128, 128, 8, 3),
    tp.PrefillConfig(64, 128, 4, 4),
    tp.PrefillConfig(128, 256, 8, 3),
    tp.PrefillConfig(256, 128, 8, 3),
    tp.PrefillConfig(128, 64, 4, 4),
]
PREFILL_CANDIDATES += [
    tp.PrefillConfig(bm, bn, w, st, wgmma=True, maxnreg=r)
    for bm, bn, w, st, r in ((128, 128, 8, 4, None), (64, 128, 4, 4, None), (64, 128, 4, 3, 168))
]
PREFILL_CANDIDATES += [tp.PrefillConfig(128, bn, 4, st, ws=True) for bn, st in ((128, 4), (128, 6), (64, 6))]


def _desc(dtype: str, block: list) -> str:
    """Signature type of a Gluon TMA descriptor argument (as the launcher mangles it)."""
    from triton.experimental.gluon import language as gl

    types = {"i8": gl.int8, "fp8e4nv": gl.float8e4nv, "fp32": gl.float32, "fp16": gl.float16}
    layout = gl.NVMMASharedLayout.get_default_for(block, types[dtype])
    return f"tensordesc<{dtype}{block},{layout!r}>"


QUANT_TYPES = {"x_ptr": "*fp16", "out_ptr": "*i8", "sx_ptr": "*fp32", "scale_ptr": "*fp32", "cnt_ptr": "*i32",
               "pw_ptr": "*i32"}
QUANT_WORDS_TYPES = dict(QUANT_TYPES, x_ptr="*i32")


def variants(prefill_candidates=False, decode_variants=False):
    # the installed configs but the swap ones (compiled below), and the ws kernel they fall back to
    configs = [cfg for _, cfg in tw.PREFILL_CONFIGS if not cfg.swap] + [tp.WS_CONFIG] + (PREFILL_CANDIDATES if prefill_candidates else [])
    for cfg in dict.fromkeys(configs):
        if cfg.ws:  # (format, group, K step, SX_MODE, bias, weights unpacked in the kernel)
            for dt, group, sub, sx, bias, fused in (
                ("i8", 128, 128, 2, True, False),
                ("fp8e4nv", 128, 128, 2, False, False),
                ("i8", 64, 64, 1, False, False),
                ("i8", 4096, 128, 0, True, False),
                ("i8", 128, 128, 2, False, True),
                ("i8", 64, 64, 1, True, True),
                ("i8", 4096, 128, 2, False, True),
            ):
                if fused:
                    from triton.experimental.gluon import language as gl

                    lay = repr(gl.NVMMASharedLayout(swizzle_byte_width=0, element_bitwidth=8, rank=2))
                    b_desc = f"tensordesc<u8[{cfg.block_n}, {sub // 2}],{lay}>"
                else:
                    b_desc = _desc(dt, [cfg.block_n, sub])
                s_dt = "fp32"  # `ws_rows`
                types = dict(PREFILL_TYPES, a_desc=_desc(dt, [64, sub]), b_desc=b_desc, s_desc=_desc(s_dt, [1, cfg.block_n]))
                stages = min(cfg.num_stages, 4) if fused else cfg.num_stages
                const = dict(
                    GROUP=group,
                    SX_MODE=sx,
                    HAS_BIAS=bias,
                    GROUP_M=cfg.group_m,
                    INT_PER_CHANNEL=dt == "i8" and group == 4096,
                    FUSED=fused,
                    KSUB=2,
                    LAG=gluon_prefill.LAG_SCALING,
                    STAGES=stages // 2,
                    CONSUMER_REGS=208 if fused else 232,
                    UNPACK_REGS=72,
                    num_warps=4,
                )
                yield (
                    f"prefill ws {dt} g{group} fused={fused} {cfg}",
                    gluon_prefill._gemm_ws_kernel,
                    types,
                    const,
                    4,
                    1,
                    {"maxnreg": 128 if fused else 168},
                )
            continue
        if cfg.wgmma:
            for dt in ("i8", "fp8e4nv"):
                types = dict(
                    PREFILL_TYPES,
                    a_desc=_desc(dt, [cfg.block_m, 128]),
                    b_desc=_desc(dt, [cfg.block_n, 128]),
                    s_desc=_desc("fp32", [1, cfg.block_n]),
                )
                const = dict(GROUP=128, SX_MODE=2, HAS_BIAS=True, GROUP_M=cfg.group_m, STAGES=cfg.num_stages, num_warps=cfg.num_warps)
                opts = {"maxnreg": cfg.maxnreg} if cfg.maxnreg else {}
                yield f"prefill wgmma {dt} {cfg}", tp._gemm_wgmma_kernel, types, const, cfg.num_warps, 1, opts
            continue
        const = dict(
            GROUP=128,
            SUB=128,
            PER_CHANNEL=False,
            KIND=tp.KIND_INT8,
            SX_MODE=2,
            HAS_BIAS=False,
            BLOCK_M=cfg.block_m,
            BLOCK_N=cfg.block_n,
            GROUP_M=cfg.group_m,
        )
        yield f"prefill gemm {cfg}", tp._gemm_kernel, PREFILL_TYPES, const, cfg.num_warps, cfg.num_stages, {}
    # the swap kernel (`gluon_swap`, PrefillConfig(swap=True)) at the ring slots `swap_gemm` picks on an H100:
    # 128 / 64 token tiles, one or two K steps per slot, the scaling lagged or not; group 128 / 256 / per
    # channel (K = 4096); SPG (GROUP_SUMS): steps per scaled group (2: groups of 256; 0: per channel); PF
    # (PREFETCH_WEIGHTS): the next step's weights unpacked under the current wgmma; DS (DIRECT_SCALES): the
    # scales read from global memory (with the installed schedules: PF, no lag)
    lay = repr(gluon_swap._packed_layout())
    variants = [(bm, stages, ksub, lag, group, spg, pf, False, False) for bm, stages, ksub, lag, group, spg, pf in (
        (128, 6, 1, False, 128, 1, False), (128, 6, 1, True, 128, 1, False), (128, 4, 2, False, 128, 1, False),
        (128, 4, 2, False, 4096, 1, False), (128, 4, 2, False, 256, 2, False), (128, 4, 2, False, 4096, 0, False),
        (128, 4, 2, False, 128, 1, True), (128, 4, 2, False, 256, 2, True), (128, 4, 2, False, 4096, 0, True),
        (128, 6, 1, False, 4096, 0, False), (64, 6, 2, False, 128, 1, False), (64, 6, 2, False, 4096, 1, False),
        (64, 6, 2, False, 256, 2, True), (64, 6, 2, False, 4096, 0, True), (64, 6, 2, False, 128, 1, True),
        (64, 8, 1, True, 128, 1, False),
    )]
    variants += [(bm, 4 if bm == 128 else 6, 2, False, group, spg, True, True, False)
                 for bm in (128, 64) for group, spg in ((128, 1), (256, 2), (4096, 0))]
    variants += [(128, 4, 2, False, 128, 1, False, True, False), (128, 6, 1, False, 128, 1, False, True, False),
                 (128, 6, 1, False, 4096, 0, False, True, False)]  # DS without PF, and one K step a slot
    # two-level scales (TL): one int32 sum over K, the codes times the integer group scales (groups 128 / 256; TL 4, the
    # loader's copies of the scales: groups of 128)
    variants += [(bm, 4 if bm == 128 else 6, 2, False, group, 0, True, True, tl_) for bm in (128, 64) for group in (128, 256)
                 for tl_ in (1, 2)] + [(bm, 4 if bm == 128 else 6, 2, False, 128, 0, True, True, 4) for bm in (128, 64)]
    variants += [(128, 6, 1, False, 128, 0, False, True, 2)]  # one K step a slot
    variants = [v + (False,) for v in variants]
    # stream-K (SK): two-level (TL 1 / 2 / 4), per channel, fp32 group sums (groups of 128 / 256, scale rows or DS)
    variants += [(bm, 4 if bm == 128 else 6, 2, False, group, spg, True, ds, tl_, True)
                 for bm, group, spg, ds, tl_ in ((128, 128, 0, True, 1), (128, 128, 0, True, 2), (64, 128, 0, True, 2),
                                                 (128, 128, 0, True, 4),
                                                 (128, 4096, 0, True, False), (128, 128, 1, False, False),
                                                 (128, 256, 2, True, False))]
    variants = [v + (False,) for v in variants]
    # WIDE (256-row weight tiles, two row blocks per consumer warpgroup): two-level TL 1 / 2 / 4, per channel; PF or not
    variants += [(bm, stages, ksub, False, group, 0, pf, True, tl_, False, True)
                 for bm, stages, ksub, group, pf, tl_ in ((128, 3, 2, 128, True, 1), (128, 3, 2, 128, True, 2),
                                                          (128, 3, 2, 128, True, 4),
                                                          (128, 3, 2, 128, False, 1), (128, 6, 1, 128, False, 1),
                                                          (128, 3, 2, 4096, True, False))]
    variants = [v + (False,) for v in variants]
    # PDL (`triton_w4a8.SWAP_PDL`: launched as a programmatic dependent of the quantization kernel; the library takes it
    # with DS only and never with SK, but every other variant compiles with it too)
    variants += [v[:-1] + (True,) for v in variants if not v[9]]
    for bm, stages, ksub, lag, group, spg, pf, ds, tl_, sk, wide, pdl in variants:
        types = {"x_desc": _desc("i8", [bm, 128]), "w_desc": f"tensordesc<u8[{256 if wide else 128}, 64],{lay}>",
                 "s_desc": _desc("fp32", [1, 128]),
                 "sx_ptr": "*fp32", "bias_ptr": "*fp16", "out_ptr": "*fp16",
                 "scales_ptr": "*i32" if tl_ == 4 else "*fp16" if ds else "*fp32",  # (TL 4: a row's two groups as one)
                 "chan_ptr": "*fp16" if tl_ else "*fp32", "ws_ptr": "*i32" if sk else "*fp32",
                 "flag_ptr": "*i32" if sk else "*fp32"}
        const = dict(GROUP=group, SX_MODE=2 if bm == 128 else 1, HAS_BIAS=bm == 128, GROUP_M=8, STAGES=stages, KSUB=ksub,
                     LAG=lag, SPG=spg, PF=pf, DS=ds, TL=tl_, SK=sk, WIDE=wide, CONSUMER_REGS=232, num_warps=4, PDL=pdl,
                     CH=gluon_swap.CHAIN_STEPS and bool(tl_) and tl_ != 2 and ksub > 1, TILED=False,
                     TRIGGER=gluon_swap.TRIGGER)  # (as launched)
        flags = (" lag" if lag else "") + (f" spg{spg}" if spg != 1 else "") + (" pf" if pf else "") + (" ds" if ds else "")
        flags += " ch" if const["CH"] else ""
        flags += (f" tl{tl_}" if tl_ else "") + (" sk" if sk else "") + (" wide" if wide else "") + (" pdl" if pdl else "")
        yield f"prefill swap bm{bm} g{group} k{ksub}{flags}", gluon_swap._swap_kernel, types, const, 4, 1, {"maxnreg": 168}
        if tl_ == 4 and not wide and bm == 128 and not pdl:  # (session 29's probe: the weights' box-major copy)
            yield (f"prefill swap bm{bm} g{group} k{ksub}{flags} tiled", gluon_swap._swap_kernel, types,
                   dict(const, TILED=True), 4, 1, {"maxnreg": 168})
    const = dict(GROUP=128, SUB=128, HAS_ZEROS=True, KIND=tp.KIND_INT8, BLOCK_N=32, CHUNKS=4, USE_ASM=True)
    yield "unpack", tp._unpack_kernel, UNPACK_TYPES, const, 4, 1, {}
    for cfg_m in (1, 64, 1024):
        cfg = tw._for_m(tw.CONFIGS, cfg_m)
        for pdl in (False, True) if cfg.block_m <= tw.DECODE_MAX_M else (False,):
            const = dict(
                GROUP=128,
                SUB=128,
                PER_CHANNEL=False,
                A_MODE=tw._A_PERMUTED,
                DOT_TYPE=0,
                HAS_ZEROS=False,
                SX_MODE=2,
                HAS_BIAS=False,
                EVEN_K=True,
                BLOCK_M=cfg.block_m,
                BLOCK_N=cfg.block_n,
                GROUP_M=cfg.group_m,
                SPLIT_K=cfg.split_k,
                USE_ASM=True,
            )
            const.update(tw._pdl_constexprs(pdl, 4096, 4096, 128, cfg.split_k))
            if cfg_m == 1:
                const = dict(const, M=1)  # Triton's launcher specializes an integer argument equal to 1
            yield (
                f"gemm M<={cfg_m} {cfg} pdl={pdl}",
                tw._w4a8_kernel,
                GEMM_TYPES,
                const,
                cfg.num_warps,
                cfg.num_stages,
                dict(launch_pdl=pdl),
            )
            if cfg.tma_stages:  # the Gluon TMA decode kernel the config selects (int8 activations)
                from triton.experimental.gluon import language as gl

                lay = repr(gl.NVMMASharedLayout(swizzle_byte_width=0, element_bitwidth=8, rank=2))
                types = dict(GEMM_TYPES, w_desc=f"tensordesc<u8[{cfg.block_n}, 64],{lay}>", a_desc=f"tensordesc<i8[16, 64],{lay}>")
                tconst = {key: const[key] for key in ("GROUP", "PER_CHANNEL", "HAS_ZEROS", "SX_MODE", "HAS_BIAS", "SPLIT_K", "M")}
                tconst.update(STAGES=cfg.tma_stages, PDL=pdl, num_warps=cfg.num_warps, GROUPS=4, x_ptr=None, FUSED_ROW=False,
                              A_STEPS=1, ROW_BLOCK=1, pw_ptr=None, NORM=False, EPS=0.0, HOLD=False, ROW_PASSES=0, PAIR=0,
                              TILED=False, KSUB=1, FLAGS=False, TRIGGER=0, MR=1, PEERS=0)
                yield (
                    f"gluon tma decode {cfg} pdl={pdl}",
                    gluon_decode._decode_tma_kernel,
                    types,
                    tconst,
                    cfg.num_warps,
                    1,
                    dict(launch_pdl=pdl),
                )
                if pdl:  # M = 1 with the dynamic activations quantized in the kernel (FUSED_ROW, `FUSED_DECODE_M1`)
                    # (split 5 of 4096 x 4096: 7 steps a slice; the others with --decode-variants: unsplit 22016 x 4096
                    # and 28672 x 8192, a 28672-column row over 4 slices, bf16, per channel, zero points and bias,
                    # groups of 64)
                    fused = {key: v for key, v in tconst.items() if key != "x_ptr"}
                    fused.update(M=1, SX_MODE=0, FUSED_ROW=True, A_STEPS=8, ROW_BLOCK=4096, a_desc=None, HOLD=True,
                                 ROW_PASSES=1)
                    for x_type, extra in [("*fp16", {}), ("*fp16", dict(SX_MODE=1))] + ([  # (static: the layer's scale)
                        ("*fp16", dict(SPLIT_K=1, GROUPS=32, A_STEPS=32, HOLD=False)),
                        ("*fp16", dict(SPLIT_K=1, GROUPS=64, A_STEPS=64, ROW_BLOCK=8192, HOLD=False)),
                        ("*fp16", dict(GROUPS=64, A_STEPS=64, ROW_BLOCK=8192, ROW_PASSES=4)),
                        ("*fp16", dict(GROUPS=64, A_STEPS=64, ROW_BLOCK=8192, HOLD=False, ROW_PASSES=0)),  # (session 24)
                        # (a slice of 128 steps, groups of 256: not held, FUSED_HOLD_MAX_STEPS)
                        ("*fp16", dict(GROUP=256, GROUPS=64, A_STEPS=128, ROW_BLOCK=8192, HOLD=False, ROW_PASSES=4)),
                        ("*fp16", dict(PER_CHANNEL=True, GROUP=4096, A_STEPS=32, ROW_BLOCK=8192, HOLD=False)),
                        ("*fp16", dict(HAS_ZEROS=True, HAS_BIAS=True, A_STEPS=16)),
                        ("*fp16", dict(GROUP=64, GROUPS=8, A_STEPS=16)),
                        ("*bf16", {}),
                        # two K steps a ring slot (FUSED_PAIR): split 5 of 4096 x 4096 (7 steps: an odd slice) and
                        # 70B down's 56-step slices
                        ("*fp16", dict(PAIR=1)),
                        ("*fp16", dict(PAIR=1, GROUPS=64, A_STEPS=64, ROW_BLOCK=8192, ROW_PASSES=4)),
                        ("*fp16", dict(PAIR=2, GROUPS=64, A_STEPS=64, ROW_BLOCK=8192, ROW_PASSES=4)),
                        ("*fp16", dict(PAIR=2, SPLIT_K=1, GROUPS=64, A_STEPS=64, ROW_BLOCK=8192, HOLD=False)),
                        ("*fp16", dict(PAIR=1, SPLIT_K=1, GROUPS=64, A_STEPS=64, ROW_BLOCK=8192, HOLD=False)),
                        # (session 29's probe: the weights read from a box-major copy, `probe_tiled_weights.py`)
                        ("*fp16", dict(PAIR=1, TILED=True, GROUPS=64, A_STEPS=64, ROW_BLOCK=8192, ROW_PASSES=4)),
                        ("*fp16", dict(TILED=True)),
                        # (unsplit, KSUB K steps a ring slot: 4096 x 4096, 70B down's 224 steps, static with bias, bf16)
                        ("*fp16", dict(KSUB=4, SPLIT_K=1, GROUPS=8, A_STEPS=32, HOLD=False)),
                        ("*fp16", dict(KSUB=2, SPLIT_K=1, GROUPS=16, A_STEPS=32, HOLD=False)),
                        ("*fp16", dict(KSUB=8, SPLIT_K=1, GROUPS=4, A_STEPS=32, HOLD=False, STAGES=4)),
                        ("*fp16", dict(KSUB=4, SPLIT_K=1, GROUPS=64, A_STEPS=256, ROW_BLOCK=8192, HOLD=False,
                                       ROW_PASSES=4)),
                        ("*fp16", dict(KSUB=4, SPLIT_K=1, GROUPS=8, A_STEPS=32, HOLD=False, SX_MODE=1, HAS_BIAS=True)),
                        ("*bf16", dict(KSUB=4, SPLIT_K=1, GROUPS=8, A_STEPS=32, HOLD=False)),
                        # (groups of 512 on 16 steps; a row of two steps in one slot: K = 256)
                        ("*fp16", dict(KSUB=4, SPLIT_K=1, GROUP=512, GROUPS=4, A_STEPS=16, HOLD=False)),
                        ("*fp16", dict(KSUB=2, SPLIT_K=1, GROUPS=1, A_STEPS=2, ROW_BLOCK=256, HOLD=False, ROW_PASSES=1)),
                        # (split-K without a counter, session 31: SPLIT_K the config's 16, the most slices a launch
                        # takes, unpaired and paired; 4 and 2 slices with the two-launch variants below)
                        ("*fp16", dict(FLAGS=True)),
                        ("*fp16", dict(FLAGS=True, PAIR=1, GROUPS=64, A_STEPS=64, ROW_BLOCK=8192, ROW_PASSES=4)),
                        # (the next kernel placed early, session 32: after the first slots' requests / after the steps)
                        ("*fp16", dict(FLAGS=True, PAIR=1, TRIGGER=1)),
                        ("*fp16", dict(FLAGS=True, PEERS=4)),  # (the peers four at a time, 16 slices)
                        ("*fp16", dict(KSUB=4, SPLIT_K=1, GROUPS=8, A_STEPS=32, HOLD=False, TRIGGER=2)),
                        # (2-4 rows of static activations quantized here, MR: split 5 of 4096 x 4096 with the flags,
                        # 70B down's 56-step slices, unsplit 7B gate/up, bf16 with bias)
                        ("*fp16", dict(MR=4, SX_MODE=1, HOLD=False, ROW_PASSES=0, FLAGS=True, TRIGGER=2)),
                        ("*fp16", dict(MR=4, SX_MODE=1, HOLD=False, ROW_PASSES=0, GROUPS=64, A_STEPS=64, FLAGS=True)),
                        ("*fp16", dict(MR=2, SX_MODE=1, HOLD=False, ROW_PASSES=0, SPLIT_K=1, GROUPS=32, A_STEPS=32)),
                        ("*bf16", dict(MR=4, SX_MODE=1, HOLD=False, ROW_PASSES=0, HAS_BIAS=True)),
                    ] if decode_variants else []):
                        half = 32 if extra.get("GROUP") == 64 else 64
                        half *= (2 if extra.get("PAIR") else 1) * extra.get("KSUB", 1)
                        rows = cfg.block_n // extra.get("KSUB", 1)
                        vtypes = dict(types, x_ptr=x_type, w_desc=f"tensordesc<u8[{rows}, {half}],{lay}>")
                        const = dict(fused, **extra)
                        if const.get("MR", 1) > 1:  # (2-4 rows: M a runtime integer, as launched)
                            del const["M"]
                        yield (f"gluon tma decode fused m1 x {x_type[1:]} {extra or 'g128 split 5'}", gluon_decode._decode_tma_kernel,
                               vtypes, const, cfg.num_warps, 1, dict(launch_pdl=True))
                    # with the RMSNorm before it (`fptq.nn.prologue`): 7B q/k/v (4096 columns), 13B (5120: two
                    # 4096-column passes, split 2)
                    norm = {key: v for key, v in fused.items() if key != "pw_ptr"}
                    for extra in ({}, dict(A_STEPS=32, GROUPS=32, SPLIT_K=2, ROW_PASSES=2), dict(SX_MODE=1)):
                        yield (f"gluon tma decode fused m1 norm {extra or '7B'}", gluon_decode._decode_tma_kernel,
                               dict(types, x_ptr="*fp16", pw_ptr="*fp16"), dict(norm, NORM=True, EPS=1e-5, **extra),
                               cfg.num_warps, 1, dict(launch_pdl=True))
                if decode_variants and pdl:  # the other weight formats and activation modes it serves
                    for extra in (
                        dict(HAS_ZEROS=True),
                        dict(PER_CHANNEL=True, GROUP=4096),
                        dict(SX_MODE=1, HAS_BIAS=True),
                        dict(GROUP=64, GROUPS=8),
                        dict(SPLIT_K=1, GROUPS=64),
                        # (unsplit, KSUB steps a slot over 16 / KSUB rows: 4096 x 4096, 70B down, static with bias)
                        dict(KSUB=4, SPLIT_K=1, GROUPS=8),
                        dict(KSUB=2, SPLIT_K=1, GROUPS=16),
                        dict(KSUB=4, SPLIT_K=1, GROUPS=64, SX_MODE=1, HAS_BIAS=True),
                        # (split-K without a counter, session 31)
                        dict(FLAGS=True),
                        dict(FLAGS=True, SPLIT_K=4),
                        dict(FLAGS=True, SX_MODE=1, HAS_BIAS=True, SPLIT_K=2),
                        # (the next kernel placed early, session 32)
                        dict(FLAGS=True, SPLIT_K=4, TRIGGER=1),
                        # (the peers' partials four or eight at a time: 16 slices, and 5 with a short last group)
                        dict(FLAGS=True, PEERS=4),
                        dict(FLAGS=True, PEERS=8),
                        dict(FLAGS=True, SPLIT_K=5, PEERS=3),
                        dict(KSUB=2, SPLIT_K=1, GROUPS=16, TRIGGER=2),
                    ):
                        half = 32 if extra.get("GROUP") == 64 else 64
                        ks = extra.get("KSUB", 1)
                        types64 = dict(
                            types, w_desc=f"tensordesc<u8[{cfg.block_n // ks}, {half * ks}],{lay}>",
                            a_desc=f"tensordesc<i8[{16 // ks}, {half}],{lay}>"
                        )
                        const = dict(tconst, **extra)
                        if extra.get("FLAGS"):  # (2-16 rows, the flagged split launches: M a runtime integer, as
                            del const["M"]      # launched; the reduction's registers grow with SPLIT_K, session 32)
                        yield (
                            f"gluon tma decode {extra}",
                            gluon_decode._decode_tma_kernel,
                            types64,
                            const,
                            cfg.num_warps,
                            1,
                            dict(launch_pdl=True),
                        )
    for one_pass in (True, False):
        for pdl in (False, True):
            chunks = 32 if one_pass else 8
            parts = tw._quant_parts(1 if pdl else 4096, chunks, 128, one_pass, 4096 if one_pass else 28672)
            # (pdl: as installed on Hopper — itself a programmatic dependent of the kernel before, QUANT_PDL)
            const = dict(MODE=tw._Q_DYNAMIC, SUB=128, CHUNKS=chunks, ONE_PASS=one_pass, PDL=pdl, ZERO=pdl, PARTS=parts,
                         FMA_DIV=tw.QUANT_FMA_DIV, WORDS=False, XT=tl.float16, EVEN=True, WAIT=pdl and tw.QUANT_PDL,
                         NORM=False, EPS=0.0, SILU=False, EXACT_EXP=False, SILU_DIV=0)
            qopts = dict(launch_pdl=True) if const["WAIT"] else {}
            # fp32 activations: two strided loads of the elements (or a trailing pair dimension in one pass)
            yield (f"act-quant fp32 one_pass={one_pass} pdl/zero={pdl} parts={parts}", tw._act_quant_kernel,
                   dict(QUANT_TYPES, x_ptr="*fp32"), const, 4, 1, qopts)
            # 2-byte activations as int32 words (`_load_pairs`), K a multiple of 128 or not
            const = dict(const, WORDS=True)
            for even in (True, False) if not pdl else (True,):
                yield (f"act-quant one_pass={one_pass} pdl/zero={pdl} parts={parts} even={even}", tw._act_quant_kernel,
                       QUANT_WORDS_TYPES, dict(const, EVEN=even), 4, 1, qopts)
            if one_pass and pdl:  # the longest row held in registers (K = 28672 padded to 32768: 16 warps)
                yield ("act-quant one_pass=True cols=32768", tw._act_quant_kernel, QUANT_WORDS_TYPES,
                       dict(const, CHUNKS=tw.ONE_PASS_MAX_K // 128, PARTS=1), 16, 1, qopts)
                # the RMSNorm before the layer (NORM): 16 rows of 4096 (4 parts), prefill rows of 4096 / 11008
                # (bf16, static), the longest row
                norm = dict(const, NORM=True, EPS=1e-5)
                for name, extra, warps in (("4096 parts", {}, 4), ("4096 rows", dict(PARTS=1), 4),
                                           ("16384 bf16 static", dict(CHUNKS=128, PARTS=1, XT=tl.bfloat16,
                                                                      MODE=tw._Q_STATIC), 8),
                                           ("32768", dict(CHUNKS=tw.ONE_PASS_MAX_K // 128, PARTS=1), 16)):
                    yield (f"act-quant norm {name}", tw._act_quant_kernel, QUANT_WORDS_TYPES, dict(norm, **extra),
                           warps, 1, qopts)
                # SiLU * up of [gate, up] rows (SILU): 7B down (11008 columns; 16 rows in 4 parts, prefill rows in one
                # program, bf16 static), 70B down (28672)
                silu = dict(const, SILU=True, EXACT_EXP=True, SILU_DIV=tw.SILU_DIV, CHUNKS=128, EVEN=True)  # (11008 = 86 x 128)
                for name, extra, warps in (("11008 parts", dict(PARTS=4), 16), ("11008 rows", dict(PARTS=1), 16),
                                           ("11008 rows 8 warps", dict(PARTS=1), 8),
                                           ("11000 rows, K not a multiple", dict(PARTS=1, EVEN=False), 16),
                                           ("11008 bf16 static", dict(PARTS=1, XT=tl.bfloat16, MODE=tw._Q_STATIC), 16),
                                           ("4096 rows", dict(CHUNKS=32, PARTS=1), 8),
                                           ("28672 rows in one pass", dict(CHUNKS=256, PARTS=1), 16)):
                    yield (f"act-quant silu {name}", tw._act_quant_kernel, QUANT_WORDS_TYPES, dict(silu, **extra),
                           warps, 1, qopts)
            if not one_pass and pdl:  # SiLU * up in two passes (rows past SILU_MAX_K): 16384-column blocks, 16 warps
                chunks2 = 16384 // 128
                for name, rows in (("16 rows", 16), ("prefill rows", 4096)):
                    two = dict(const, WORDS=True, SILU=True, EXACT_EXP=True, SILU_DIV=tw.SILU_DIV, CHUNKS=chunks2,
                               PARTS=tw._quant_parts(rows, chunks2, 128, False, 28672))
                    yield (f"act-quant silu two passes {name}", tw._act_quant_kernel, QUANT_WORDS_TYPES, two, 16, 1,
                           qopts)
            if not pdl:  # bf16 words (the float copy keeps the type: W4A16)
                yield (f"act-quant bf16 one_pass={one_pass} parts={parts}", tw._act_quant_kernel,
                       dict(QUANT_WORDS_TYPES, out_ptr="*bf16"), dict(const, MODE=tw._Q_COPY, XT=tl.bfloat16), 4, 1, {})
            if pdl:  # the other buffer modes: static int8, float copy, fp8
                for mode, out in ((tw._Q_STATIC, "*i8"), (tw._Q_COPY, "*fp16"), (tw._Q_FP8, "*fp8e4nv")):
                    yield (
                        f"act-quant mode={mode} one_pass={one_pass} parts={parts}",
                        tw._act_quant_kernel,
                        dict(QUANT_WORDS_TYPES, out_ptr=out),
                        dict(const, MODE=mode),
                        4,
                        1,
                        qopts,
                    )


def pdl_order_ok(ptx: str, stages: int) -> bool:
    """Under PDL the TMA decode kernel may issue only its STAGES weight loads before
    `griddepcontrol.wait`; an activation load there would race the quantization kernel."""
    before = ptx.split("griddepcontrol.wait")[0]
    return before.count("cp.async.bulk.tensor") == stages


def ptxas_usage(k) -> str:
    """Registers / spills of the kernel's PTX from ptxas -v (Triton's own ptxas)."""
    import re
    import subprocess
    import tempfile

    from triton.backends.nvidia.compiler import get_ptxas

    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
        f.write(k.asm["ptx"])
        f.flush()
        r = subprocess.run([get_ptxas(90).path, "-v", "--gpu-name=sm_90a", f.name, "-o", os.devnull], capture_output=True, text=True)
    used = re.search(r"Used (\d+) registers", r.stderr)
    spill = re.search(r"(\d+) bytes spill stores", r.stderr)
    return f"{used.group(1) if used else '?'} regs, {spill.group(1) if spill else '?'} B spilled"


def main() -> int:
    failed = 0
    regs = "--regs" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else ""
    for name, fn, types, const, warps, stages, opts in variants("--prefill-candidates" in sys.argv, "--decode-variants" in sys.argv):
        if only not in name:
            continue
        t0 = time.time()
        try:
            k = compile_variant(fn, types, const, warps, stages, **opts)
        except Exception as e:  # noqa: BLE001 - reported per variant
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {str(e)[:2000]}")
            continue
        if fn is gluon_decode._decode_tma_kernel and const.get("PDL") and not pdl_order_ok(k.asm["ptx"], const["STAGES"]):
            failed += 1
            print(f"FAIL {name}: activation loads issued before griddepcontrol.wait")
            continue
        usage = f", {ptxas_usage(k)}" if regs else ""
        print(f"ok   {name}: shared {k.metadata.shared} B{usage}, {time.time() - t0:.1f}s, ptx {len(k.asm['ptx'])} chars")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

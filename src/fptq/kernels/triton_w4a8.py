"""Triton W4A8 kernels behind `QuantLinear` (CUDA), with the semantics of `fptq.kernels.reference`.

`Y = dequant(X_int8) @ dequant(W_int4)^T`: int4 weights stay packed in memory, become int8 in
registers, meet the int8 activations in int8 `tl.dot` with int32 accumulation per weight group,
and each group's partial sum is scaled in fp32 (FPTQ §3.3, DESIGN.md §1.4). The activation scale
(static per-tensor or dynamic per-token) and the bias are applied in the epilogue.

Weight layout: the kernels read `QuantLinear.qweight` as stored (uint8 `(N, K // 2)`, low
nibble = even column; `fptq.packing`), so a model carries no second copy of its weights. The
price of the interleaved nibbles is paid on the activation side, which is small and written by
our own quantization kernel anyway: within every chunk of `SUB` columns (`SUB = 64` for group
size 64, else 128) the int8 activation buffer holds the chunk's even columns first, then its odd
columns (`activation_layout` below). One packed byte tile `(SUB // 2, BLOCK_N)` then unpacks
into two contiguous int8 operands, low nibbles (even columns) and high nibbles (odd columns),
each multiplied by its half of the activation chunk: no register shuffles.

Three paths, picked by M:

- decode (M <= 16, memory-bound): BLOCK_M = 16 (int8 mma.sync) and split-K until the grid has
  enough programs to stream the weights at full bandwidth; each tile's last K slice to finish
  sums the slices' fp32 partials and writes the output (one launch, deterministic). The
  activations are quantized first by the same row-wise kernel as prefill, and on Hopper the
  GEMM is a programmatic dependent launch of it: its programs request their weights while the
  activations are quantized (`KernelConfig.fused_act` quantizes inside the GEMM instead). With
  int8 activations on sm_90+ the GEMM is the Gluon kernel of `gluon_decode` (a TMA ring per
  program, weights read from shared memory straight into `mma.sync` registers, group scales
  staged once per program); otherwise `_w4a8_kernel` below, in L2 prefetch then a K loop. With
  FUSED_DECODE_M1, one token of int8 activations is quantized inside that Gluon kernel instead
  (one launch per op: `_launch_fused_m1`; with an RMSNorm prologue too, not with SiLU * up, which the
  quantization kernel computes before the two launches).
- medium M (17 up to PREFILL_MIN_M: 255 rows where the swap kernel below serves the layer, else 511, or
  1023 for K > 16384): the row-wise activation quantization kernel (per-token absmax + round in one
  program per row, or the elementwise static path) writes the permuted int8 buffer and the per-token
  scales; then a tiled GEMM (int8 wgmma on Hopper) that unpacks the weights in its K loop, with the
  group scaling there too — or, from 64 rows, the swap kernel where its 64-token tiles fill at least
  half the SMs (SWAP_MEDIUM: wide layers such as gate/up).
- prefill (M >= PREFILL_MIN_M, compute-bound): the same quantization, then `triton_prefill`. On Hopper
  with int8 activations, symmetric weights and groups of 128 columns or more (FPTQ's default format) the
  GEMM takes the packed weights as they are, as wgmma's register operand (`gluon_swap`); otherwise the
  weights are unpacked once per call into int8 `code - zero` and a pipelined GEMM streams both operands
  (the warp-specialized `gluon_prefill` on Hopper, a Triton kernel elsewhere).

`act_mode` "none" (W4A16) runs the same GEMM with float operands (the weight stays an exact
small integer in fp16/bf16; fp32 accumulation per group, then the group scale), and
`w4a8_fp8_linear` runs it with float8 e4m3 activations and weights (Hopper fp8 tensor cores).

Supported: 4-bit weights, symmetric or asymmetric, group size 64, any multiple of 128, or
per-channel (group size K, any even K). Anything else falls back to the reference.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch

from fptq.kernels import gluon_decode, gluon_fallback, gluon_prefill, gluon_swap, launch, scratch
from fptq.kernels.prologue import PROLOGUES, Prologue, apply_prologue, layer_features
from fptq.kernels.reference import activation_codes, activation_scale, quant_linear_reference
from fptq.kernels.triton_decode import DOT_FMA, DOT_FP16, DOT_INT8, DecodeConfig, decode_linear
from fptq.kernels.triton_gemv import GemvConfig, gemv_linear, gemv_supported
from fptq.kernels.triton_prefill import PrefillConfig, _capability, direct, prefill_gemm
from fptq.primitives import FP8_MAX

try:  # Triton is optional: without it fptq still imports and uses the reference.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is missing
    triton = None
    tl = None

__all__ = [
    "DecodeConfig",
    "DOT_FMA",
    "DOT_FP16",
    "DOT_INT8",
    "KernelConfig",
    "activation_layout",
    "quantize_activation_triton",
    "quantize_activation_torch",
    "w4a8_linear",
    "w4a8_fp8_linear",
    "supports_shape",
]
DECODE_MAX_M = 16
# Rows up to this many columns are quantized by `_act_quant_kernel` in one pass held in registers (padded to a power
# of two of 128-column chunks; 16 warps from 16384 columns on: 116 ptxas registers, no spills at 32768). Longer rows
# are read twice (absmax, then the codes). Run 190 (H100), K = 28672 against the limit of 16384: the kernel alone at
# 4096 rows 203.7 -> 149.2 µs (×1.94 -> ×1.42 its byte floor), at 1024 54.1 -> 43.3; 70B down ops at 16 rows 64.4 ->
# 59.6 µs (×2.57 -> ×2.78 fp16), at 1024 rows 2 % faster, at 4096 the same.
ONE_PASS_MAX_K = 32768
# The columns of a longer row `_act_quant_kernel` reads a block at a time (each pass).
PASS_BLOCK_K = 4096
_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# Activation buffer modes of `_act_quant_kernel`.
_Q_STATIC, _Q_DYNAMIC, _Q_COPY, _Q_FP8 = 0, 1, 2, 3
# A operand sources of `_w4a8_kernel`.
_A_PERMUTED, _A_RAW_STATIC, _A_RAW_DYNAMIC, _A_RAW_FLOAT = 0, 1, 2, 3


@dataclass(frozen=True)
class KernelConfig:
    """Launch parameters of `_w4a8_kernel` (hand-picked per M bucket, overridable for tuning)."""

    block_m: int
    block_n: int
    num_warps: int
    num_stages: int
    split_k: int = 1
    group_m: int = 8
    fused_act: bool = False  # quantize raw activations inside the GEMM (block_m <= 16 only)
    # > 0: at block_m == 16 with int8 activations on sm_90+ (K a multiple of 32), the Gluon kernel
    # `gluon_decode._decode_tma_kernel` with a ring of this many TMA-loaded K steps instead of
    # `_w4a8_kernel` (elsewhere ignored)
    tma_stages: int = 0


def _sub_chunk(group_size: int) -> int:
    """Columns per K step of the kernels: one weight scale per step (64), or 128."""
    return 64 if group_size == 64 else 128


def supports_shape(k: int, bits: int, group_size: int) -> bool:
    if bits != 4 or k % 2:
        return False
    return group_size == 64 or group_size % 128 == 0 or group_size == k


def activation_layout(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """The permuted column order of the kernels' activation buffer (torch, for tests and docs).

    `(M, K)` -> `(M, Kp)` with `Kp = K` rounded up to `SUB`, zero padded: inside each chunk of
    `SUB` columns the even columns come first, then the odd ones.
    """
    sub = _sub_chunk(group_size)
    m, k = x.shape
    kp = -(-k // sub) * sub
    padded = x if kp == k else torch.nn.functional.pad(x, (0, kp - k))
    chunks = padded.reshape(m, kp // sub, sub // 2, 2)  # (M, chunks, SUB/2, even|odd)
    return chunks.transpose(2, 3).reshape(m, kp)


if triton is not None:
    from triton.language.extra import libdevice
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

    from fptq.kernels.triton_gemv import _bias_store
    from fptq.kernels.triton_prefill import _grouped_tile, _unpack_int4

    @triton.jit
    def _prefetch_l2(ptrs):
        """Ask L2 for the 128-byte lines at `ptrs` (no registers filled, nothing waited on)."""
        tl.inline_asm_elementwise(
            "prefetch.global.L2 [$1]; mov.u32 $0, 0;", "=r,l", [ptrs.to(tl.int64)], dtype=tl.int32, is_pure=False, pack=1
        )

    @triton.jit
    def _round_half_even(v):
        # Adding 1.5 * 2**23 leaves no fraction bits in fp32, so the hardware's round-to-nearest-
        # even does the rounding (valid for |v| < 2**22; callers clamp to [-127, 127] first).
        # Same as torch.round, and it also runs under TRITON_INTERPRET.
        return (v + 12582912.0) - 12582912.0

    # Only builtins and this module's own @triton.jit helpers inside the kernels: triton's
    # library helpers (tl.max, tl.cdiv, tl.zeros) are jit functions created when triton is imported, and
    # if that happened before TRITON_INTERPRET was set they cannot run under the interpreter.
    @triton.jit
    def _max_combine(a, b):
        return tl.maximum(a, b)

    @triton.jit
    def _row_max(x, axis: tl.constexpr):
        return tl.reduce(x, axis, _max_combine)

    @triton.jit
    def _sum_combine(a, b):
        return a + b

    @triton.jit
    def _row_rstd(xe, xo, K, EPS: tl.constexpr):
        """NORM: `rsqrt(mean(x^2) + eps)` of a row held as its even / odd columns `xe` / `xo` (fp32, zero past K)."""
        ss = tl.reduce(tl.reduce(xe * xe + xo * xo, 1, _sum_combine), 0, _sum_combine)
        return tl.rsqrt(ss / K + EPS)

    @triton.jit
    def _normed(x, w, rstd, XT: tl.constexpr):
        """NORM: the RMSNorm of the row's values `x` (fp32) with the norm's weight `w` (XT) and the row's `rstd`,
        rounded to XT where the torch module rounds (`fptq.kernels.prologue.apply_prologue`; `gluon_decode`'s). (Under
        TRITON_INTERPRET an fp32 -> bf16 cast truncates: bf16 rows differ from torch's there by an ulp, not on a GPU.)"""
        return (w.to(tl.float32) * (x * rstd).to(XT).to(tl.float32)).to(XT).to(tl.float32)

    @triton.jit
    def _silu_glu(g, u, XT: tl.constexpr, EXACT: tl.constexpr, DIV: tl.constexpr = 0):
        """SILU: `silu(g) * u` of the gate / up values (fp32 of XT values) rounded to XT where torch rounds
        (`F.silu(gate) * up`: `g / (1 + exp(-g))` in fp32, then the product of two XT values). EXACT (GPU): libdevice's
        exp, as torch's kernel (`tl.exp` is an approximate instruction); else (interpreter) `tl.exp`. DIV: the division
        correctly rounded (0), or from the approximate reciprocal with one fma correction of the quotient (2, SILU_DIV:
        no slow-path branch; quotients 0 or past 1e30 kept as `g * r`; run 207 also measured Triton's `/` and two
        corrections)."""
        if EXACT:
            e = libdevice.exp(-g)
        else:
            e = tl.exp(-g)
        d = 1.0 + e
        if DIV == 0:
            q = tl.math.div_rn(g, d)
        else:
            r = 1.0 / d
            q0 = g * r
            q = tl.fma(tl.fma(-q0, d, g), r, q0)
            q = tl.where((q0 == 0.0) | (tl.abs(q0) > 1e30), q0, q)
        s = q.to(XT).to(tl.float32)
        return (s * u.to(tl.float32)).to(XT).to(tl.float32)

    @triton.jit
    def _silu_pairs(ge, go, x_row, k0, cq, jj, K, SUB: tl.constexpr, XT: tl.constexpr, EVEN: tl.constexpr,
                    EXACT: tl.constexpr, DIV: tl.constexpr):
        """SILU: `silu(gate) * up` of the gate's even / odd columns `ge` / `go` (fp32, `_load_pairs` at `k0` of the
        row of int32 words `x_row`): the up values K columns (K // 2 words) past them."""
        ue, uo = _load_pairs(x_row + K // 2, k0, cq, jj, K, SUB, True, XT, EVEN)
        return _silu_glu(ge, ue, XT, EXACT, DIV), _silu_glu(go, uo, XT, EXACT, DIV)

    @triton.jit
    def _normed_pairs(xe, xo, pw_ptr, k0, cq, jj, K, rstd, SUB: tl.constexpr, XT: tl.constexpr, EVEN: tl.constexpr):
        """NORM: `_normed` of the even / odd columns `xe` / `xo` (fp32, `_load_pairs` at `k0`) with the norm's
        weight words `pw_ptr` and the row's `rstd`."""
        we, wo = _load_pairs(pw_ptr, k0, cq, jj, K, SUB, True, XT, EVEN)
        return _normed(xe, we, rstd, XT), _normed(xo, wo, rstd, XT)

    @triton.jit
    def _row_scale(m, sx_ptr, row, part, MODE: tl.constexpr):
        """Per-token scale of a row with absmax `m`: `m / 127` (int8) or `m / 448` (fp8), 1 for an
        all-zero row; stored by the row's first program."""
        s = tl.where(m > 0, tl.math.div_rn(m, 127.0 if MODE == 1 else 448.0), 1.0)
        if part == 0:
            tl.store(sx_ptr + row, s)
        return s

    @triton.jit
    def _quotient(x, s, r, FMA_DIV: tl.constexpr):
        """`x / s` correctly rounded, as IEEE division gives it. On the GPU without a division: from
        `r = RN(1 / s)` (once per row), `q = RN(x r)` and two fma residual corrections (Markstein: with `r`
        correctly rounded and `q` within an ulp, `RN(q + RN(x - s q) r)` is the correctly rounded quotient;
        the first correction brings `q` within an ulp). Branch-free, so a thread's elements interleave:
        `div.rn` puts each division in a region of its own around a slow-path call, and the quantization of
        4096 x 4096 activations issued one instruction per 39 cycles per warp (run 71). Exact where the
        residual neither underflows nor overflows: rows with 2**-100 < s < 2**100 (else `div_rn`; only bf16
        rows of magnitude ~1e-30 get there); zeros keep their sign and quotients beyond 1e30 (infinities,
        tiny static scales) their `x * r`, which the clamp that follows maps as the division's would
        (review of session 8: the corrections turned -0 into +0 and infinities into NaN). Under
        TRITON_INTERPRET fma rounds twice, so there it divides."""
        if FMA_DIV:
            if (s > 7.888609052210118e-31) & (s < 1.2676506002282294e30):  # 2**-100 < s < 2**100
                q0 = x * r
                q = tl.fma(tl.fma(-q0, s, x), r, q0)
                q = tl.fma(tl.fma(-q, s, x), r, q)
                q = tl.where((q0 == 0.0) | (tl.abs(q0) > 1e30), q0, q)
            else:
                q = tl.math.div_rn(x, s)
        else:
            q = tl.math.div_rn(x, s)
        return q

    @triton.jit
    def _codes(x, s, r, MODE: tl.constexpr, out_ty: tl.constexpr, FMA_DIV: tl.constexpr):
        """Buffer values of activations `x`: int8 `round_half_even(clamp(x / s))` (static / dynamic),
        fp8 e4m3 of `clamp(x / s)`, or the float copy (MODE 2, `s` unused); `x / s` correctly rounded
        (`_quotient`, `r = 1 / s`). The int8 code is the low byte of `clamp(x / s) + 1.5 * 2**23` as
        bits (the hardware rounds half to even there; no float-to-int conversion)."""
        if MODE == 2:
            q = x.to(out_ty)
        elif MODE == 3:
            q = tl.clamp(_quotient(x.to(tl.float32), s, r, FMA_DIV), -448.0, 448.0).to(tl.float8e4nv)
        else:
            v = tl.clamp(_quotient(x.to(tl.float32), s, r, FMA_DIV), -127.0, 127.0) + 12582912.0
            q = v.to(tl.int32, bitcast=True).to(tl.int8)
        return q  # (one return: Triton checks every return's type, reachable or not)

    @triton.jit
    def _load_pairs(x_row, k0, cq, jj, K, SUB: tl.constexpr, WORDS: tl.constexpr, XT: tl.constexpr, EVEN: tl.constexpr):
        """The even and odd columns `k0 + c * SUB + 2 j (+ 1)` of a row (zero past K), each (C, SUB / 2). WORDS:
        `x_row` points at the row as int32 words (two 2-byte activations each, `XT`; K even): one contiguous
        load (16-byte vectors where K is a multiple of 16) split by bit operations in the registers that hold
        it (no layout change before the stores; loading the pairs as a trailing dimension of 2 gave each lane
        one word 256 bytes from its neighbour's and a shared-memory round trip, run 71's L1-bound kernel).
        Else two strided loads of the elements."""
        if WORDS:
            w_idx = k0 // 2 + cq[:, None] * (SUB // 2) + jj[None, :]
            if EVEN:  # (K a multiple of SUB: a mask per chunk, constant along its words, so the loads vectorize)
                w = tl.load(x_row + w_idx, mask=(k0 + cq * SUB < K)[:, None], other=0)
            else:
                w = tl.load(x_row + w_idx, mask=w_idx < K // 2, other=0)
            xe = w.to(tl.int16).to(XT, bitcast=True)
            xo = (w >> 16).to(tl.int16).to(XT, bitcast=True)
        else:
            src = k0 + cq[:, None] * SUB + 2 * jj[None, :]
            xe = tl.load(x_row + src, mask=src < K, other=0.0)
            xo = tl.load(x_row + src + 1, mask=src + 1 < K, other=0.0)
        return xe, xo

    @triton.jit
    def _act_quant_kernel(
        # pointers
        x_ptr,  # (M, K) float, row stride stride_xm
        out_ptr,  # (M, Kp) int8 / float / fp8, contiguous, permuted layout
        sx_ptr,  # (M,) fp32 per-token scales out (dynamic modes)
        scale_ptr,  # fp32 scalar in (static mode)
        cnt_ptr,  # int32 split-K arrival counters of the GEMM that follows, zeroed here (ZERO)
        pw_ptr,  # NORM: the RMSNorm weight (K,) as int32 words of two XT values (WORDS)
        # sizes
        K,
        Kp,
        stride_xm,
        n_cnt,
        # meta
        MODE: tl.constexpr,  # 0 static int8, 1 dynamic int8, 2 float copy, 3 dynamic fp8
        SUB: tl.constexpr,
        CHUNKS: tl.constexpr,  # SUB-chunks per block
        ONE_PASS: tl.constexpr,  # the row fits one block of CHUNKS * SUB columns
        PDL: tl.constexpr,  # the GEMM is launched as a programmatic dependent: let it start now
        ZERO: tl.constexpr,
        WAIT: tl.constexpr = False,  # launched itself as a programmatic dependent of the kernel before (QUANT_PDL)
        PARTS: tl.constexpr = 1,  # programs per row (grid axis 1): each finds the row's scale, quantizes a part
        FMA_DIV: tl.constexpr = False,  # divide by the row's reciprocal and fma corrections (GPU; `_quotient`)
        WORDS: tl.constexpr = False,  # x_ptr: the rows as int32 words of two XT activations (`_load_pairs`)
        XT: tl.constexpr = tl.float16,  # (WORDS) the activations' 2-byte type
        EVEN: tl.constexpr = False,  # K is a multiple of SUB
        NORM: tl.constexpr = False,  # the row RMSNorm'd first (pw_ptr, EPS; ONE_PASS and WORDS only)
        EPS: tl.constexpr = 0.0,  # NORM: the norm's epsilon
        SILU: tl.constexpr = False,  # a row of 2 K values [gate, up]: its K values silu(gate) * up (WORDS)
        EXACT_EXP: tl.constexpr = False,  # SILU: libdevice's exp (GPU)
        SILU_DIV: tl.constexpr = 0,  # SILU: the division (`_silu_glu`'s DIV)
    ):
        if NORM:
            tl.static_assert(ONE_PASS)
        if NORM or SILU:
            tl.static_assert(WORDS)
        row = tl.program_id(0).to(tl.int64)
        part = tl.program_id(1)
        if PDL:
            gdc_launch_dependents()
        if WAIT:  # (nothing read or written before the kernel that wrote x is done: x, and buffers it may still use)
            gdc_wait()
        if ZERO:
            if row == 0 and part == 0:
                zz = tl.arange(0, 1024)
                for z0 in range(0, n_cnt, 1024):
                    tl.store(cnt_ptr + z0 + zz, tl.full((1024,), 0, dtype=tl.int32), mask=z0 + zz < n_cnt)
        cc = tl.arange(0, CHUNKS)
        jj = tl.arange(0, SUB // 2)
        if WORDS:  # (int32 words of two activations: half the row stride)
            x_row = x_ptr + row * (stride_xm // 2)
        else:
            x_row = x_ptr + row * stride_xm
        o_row = out_ptr + row * Kp
        if ONE_PASS:
            # the whole row in one tile: one contiguous (vectorized) load, split into the even and
            # odd columns in registers, absmax, quantize, store (no second read of the row)
            if WORDS:
                xe1, xo1 = _load_pairs(x_row, 0, cc, jj, K, SUB, WORDS, XT, EVEN)
            else:
                tt1 = tl.arange(0, 2)
                src1 = cc[:, None, None] * SUB + 2 * jj[None, :, None] + tt1[None, None, :]
                xe1, xo1 = tl.split(tl.load(x_row + src1, mask=src1 < K, other=0.0))
            xe1 = xe1.to(tl.float32)
            xo1 = xo1.to(tl.float32)
            if SILU:
                xe1, xo1 = _silu_pairs(xe1, xo1, x_row, 0, cc, jj, K, SUB, XT, EVEN, EXACT_EXP, SILU_DIV)
            if NORM:  # (the row's sum of squares, then each value normalized: one read of the row)
                rstd = _row_rstd(xe1, xo1, K, EPS)
                xe1, xo1 = _normed_pairs(xe1, xo1, pw_ptr, 0, cc, jj, K, rstd, SUB, XT, EVEN)
            if MODE == 1 or MODE == 3:
                s = _row_scale(_row_max(_row_max(tl.maximum(tl.abs(xe1), tl.abs(xo1)), 1), 0), sx_ptr, row, part, MODE)
            elif MODE == 0:
                s = tl.load(scale_ptr).to(tl.float32)
            else:
                s = 1.0  # float copy: no scale
            if PARTS == 1:
                r1 = tl.math.div_rn(1.0, s)
                dst1 = cc[:, None] * SUB + jj[None, :]
                keep1 = dst1 < Kp
                tl.store(o_row + dst1, _codes(xe1, s, r1, MODE, out_ptr.dtype.element_ty, FMA_DIV), mask=keep1)
                tl.store(o_row + dst1 + SUB // 2, _codes(xo1, s, r1, MODE, out_ptr.dtype.element_ty, FMA_DIV), mask=keep1)
        else:
            if MODE == 1 or MODE == 3:
                amax = tl.full((CHUNKS, SUB // 2), 0, dtype=tl.float32)
                for k0 in range(0, Kp, CHUNKS * SUB):
                    xe, xo = _load_pairs(x_row, k0, cc, jj, K, SUB, WORDS, XT, EVEN)
                    xe = xe.to(tl.float32)
                    xo = xo.to(tl.float32)
                    if SILU:  # (computed again when the block is quantized below)
                        xe, xo = _silu_pairs(xe, xo, x_row, k0, cc, jj, K, SUB, XT, EVEN, EXACT_EXP, SILU_DIV)
                    amax = tl.maximum(amax, tl.maximum(tl.abs(xe), tl.abs(xo)))
                s = _row_scale(_row_max(_row_max(amax, 1), 0), sx_ptr, row, part, MODE)
            elif MODE == 0:
                s = tl.load(scale_ptr).to(tl.float32)
            else:
                s = 1.0  # float copy: no scale
        if not ONE_PASS or PARTS > 1:
            # Quantize this program's blocks of QC chunks (every PARTS-th block; one each for a row held in
            # registers above, whose part is read again here from L1/L2). With few rows, a row split over
            # PARTS programs quantizes in 1/PARTS of the time: the divisions were most of it (run 43).
            if ONE_PASS:
                tl.static_assert(CHUNKS % PARTS == 0)
                QC: tl.constexpr = CHUNKS // PARTS
            else:
                QC: tl.constexpr = CHUNKS
            cq = tl.arange(0, QC)
            r = tl.math.div_rn(1.0, s)
            for k0 in range(part * QC * SUB, Kp, PARTS * QC * SUB):
                dst = k0 + cq[:, None] * SUB + jj[None, :]  # even half of the chunk; odd half + SUB/2
                keep = dst < Kp
                xe2, xo2 = _load_pairs(x_row, k0, cq, jj, K, SUB, WORDS, XT, EVEN)
                if SILU:
                    xe2, xo2 = _silu_pairs(xe2.to(tl.float32), xo2.to(tl.float32), x_row, k0, cq, jj, K, SUB, XT, EVEN,
                                           EXACT_EXP, SILU_DIV)
                if NORM:  # (ONE_PASS: `rstd` from the whole row above)
                    xe2, xo2 = _normed_pairs(xe2.to(tl.float32), xo2.to(tl.float32), pw_ptr, k0, cq, jj, K, rstd, SUB,
                                             XT, EVEN)
                tl.store(o_row + dst, _codes(xe2, s, r, MODE, out_ptr.dtype.element_ty, FMA_DIV), mask=keep)
                tl.store(o_row + dst + SUB // 2, _codes(xo2, s, r, MODE, out_ptr.dtype.element_ty, FMA_DIV), mask=keep)

    @triton.jit
    def _w4a8_kernel(
        # pointers
        a_ptr,  # activations: permuted buffer (M, Kp) or raw float x (M, K)
        w_ptr,  # uint8 (N, K // 2) packed int4, QuantLinear layout
        scales_ptr,  # fp16 (N, groups)
        zeros_ptr,  # uint8 (N, groups) or dummy
        sx_ptr,  # activation scale: fp32 scalar or (M,) per token, or dummy
        bias_ptr,  # (N,) or dummy
        out_ptr,  # (M, N) output dtype
        ws_ptr,  # split-K: fp32 partial sums (SPLIT_K, M, N), plain stores
        cnt_ptr,  # split-K: int32 arrival counter per output tile, zero between launches
        # sizes
        M,
        N,
        K,
        # strides (in elements)
        stride_am,
        stride_wn,
        stride_sn,
        stride_zn,
        stride_om,
        # meta-parameters
        GROUP: tl.constexpr,  # weight group size (K for per-channel)
        SUB: tl.constexpr,  # K columns per step: 64 (group 64) or 128
        PER_CHANNEL: tl.constexpr,  # one scale per row: int32 accumulation over all of K
        A_MODE: tl.constexpr,  # 0 permuted buffer, 1 raw static int8, 2 raw dynamic int8, 3 raw float
        DOT_TYPE: tl.constexpr,  # 0 int8, 1 float (fp16/bf16 operands), 2 fp8 e4m3
        HAS_ZEROS: tl.constexpr,
        SX_MODE: tl.constexpr,  # 0 none, 1 per-tensor scalar, 2 per-token (M,)
        HAS_BIAS: tl.constexpr,
        EVEN_K: tl.constexpr,  # K % SUB == 0: no masks along K
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        GROUP_M: tl.constexpr,
        SPLIT_K: tl.constexpr,
        USE_ASM: tl.constexpr,  # PTX unpacking (GPU); plain Triton ops under TRITON_INTERPRET
        PDL: tl.constexpr = False,  # launched as a programmatic dependent of the quantization kernel
        PREFETCH_LINES: tl.constexpr = 1,  # 128-byte lines per weight row to prefetch (PDL), power of 2
    ):
        HALF: tl.constexpr = SUB // 2
        # -- tile indices: grouped ordering so that GROUP_M row blocks share weight tiles in L2
        pid = tl.program_id(0)
        pid_k = tl.program_id(1)
        pid_m, pid_n = _grouped_tile(pid, M, N, BLOCK_M, BLOCK_N, GROUP_M)

        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_j = tl.arange(0, HALF)
        # Out-of-range rows/columns read row 0 / column 0 (valid memory) and are never stored.
        rows = tl.where(offs_m < M, offs_m, 0).to(tl.int64)
        cols = tl.where(offs_n < N, offs_n, 0).to(tl.int64)
        row_ok = offs_m < M

        a_rows = a_ptr + rows[:, None] * stride_am  # (BLOCK_M, 1)
        w_tile = w_ptr + cols[None, :] * stride_wn + offs_j[:, None]  # (HALF, BLOCK_N) bytes

        # -- K range of this program (split-K for small M)
        n_steps = (K + SUB - 1) // SUB
        steps_per_split = (n_steps + SPLIT_K - 1) // SPLIT_K
        step_lo = pid_k * steps_per_split
        step_hi = min(step_lo + steps_per_split, n_steps)

        # -- activation scale of raw float inputs quantized here
        if A_MODE == 1:
            s_row = tl.full((BLOCK_M,), 0, dtype=tl.float32) + tl.load(sx_ptr).to(tl.float32)
        elif A_MODE == 2:
            # per-token absmax over the whole row (every K slice needs it), 512 columns a load
            offs_c = tl.arange(0, 512)
            amax = tl.full((BLOCK_M, 512), 0, dtype=tl.float32)
            for c0 in range(0, K, 512):
                xc = tl.load(a_rows + c0 + offs_c[None, :], mask=row_ok[:, None] & (c0 + offs_c[None, :] < K), other=0.0)
                amax = tl.maximum(amax, tl.abs(xc.to(tl.float32)))
            m_abs = _row_max(amax, 1)
            s_row = tl.where(m_abs > 0, tl.math.div_rn(m_abs, 127.0), 1.0)

        if PDL:
            # Launched while the activation-quantization kernel (and, with QUANT_PDL, the kernel before it) still
            # runs: pull this program's weight bytes into L2 (neither writes them), then wait for its results.
            lo = step_lo * HALF
            last = tl.minimum(tl.maximum(step_hi * HALF - 1, lo), K // 2 - 1)
            lines = tl.arange(0, PREFETCH_LINES)
            byte = tl.minimum(lo + lines * 128, last)
            _prefetch_l2(w_ptr + cols[:, None] * stride_wn + byte[None, :])
            gdc_wait()

        if DOT_TYPE == 0:
            acc_i = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.int32)
        acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.float32)
        if not HAS_ZEROS:
            zero = tl.full((1, BLOCK_N), 8, dtype=tl.int8)
        if PER_CHANNEL:
            scale = tl.load(scales_ptr + cols * stride_sn).to(tl.float32)
            if HAS_ZEROS:
                zero = tl.load(zeros_ptr + cols * stride_zn).to(tl.int8)[None, :]
        else:
            # Group scales (and zeros) are prefetched one step ahead: these small loads are not
            # software-pipelined by Triton, and a load waited on in the same step stalls the
            # whole CTA for a memory latency every step.
            last_g = K // GROUP - 1
            g_first = (step_lo * SUB) // GROUP
            s_next = tl.load(scales_ptr + cols * stride_sn + g_first)
            if HAS_ZEROS:
                z_next = tl.load(zeros_ptr + cols * stride_zn + g_first)

        for step in range(step_lo, step_hi):
            k0 = step * SUB
            if not PER_CHANNEL:
                g_pref = tl.minimum((k0 + SUB) // GROUP, last_g)
                s_w = s_next.to(tl.float32)
                s_next = tl.load(scales_ptr + cols * stride_sn + g_pref)
                if HAS_ZEROS:
                    zero = z_next.to(tl.int8)[None, :]
                    z_next = tl.load(zeros_ptr + cols * stride_zn + g_pref)
            # ---- weights: (HALF, BLOCK_N) packed bytes -> two int8 operands (even, odd columns)
            if EVEN_K:
                wb = tl.load(w_tile + k0 // 2)
            else:
                wb = tl.load(w_tile + k0 // 2, mask=(k0 // 2 + offs_j[:, None]) < K // 2, other=0)
            w_even = _unpack_int4(wb, zero, False, HAS_ZEROS, USE_ASM)  # code - zero, in [-15, 15]
            w_odd = _unpack_int4(wb, zero, True, HAS_ZEROS, USE_ASM)
            # ---- activations: (BLOCK_M, HALF) even and odd columns of this chunk
            if A_MODE == 0:
                a_even = tl.load(a_rows + k0 + offs_j[None, :])
                a_odd = tl.load(a_rows + k0 + HALF + offs_j[None, :])
            else:
                src = k0 + 2 * offs_j[None, :]
                xe = tl.load(a_rows + src, mask=row_ok[:, None] & (src < K), other=0.0)
                xo = tl.load(a_rows + src + 1, mask=row_ok[:, None] & (src + 1 < K), other=0.0)
                if A_MODE == 3:
                    a_even = xe
                    a_odd = xo
                else:
                    ve = tl.clamp(tl.math.div_rn(xe.to(tl.float32), s_row[:, None]), -127.0, 127.0)
                    vo = tl.clamp(tl.math.div_rn(xo.to(tl.float32), s_row[:, None]), -127.0, 127.0)
                    a_even = _round_half_even(ve).to(tl.int8)
                    a_odd = _round_half_even(vo).to(tl.int8)
            # ---- exact partial sums of this chunk (one weight group, or part of one)
            if DOT_TYPE == 0:
                if PER_CHANNEL:
                    acc_i = tl.dot(a_even, w_even, acc_i, out_dtype=tl.int32)
                    acc_i = tl.dot(a_odd, w_odd, acc_i, out_dtype=tl.int32)
                else:
                    d = tl.dot(a_even, w_even, out_dtype=tl.int32)
                    d = tl.dot(a_odd, w_odd, d, out_dtype=tl.int32)
                    # int32 -> fp32 without the quarter-rate I2F: |d| <= 127 * 15 * 128 < 2**22,
                    # so the bits of (d + 0x4B400000) are the float 1.5 * 2**23 + d, exactly.
                    f = (d + 0x4B400000).to(tl.float32, bitcast=True) - 12582912.0
                    acc += f * s_w[None, :]
            else:
                if DOT_TYPE == 1:
                    we = w_even.to(a_even.dtype)
                    wo = w_odd.to(a_even.dtype)
                else:
                    we = w_even.to(tl.float16).to(tl.float8e4nv)
                    wo = w_odd.to(tl.float16).to(tl.float8e4nv)
                if PER_CHANNEL and DOT_TYPE == 1:
                    acc = tl.dot(a_even, we, acc, out_dtype=tl.float32)
                    acc = tl.dot(a_odd, wo, acc, out_dtype=tl.float32)
                elif PER_CHANNEL:  # fp8: Hopper accumulates fp8 products at reduced precision; add per step
                    acc += tl.dot(a_odd, wo, tl.dot(a_even, we, out_dtype=tl.float32), out_dtype=tl.float32)
                else:
                    d = tl.dot(a_even, we, out_dtype=tl.float32)
                    d = tl.dot(a_odd, wo, d, out_dtype=tl.float32)
                    acc += d * s_w[None, :]

        # -- epilogue: group scale (per-channel), activation scale, bias
        if PER_CHANNEL:
            if DOT_TYPE == 0:
                acc = acc_i.to(tl.float32) * scale[None, :]
            else:
                acc = acc * scale[None, :]
        if A_MODE == 1 or A_MODE == 2:
            acc = acc * s_row[:, None]
        elif SX_MODE == 1:
            acc = acc * tl.load(sx_ptr).to(tl.float32)
        elif SX_MODE == 2:
            acc = acc * tl.load(sx_ptr + rows).to(tl.float32)[:, None]
        if SPLIT_K > 1:
            _split_k_reduce(acc, ws_ptr, cnt_ptr + pid, bias_ptr, cols, out_ptr, offs_m, offs_n, row_ok, M, N,
                            stride_om, pid_k, HAS_BIAS, SPLIT_K)
        else:
            _bias_store(acc, bias_ptr, cols, out_ptr, offs_m, offs_n, stride_om, row_ok, N, pid_k, HAS_BIAS, 1)

    @triton.jit
    def _split_k_reduce(acc, ws_ptr, cnt_ptr, bias_ptr, cols, out_ptr, offs_m, offs_n, row_ok, M, N, stride_om,
                        pid_k, HAS_BIAS: tl.constexpr, SPLIT_K: tl.constexpr):
        """Split-K without a zeroed buffer or a second launch: each program stores its fp32 partial
        tile in its own workspace slice and counts itself in on the tile's arrival counter; the
        last to arrive sums the slices in a fixed order (deterministic), adds the bias, writes the
        output and resets the counter to zero for the next launch."""
        mask = row_ok[:, None] & (offs_n[None, :] < N)
        tile = offs_m.to(tl.int64)[:, None] * N + offs_n[None, :]
        mn = tl.cast(M, tl.int64) * N  # M may be the constant 1 (Triton specializes it)
        tl.store(ws_ptr + pid_k * mn + tile, acc, mask=mask)
        tl.debug_barrier()  # every thread's partial is written before the release below
        arrived = tl.atomic_add(cnt_ptr, 1, sem="acq_rel", scope="gpu")
        if arrived == SPLIT_K - 1:
            total = tl.load(ws_ptr + tile, mask=mask, other=0.0, cache_modifier=".cg")
            for s in range(1, SPLIT_K):
                total += tl.load(ws_ptr + s * mn + tile, mask=mask, other=0.0, cache_modifier=".cg")
            _bias_store(total, bias_ptr, cols, out_ptr, offs_m, offs_n, stride_om, row_ok, N, 0, HAS_BIAS, 1)
            tl.atomic_xchg(cnt_ptr, 0)


# Launch parameters per M bucket, picked by `benchmarks/bench_gemm.py --sweep` on the H100
# (benchmarks/GPU_NOTES.md); (upper bound of M, config). M <= 16 with int8 activations: the Gluon
# decode kernel fed by a 3-deep TMA ring (`--mma-decode`, run 35: 5-25 % faster than the Triton
# kernel, which keeps the other activation modes and GPUs without TMA).
CONFIGS: list[tuple[int, KernelConfig]] = [
    (DECODE_MAX_M, KernelConfig(block_m=16, block_n=64, num_warps=4, num_stages=3, split_k=16, tma_stages=3)),
    (128, KernelConfig(block_m=32, block_n=128, num_warps=4, num_stages=4, split_k=2)),
    (512, KernelConfig(block_m=64, block_n=128, num_warps=4, num_stages=4)),
    (1 << 62, KernelConfig(block_m=64, block_n=128, num_warps=4, num_stages=4)),
]


# From PREFILL_MIN_M rows on, the GEMM is `triton_prefill`'s, with the launch parameters of PREFILL_CONFIGS' M
# bucket (upper bound of M, config): the packed weights taken directly by the swap kernel where it serves the
# layer (below), else unpacked once per call with a GEMM streaming both operands.
# Runs 19-28 (H100): 1.1-1.5x faster than the tiled kernel at M >= 1024 and on every shape with
# K <= 16384 at M = 512; at 384 it still loses on the widest layers (13B/70B gate/up), below that
# (and for K = 28672 below 1024) the unpacking costs more than it saves.
# On Hopper, for int8 activations and symmetric weights with groups of 128 columns or more, the GEMM is the
# Gluon kernel that takes the packed weights as wgmma's register operand (`gluon_swap`: no unpack pass;
# run 78: its op 2-13 % faster than the warp-specialized one at M = 2048-4096, run 79: compiled 7B prefill
# 51.9 -> 49.8 ms); the other Hopper cases take the warp-specialized Gluon kernel (`gluon_prefill`; run 54:
# 1.2-1.36x faster than the Triton kernel at M = 4096, 1.09-1.17x cuBLAS fp16); elsewhere, and for W4A16,
# `prefill_gemm` falls back to the Triton kernel's `PrefillConfig()`.
# Without the unpack pass (`triton_prefill.direct`) the swap kernel pays from 256 rows on, at every K (ops at M = 256
# against the tiled kernel, run 81: 7B q/k/v/o 31.9 -> 25.0 µs, gate+up 122.6 -> 80.0, down 74.6 -> 50.6, 70B
# gate/up 333.6 -> 191.5; run 87: 70B down (K = 28672) 270.7 -> 157.6, at 512 rows 547.9 -> 296.0); at 128 rows
# it wins on the wide layers only.
USE_PREFILL = True
# (upper bound of K, first M with an unpack pass, first M where the packed weights are taken directly)
PREFILL_MIN_M: list[tuple[int, int, int]] = [(16384, 512, 256), (1 << 62, 1024, 256)]
# The swap kernel's token tiles, each with its time per tile relative to the 128-token one (run 81: 7B q/k/v/o at
# 256 rows, one round of tiles each, 25.0 vs 32.9 µs). Where the installed config is one of them, the default
# dispatch takes the tile whose tiles finish first over the GPU's SMs (`swap_tile`): 64-token tiles where
# the layer is narrow and M small (4096 outputs at 128-256 rows), else 128 (runs 81 / 87: all 10 measured
# shape / M pairs from 128 to 1024 rows agree).
SWAP_TILES: list[tuple[float, PrefillConfig]] = [(0.76, PrefillConfig(64, 128, 4, 8, swap=True)),
                                                 (1.0, PrefillConfig(128, 128, 4, 6, swap=True))]
# 256-row weight tiles (`gluon_swap` WIDE: each activation tile brought from L2 serves twice the weight rows), with
# their time per tile relative to the 128-token, 128-row one: a candidate of
# `swap_tile` where the sums are one int32 per output (two-level scales, per channel). Run 123 (ops, H100): 1.83-1.93
# on well-rounded shapes (70B down at 4096 rows 1785 -> 1635 µs, 7B down 388 -> 354); the rounds decide elsewhere
# (13B q/k/v/o at 1024 rows: 160 wide tiles = 1.2 rounds, 16 % slower) — ceil(rounds) x 1.85 picked the faster
# tile in 23 of 24 shape / M pairs at 1024-4096 rows (70B gate/up at 1024: a tie). None: never.
SWAP_WIDE: tuple[float, PrefillConfig] | None = (1.85, PrefillConfig(128, 256, 4, 3, swap=True))
# ... from this many rows on (the range run 123 measured; at 512 rows stream-K serves the badly rounded layers)
SWAP_WIDE_MIN_M = 1024
# (the installed bucket holds SWAP_TILES' object itself: that is what `_prefill_config` re-tiles)
PREFILL_CONFIGS: list[tuple[int, PrefillConfig]] = [(1 << 62, SWAP_TILES[-1][1])]
# Medium M (from this many rows up to PREFILL_MIN_M's direct threshold): the swap kernel also serves a layer whose
# smallest swap tiles give at least this share of the SMs one tile each; the tiled kernel (32-row tiles up to 128
# rows: it reads and unpacks each weight M / 32 times) keeps the rest. Run 89 (ops, H100, six shapes at 64 / 128 /
# 192 rows): all 18 pairs agree — e.g. 7B gate+up at 128 rows 74.8 -> 52.2 µs, 70B down 166.0 -> 115.0, 7B down at
# 192 69.6 -> 46.9, while 4096-wide layers at 64-128 rows (32-64 tiles) and 70B down / 13B down at 64 (64 / 40)
# stay 12-20 % faster on the tiled kernel; the winners had >= 80 tiles, the losers <= 64.
SWAP_MEDIUM: tuple[int, float] = (64, 0.5)


def _output_tiles(m: int, n: int, cfg: PrefillConfig) -> int:
    """Tiles of `cfg` over an (m, n) output."""
    return -(-m // cfg.block_m) * -(-n // cfg.block_n)


def swap_tile(m: int, n: int, sms: int, wide: bool = False) -> PrefillConfig:
    """The `SWAP_TILES` config (with `wide`, SWAP_WIDE's too) whose `ceil(tiles / sms)` rounds of tiles of an (m, n)
    output take the least time."""

    def cost(entry):
        rel_time, cfg = entry
        return math.ceil(_output_tiles(m, n, cfg) / sms) * rel_time

    return min(SWAP_TILES + ([SWAP_WIDE] if wide and SWAP_WIDE else []), key=cost)[1]


# Single-launch decode kernel (`triton_decode`) per M bucket (M <= DECODE_MAX_M): the best of
# `benchmarks/bench_gemm.py --decode-sweep` on the H100 (benchmarks/GPU_NOTES.md, run 6).
# `fused` matters only for dynamic activations (static ones are always quantized in-kernel).
# It measured 5-25 % SLOWER than the split-K path of `_w4a8_kernel` (CONFIGS[0]) on every
# LLaMA shape, so it is used only when a `DecodeConfig` is passed or USE_DECODE_KERNEL is set.
USE_DECODE_KERNEL = False
DECODE_CONFIGS: list[tuple[int, DecodeConfig]] = [
    (1, DecodeConfig(block_n=32, steps=8, num_warps=4, dot=DOT_INT8, fused=False)),
    (DECODE_MAX_M, DecodeConfig(block_n=32, steps=8, num_warps=4, dot=DOT_INT8, fused=False)),
]


# The dp4a GEMV (`triton_gemv`) for M <= GEMV_MAX_M with int8 activations, and its launch
# parameters per M (upper bound of M, config).
USE_GEMV = False
GEMV_CONFIGS: list[tuple[int, GemvConfig]] = [(4, GemvConfig(block_n=32, chunks=4, split_k=1, num_warps=4))]


# Split-K at M <= 16 only as far as it is needed to fill the GPU: a layer with enough column
# tiles (fused q/k/v or gate/up) runs with fewer K slices or none.
# `_split_k` picks the smallest split with at least this many programs (capped by the config's); 0: always the
# config's split. 4 per SM on the H100 (run 15) for the Triton kernel and the TMA kernel's 64-column steps (groups of
# 64); run 111 timed both at 264: W4A16 on the Triton kernel 5-16 % slower, groups of 64 -13 ... +6 % (the long-K
# layers among them past TMA_MAX_GROUPS, i.e. on the Triton kernel).
DECODE_TARGET_PROGRAMS = 528
# The TMA kernel with 128-column steps (`_split_k(tma_steps=...)`, `_tma_slice_steps`): 2 per SM, fewer and longer
# programs stream better (run 104: 7B gate+up at M = 1 27.1 -> 22.9 us unsplit, 70B gate/up 59.1 -> 53.0; the
# 4096-row layers 0-7 %).
TMA_TARGET_PROGRAMS = 264
# Programmatic dependent launch at M <= 16 on Hopper: the GEMM starts while the activations are
# quantized, prefetches its weights into L2, and waits for them (`gdc_wait`); the quantization
# kernel triggers it early (`gdc_launch_dependents`). Off, no kernel is launched as a programmatic dependent
# (SWAP_PDL, QUANT_PDL and the one-launch M = 1 op included).
USE_PDL = True
# The same (where USE_PDL allows) for the prefill op on the swap kernel (`gluon_swap`: its loader requests the first
# ring slots' weights before waiting for the quantization kernel), where the kernel reads the layer's scales itself
# (DS) and without stream-K: otherwise another kernel runs between the two (run 151: 7B q/k/v/o at 1024 rows 40.6 ->
# 39.4 µs, 0-7 % at 64-4096 rows).
SWAP_PDL = True
# Bytes of weights that the programs of one PDL launch prefetch into L2 in all (0: no limit).
PREFETCH_BUDGET = 24 << 20


def _cdiv(a: int, b: int) -> int:
    """`triton.cdiv` on the host without its constexpr-function wrapper (~1.5 µs a call here, ~6 on the H100
    machine: the launch paths call it several times per op)."""
    return -(-a // b)


def _pow2(n: int) -> int:
    """The least power of two >= n (n >= 1; `triton.next_power_of_2` likewise)."""
    return 1 << (n - 1).bit_length()


def _tiles(cfg: KernelConfig, m: int, n: int) -> int:
    """Output tiles of one launch (programs per K slice)."""
    return _cdiv(m, cfg.block_m) * _cdiv(n, cfg.block_n)


def _split_k(cfg: KernelConfig, m: int, n: int, steps: int | None = None, tma_steps: int = 0) -> int:
    """K slices of one launch: the config's, or at M <= 16 the fewest that give DECODE_TARGET_PROGRAMS programs
    (TMA_TARGET_PROGRAMS for the TMA kernel with 128-column steps, `tma_steps` > 0: then also enough that no
    slice takes more than `tma_steps` of the layer's `steps`, as far as the config allows); with `steps` no more
    than leave every slice a step (a split that does not divide the steps is lowered to the fewest slices of the
    same length: no empty slices)."""
    split = cfg.split_k
    target = TMA_TARGET_PROGRAMS if tma_steps else DECODE_TARGET_PROGRAMS
    if split > 1 and m <= DECODE_MAX_M and target:
        split = max(1, min(split, _cdiv(target, max(1, _tiles(cfg, m, n)))))  # (an empty batch: no tiles)
        if tma_steps and steps:
            split = min(cfg.split_k, max(split, _cdiv(steps, tma_steps)))
    if steps and split > 1:
        split = _cdiv(steps, _cdiv(steps, split))
    return split


def _pdl_constexprs(pdl: bool, n: int, k: int, sub: int, split: int) -> dict:
    """PDL and PREFETCH_LINES of `_w4a8_kernel`: the 128-byte lines of each weight row that a
    program prefetches from the start of its K range: a power of two covering the range (plus
    one for a range that starts mid-line), but at most `PREFETCH_BUDGET` bytes over the grid
    (prefetching all of a 235 MB layer only evicts its own first lines: run 13)."""
    if not pdl:
        return {"PDL": False, "PREFETCH_LINES": 1}
    steps = _cdiv(_cdiv(k, sub), split)  # K steps per program
    lines = _pow2(_cdiv(steps * sub // 2, 128) + 1)
    if PREFETCH_BUDGET:
        cap = max(1, PREFETCH_BUDGET // (n * split * 128))
        lines = min(lines, 1 << (cap.bit_length() - 1))
    return {"PDL": True, "PREFETCH_LINES": lines}


def _pdl_available(x: torch.Tensor) -> bool:
    return _pdl_device(x.device)


def _pdl_device(device: torch.device) -> bool:
    """Programmatic dependent launch on `device` (USE_PDL; NVIDIA Hopper or later — not ROCm, whose capability
    majors overlap)."""
    return USE_PDL and device.type == "cuda" and torch.version.hip is None and _capability(device.index)[0] >= 9


def _has_fp8(x: torch.Tensor) -> bool:
    """fp8 tensor cores (Ada / Hopper and later)."""
    return x.is_cuda and _fp8_device(x.device.index)


@torch.compiler.assume_constant_result
def _fp8_device(index: int) -> bool:
    # (a constant to torch.compile, which otherwise warns about tracing through `_capability`'s cache)
    return _capability(index) >= (8, 9)


def _for_m(table: list[tuple[int, object]], m: int):
    """The config of the first bucket whose upper bound is >= M (else the last one)."""
    for bound, cfg in table:
        if m <= bound:
            return cfg
    return table[-1][1]


# warps of one quantization program (None: 8 for rows held in registers wider than 4096 columns, else 4)
QUANT_WARPS: int | None = None
# With few rows, each row is quantized by several programs of about QUANT_PART_COLS columns (all of
# them find the row's scale; 0: one program per row), at most QUANT_MAX_PROGRAMS programs in all
# (runs 44-45: 16 rows x 16 and x 2 programs, each reading its whole row, slowed the batch-16 decode
# step by 11 % and 3 %; with 16, 16 rows keep one program each). Runs 236-239 (ops at 2-16 rows, the same codes at
# every budget): 32 at 2-4 rows took 70B down from ×2.87-2.94 to ×2.95-3.05 fp16 but slowed 70B gate/up at 4 rows by
# 2.2-2.9 µs (×3.04 -> ×2.89-2.93); 32 at 8-16 rows and 64-128 at any row count slowed the op on most shapes (by up to
# 40 %) though the quantization kernel alone got faster: its programs, launched under PDL, take SM room that the
# GEMM's early programs use to prefetch their weights. So 16 stays.
QUANT_PART_COLS = 1024
QUANT_MAX_PROGRAMS = 16
# On the GPU, divide by the row's reciprocal with fma corrections instead of `div.rn` (`_quotient`; same codes).
QUANT_FMA_DIV = True
# 2-byte activations read as int32 words of an even / odd column pair (`_load_pairs`; else two strided loads,
# or a trailing pair dimension for a row held in registers).
QUANT_WORDS = True
# Launch the quantization kernel as a programmatic dependent of the kernel before it (where USE_PDL allows, Hopper):
# its programs are set up while that kernel drains and wait for it (`gdc_wait`) before touching memory, so the launch
# gap goes under the other kernel's tail — as the one-launch M = 1 decode op does after a norm. It triggers its GEMM at
# once, so that GEMM (which reads only the layer's weights, scales and zeros before its own wait) may now start before
# the kernel ahead of the quantization kernel is done: those tensors must not be written by that kernel (in a model a
# norm or another op runs between; `w4a8_linear` launches without PDL on copies it made itself). Run 187 (ops, H100):
# at 16 rows 0.7 µs faster (7B q/k/v/o 11.4 -> 10.7 µs), at 1024 rows 0-2 %; the compiled b16 step unchanged.
QUANT_PDL = True


def _quant_parts(m: int, chunks: int, sub: int, one_pass: bool, kp: int) -> int:
    """Programs per row of `_act_quant_kernel`: a power of two dividing CHUNKS for a row held in
    registers, else up to one per block of CHUNKS * SUB columns."""
    budget = QUANT_MAX_PROGRAMS // max(m, 1)
    if budget < 2 or not QUANT_PART_COLS:
        return 1
    if one_pass:  # a power of two (it divides CHUNKS)
        parts = max(1, min(chunks, chunks * sub // QUANT_PART_COLS, budget))
        return 1 << (parts.bit_length() - 1)
    return min(_cdiv(kp, chunks * sub), budget)


def quantize_activation_triton(
    x2: torch.Tensor,
    group_size: int,
    act_mode: str,
    act_scale: torch.Tensor | None = None,
    pdl: bool = False,
    counters: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Quantize `(M, K)` activations into the kernels' permuted buffer (see `activation_layout`).

    act_mode "static": int8 codes with the fp32 scalar `act_scale`; "dynamic": int8 codes and
    per-token scales `max|x_t| / 127` (all-zero rows: 1); "none": a permuted float copy;
    "dynamic_fp8": float8 e4m3 with per-token scales `max|x_t| / 448`.
    pdl: the GEMM that follows is launched as a programmatic dependent (GPU only).
    counters: that GEMM's int32 split-K arrival counters (`_split_k_workspace`), zeroed here
    on the way: no launch of their own, and CUDA-graph replays re-zero them.
    Returns `(buffer (M, Kp), scales (M,) fp32 or None)`.
    """
    m, k = x2.shape
    quant = _QuantLaunch(m, k, x2.dtype, x2.device, group_size, act_mode, _words(x2), pdl, counters is not None)
    a, sx, _ = quant.run(x2, x2.stride(0), act_scale, counters)
    return a, sx


def _words(x2: torch.Tensor) -> bool:
    """`_act_quant_kernel` reads the (M, K) activations `x2` as int32 words (QUANT_WORDS): 2-byte elements, an even
    row length and stride, an even storage offset for the view, 4-byte aligned loads."""
    return (QUANT_WORDS and x2.dtype in (torch.float16, torch.bfloat16) and x2.shape[1] % 2 == 0 and x2.stride(1) == 1
            and x2.stride(0) % 2 == 0 and x2.storage_offset() % 2 == 0 and x2.data_ptr() % 4 == 0)


class _QuantLaunch:
    """The host decisions of one `_act_quant_kernel` launch (`quantize_activation_triton`) for (M, K) activations of
    `dtype` (`words`: read as int32 words), `zero`: with split-K counters to zero, `prologue`: an RMSNorm applied to
    each row first (NORM), or SiLU * up of rows of 2 K values `[gate, up]` (SILU; the caller checked
    `_prologue_fusable`); `run` allocates and launches."""

    __slots__ = ("m", "k", "kp", "device", "mode", "dtype", "grid", "constexprs", "warps", "words", "options", "pw")

    def __init__(self, m, k, dtype, device, group_size, act_mode, words, pdl, zero, prologue=None):
        sub = _sub_chunk(group_size)
        kp = -(-k // sub) * sub
        mode = {"static": _Q_STATIC, "dynamic": _Q_DYNAMIC, "none": _Q_COPY, "dynamic_fp8": _Q_FP8}[act_mode]
        silu = prologue is not None and prologue.kind == "silu_glu"
        chunks = max(1, min(ONE_PASS_MAX_K // sub, _pow2(max(1, kp // sub))))
        # (SiLU * up holds the gate and the up values: past SILU_MAX_K columns, two passes over blocks of that many)
        one_pass = chunks * sub >= kp and not (silu and kp > SILU_MAX_K)
        if not one_pass:  # (a block is a power of two of chunks)
            block = max(1, (SILU_MAX_K if silu else PASS_BLOCK_K) // sub)
            chunks = min(1 << (block.bit_length() - 1), chunks)
        parts = _quant_parts(m, chunks, sub, one_pass, kp)
        # a row held in registers is padded to a power of two of chunks: parts past Kp are not launched
        launched = _cdiv(kp, chunks // parts * sub) if one_pass else parts
        self.m, self.k, self.kp, self.device, self.mode, self.words = m, k, kp, device, mode, words
        self.dtype = {_Q_STATIC: torch.int8, _Q_DYNAMIC: torch.int8, _Q_COPY: dtype, _Q_FP8: torch.float8_e4m3fn}[mode]
        self.grid = (m, launched)
        self.constexprs = dict(MODE=mode, SUB=sub, CHUNKS=chunks, ONE_PASS=one_pass, PDL=pdl, ZERO=zero, PARTS=parts,
                               FMA_DIV=device.type == "cuda" and QUANT_FMA_DIV, WORDS=words, EVEN=words and k % sub == 0,
                               XT=tl.bfloat16 if words and dtype == torch.bfloat16 else tl.float16)
        self.warps = QUANT_WARPS or (4 if chunks * sub <= 4096 else 8 if chunks * sub <= 16384 else 16)  # (as held)
        self.pw = None
        if silu:
            on_gpu = device.type == "cuda"  # (the interpreter: `tl.exp`, and a division, its fma rounding twice)
            # (SILU_DIV where it was checked for every gate value: sm_90; elsewhere the correctly rounded division)
            fast = on_gpu and torch.version.hip is None and _capability(device.index)[0] == 9
            self.constexprs.update(SILU=True, EXACT_EXP=on_gpu, SILU_DIV=SILU_DIV if fast else 0)
            # (a thread holds the gate and the up values: twice the warps, 64 registers at 11008 columns, against
            # 112 at 8 warps, with SILU_DIV 2; offline compile for sm_90)
            self.warps = QUANT_WARPS or min(16, 2 * self.warps)
        elif prologue is not None:
            self.constexprs.update(NORM=True, EPS=float(prologue.eps))
            # (the weight itself, viewed at each launch: a kept plan follows a `.data` swap, and the object it holds
            # keeps its `id` — the plan signature's — from being reused)
            self.pw = prologue.weight
        wait = QUANT_PDL and _pdl_device(device)
        self.constexprs["WAIT"] = wait
        self.options = {"num_warps": self.warps, **({"launch_pdl": True} if wait else {})}

    def run(self, x, row_stride: int, act_scale=None, counters=None, key=None):
        """Quantize `x` (M rows of K elements `row_stride` apart, the layout the launch was planned for) into a fresh
        buffer: `(buffer (M, Kp), scales (M,) fp32 or None, the launch key)`; `key`: a previous run's, if its
        buffers' alignment is this one's."""
        m, mode = self.m, self.mode
        out = torch.empty(m, self.kp, dtype=self.dtype, device=self.device)
        sx = torch.empty(m, dtype=torch.float32, device=self.device) if mode in (_Q_DYNAMIC, _Q_FP8) else None
        if m:
            xs = x.view(torch.int32) if self.words else x
            sx_arg = sx if sx is not None else out
            scale_arg = act_scale if mode == _Q_STATIC else out
            counters_arg = counters if counters is not None else out
            pw_arg = self.pw.view(torch.int32) if self.pw is not None else out
            args = (xs, out, sx_arg, scale_arg, counters_arg, pw_arg, self.k, self.kp, row_stride,
                    counters.numel() if counters is not None else 0)
            # (the key: what Triton specializes on — the arguments' dtypes and alignment, the integers, the constexprs)
            if key is None:
                key = (tuple(t.dtype for t in args[:6]), args[6:], tuple(self.constexprs.values()), self.warps,
                       launch.alignment(*args[:6]))
            launch.launch(_act_quant_kernel, self.grid, key, args, self.constexprs, self.options)
        return out, sx, key


def _quantized_operand(x2, group_size, act_mode, act_scale, pdl=False, counters=None):
    """The permuted activation buffer and its scale for the GEMM epilogue: `(a, sx, sx_mode)`."""
    a, sx = quantize_activation_triton(x2, group_size, act_mode, act_scale, pdl, counters)
    return (a, *_epilogue_scale(act_mode, act_scale, sx))


def _epilogue_scale(act_mode, act_scale, sx):
    """`(sx, sx_mode)` for the GEMM epilogue: sx_mode 1 = the static fp32 scalar, 2 = the per-token
    scales `sx`, 0 = none (float activations)."""
    if act_mode == "static":
        return act_scale.reshape(()).float(), 1
    return sx, 2 if act_mode in ("dynamic", "dynamic_fp8") else 0


def _launch(
    a: torch.Tensor,
    a_mode: int,
    dot_type: int,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    sx: torch.Tensor | None,
    sx_mode: int,
    bias: torch.Tensor | None,
    m: int,
    k: int,
    group_size: int,
    out_dtype: torch.dtype,
    cfg: KernelConfig,
    out: torch.Tensor | None = None,
    pdl: bool = False,
    workspace: tuple | None = None,
) -> torch.Tensor:
    """One `_w4a8_kernel` launch (split-K reduced inside it, see `_split_k_reduce`);
    `pdl`: launched as a programmatic dependent of the kernel before; `workspace`: the
    `_split_k_workspace` whose counters the quantization kernel zeroed (else zeroed here, or with `pdl` the
    device's kept zero counters of the one-launch M = 1 op: a memset would be a node between the kernel before and
    this one, and the weights could not stream in under that kernel's tail; without `workspace` a split TMA launch
    takes neither where SPLIT_FLAGS allows: its kept partials)."""
    n = qweight.shape[0]
    sub = _sub_chunk(group_size)
    if out is None:
        out = torch.empty(m, n, dtype=out_dtype, device=a.device)
    if m == 0 or n == 0:
        return out
    tma = _use_tma(cfg, a, a_mode, dot_type, m, qweight, k)
    tma_steps = _tma_slice_steps(tma, k, group_size)
    partials = None  # (the TMA launch reducing through the kept partials, SPLIT_FLAGS: no workspace, no counters)
    if tma and workspace is None:
        split = _split_k(cfg, m, n, _cdiv(k, sub), tma_steps)
        partials = _flag_partials(a.device, split, m, n) if _tma_groups_fit(k, sub, split, group_size) else None
    if partials is not None:
        ws = counters = out
    else:
        split, ws, counters = workspace or _split_k_workspace(m, n, cfg, a.device, _cdiv(k, sub), tma_steps)
        if workspace is None and counters is not None:
            kept = _fused_counters(a.device, counters.numel()) if pdl else None
            if kept is not None:
                counters = kept
            else:
                counters.zero_()
        ws = ws if ws is not None else out
        counters = counters if counters is not None else out
    if tma and _tma_groups_fit(k, sub, split, group_size):
        gemm = None
        try:
            gemm = _DecodeTmaLaunch(qweight, scales, zeros, bias, m, k, group_size, cfg, split, sx_mode, pdl, a,
                                    partials=partials)
            gemm.run(a, sx, out, ws, counters)
            return out
        except Exception as e:  # noqa: BLE001 - compile errors of an untested Gluon: the Triton kernel instead
            _note_decode_failure("decode", gemm, e)
        if partials is not None:  # (the Triton kernel's split-K needs a workspace and zeroed counters of its own)
            split, ws, counters = _split_k_workspace(m, n, cfg, a.device, _cdiv(k, sub), tma_steps)
            counters.zero_()
    _TiledLaunch(qweight, scales, zeros, bias, m, k, group_size, cfg, split, sx_mode, pdl, a_mode, dot_type,
                 a.is_cuda).run(a, sx, out, ws, counters)
    return out


class _TiledLaunch:
    """One `_w4a8_kernel` launch with its host decisions made (grid, constant arguments, constexprs, options) for an
    (M, N, K) launch of `split` K slices on activations of `a_mode`; `run` launches it on a call's buffers (the
    interface of `_DecodeTmaLaunch.run`)."""

    __slots__ = ("grid", "operands", "ints", "strides", "constexprs", "options", "key")

    def __init__(self, qweight, scales, zeros, bias, m, k, group_size, cfg, split, sx_mode, pdl, a_mode=_A_PERMUTED,
                 dot_type=0, on_gpu=True):
        n, sub = qweight.shape[0], _sub_chunk(group_size)
        self.grid = (_tiles(cfg, m, n), split)
        dummy = scales
        self.operands = (qweight, scales, zeros if zeros is not None else dummy, bias if bias is not None else dummy)
        self.ints = (m, n, k)
        self.strides = (qweight.stride(0), scales.stride(0), zeros.stride(0) if zeros is not None else 0)
        self.constexprs = dict(GROUP=group_size, SUB=sub, PER_CHANNEL=group_size == k, A_MODE=a_mode,
                               DOT_TYPE=dot_type, HAS_ZEROS=zeros is not None, SX_MODE=sx_mode,
                               HAS_BIAS=bias is not None, EVEN_K=k % sub == 0, BLOCK_M=cfg.block_m,
                               BLOCK_N=cfg.block_n, GROUP_M=cfg.group_m, SPLIT_K=split, USE_ASM=on_gpu,
                               **_pdl_constexprs(pdl, n, k, sub, split))
        self.options = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages, **({"launch_pdl": True} if pdl else {})}
        self.key = None

    def run(self, a, sx, out, ws, counters, same_key: bool = False):
        qweight, scales, zeros, bias = self.operands
        args = (a, qweight, scales, zeros, sx if sx is not None else scales, bias, out, ws, counters, *self.ints,
                a.stride(0), *self.strides, out.stride(0))
        key = self.key if same_key else None
        if key is None:  # (the pointers' dtypes and alignment, the integers, the constexprs and options)
            key = (tuple(t.dtype for t in args[:9]), args[9:], tuple(self.constexprs.values()),
                   tuple(self.options.values()), launch.alignment(*args[:9]))
            if same_key:
                self.key = key
        launch.launch(_w4a8_kernel, self.grid, key, args, self.constexprs, self.options)


def _groups_per_program(k: int, sub: int, split: int, group_size: int) -> int:
    """Power of two >= the weight groups one K slice of `split` touches (a slice of `per` steps of
    `sub` columns starts on a group boundary only if a group is one step)."""
    per = _cdiv(_cdiv(k, sub), split)
    steps = max(1, group_size // sub)  # steps per group
    return _pow2(_cdiv(per, steps) + (steps > 1))


def _use_tma(cfg: KernelConfig, a: torch.Tensor, a_mode: int, dot_type: int, m: int, qweight: torch.Tensor,
             k: int) -> bool:
    """The Gluon TMA decode kernel: `_tma_capable`, on int8 activations in the permuted buffer `a` with
    rows of 16-byte multiples and a 16-byte aligned base (what TMA needs; a fresh buffer has them)."""
    return (a_mode == _A_PERMUTED and _tma_capable(cfg, a.device, dot_type, m, qweight, k)
            and a.stride(1) == 1 and a.stride(0) % 16 == 0 and a.data_ptr() % 16 == 0)


def _tma_capable(cfg: KernelConfig, device: torch.device, dot_type: int, m: int, qweight: torch.Tensor, k: int) -> bool:
    """The TMA decode kernel can serve this launch, the activation buffer aside: asked for by the config
    (`tma_stages`), M <= 16, int8 activations, an NVIDIA Hopper GPU (the only one it was measured on), a
    working Gluon, and what TMA needs of the weights: rows of 16-byte multiples with unit column stride (K a
    multiple of 32), a 16-byte aligned base, a box of at most 256 rows."""
    return (cfg.tma_stages > 0 and cfg.block_m == 16 and m <= 16 and dot_type == 0
            and device.type == "cuda" and torch.version.hip is None and gluon_decode.gluon is not None
            and not gluon_fallback.failed("decode")
            and _capability(device.index)[0] == 9 and cfg.block_n <= 256
            and qweight.stride(1) == 1 and qweight.stride(0) % 16 == 0
            and (k // 2) % 16 == 0 and qweight.data_ptr() % 16 == 0)


# The TMA decode kernel stages a program's group scales in shared memory; past this many groups per program
# (a split of 1 on a very wide layer) the Triton kernel runs instead. (A Gluon that compiles differently from
# Triton 3.6's turns the TMA kernel off for the process, with one warning: `gluon_fallback`.)
TMA_MAX_GROUPS = 64


# One launch per op at M = 1 with dynamic fp16 / bf16 activations: the TMA decode kernel reads the raw row, finds
# its scale and quantizes its own K slice (`gluon_decode`, FUSED_ROW; the same codes and scale bit for bit) instead
# of a quantization launch before it (each of ~TMA_TARGET_PROGRAMS programs reads the whole row, K * 2 bytes, from
# L2). Run 117 (ops, H100, benchmarks/probe_fused_decode.py): 0.6-11 % faster on all nine LLaMA shapes (4096 x 4096
# 10.1 -> 9.1 µs, 70B q/o 21.9 -> 19.7, 7B gate+up 22.9 -> 22.5); run 118: compiled 7B-shaped decode b1 3.15 -> 3.04 ms.
# Static int8 activations (FPTQ's per-tensor layers) take it too since session 21: the layer's scale, no absmax.
FUSED_DECODE_M1 = True
# The same one launch for 2 .. FUSED_STATIC_ROWS rows of static int8 activations (rows K apart, no prologue): with the
# layer's scale no program needs a row's absmax, so each quantizes only its own K slice of every row (`gluon_decode`
# MR; A operand row r = token r % MR). 0: off (the quantization kernel, then the GEMM). Run 283 (H100, ops, two
# alternated rounds; bit for bit the two launches' output): faster at 2 rows on most split launches (4096² 9.1 -> 7.7
# µs, 7B q/k/v fused 16.2 -> 14.4, 70B down 56.5 -> 54.0, ×3.08 fp16), slower on every unsplit one (70B gate+up fused
# 101 -> 126: each program quantizes its whole slice of the rows before its first MMA) and at 4 rows nearly everywhere
# (70B gate/up 53.8 -> 62.0); no rule separates the wins without fitting the points, so off until the slice's codes are
# made under the weight stream (a few ring slots ahead) instead of before it.
FUSED_STATIC_ROWS = 0
# FUSED_ROW keeps the codes of a program's K slice in shared memory (one byte a column): a slice of more steps takes
# the two launches (per channel on long K; the group scales' TMA_MAX_GROUPS bound keeps the others within 64).
FUSED_MAX_STEPS = 128
# Columns of the row per pass of the fused kernel's absmax: one pass (an L2 round trip) up to 8192 columns, for
# 93-115 ptxas registers against 55-80 with 4096, no spills (compile_sm90; the unfused kernel: 48).
FUSED_ROW_BLOCK = 8192
# How the one-launch op's programs read the row after the PDL wait (`gluon_decode._quantize_row`), where every L2 round
# trip is on the op's critical path (run 219). FUSED_ROW_UNROLL: the absmax passes unrolled, so that ptxas issues
# about half of their loads at once (102 registers on 70B down against 110). FUSED_HOLD, on launches split along K:
# the program's own slice loaded first and kept in registers for its codes (no read of it after the absmax; 113
# registers). Runs 221-222 (H100, ops at M = 1, bit for bit the same outputs): 70B down 56.6 -> 53.9-54.2 µs (×2.93
# -> ×3.06-3.08 fp16), 7B down 16.1 -> 15.1-15.3, 7B q/k/v/o 9.0-9.2 -> 8.5-8.7, 70B q/o 19.5-19.7 -> 19.0-19.2; an
# unsplit launch's slice is the whole row, and holding it gained nothing there (70B gate/up 52.2 -> 53.8-54.5 µs,
# three programs an SM fewer by registers), the unrolled passes alone did (70B gate+up fused 107 -> 96 µs: 5
# programs an SM instead of 4). Wider quantization passes without holding (64 columns a thread) were no faster. Held
# only up to FUSED_HOLD_MAX_STEPS K steps a slice (64 words a thread and more past that: 237 registers for a 128-step
# slice of groups of 256, two programs an SM; compile_sm90).
FUSED_HOLD = True
FUSED_HOLD_MAX_STEPS = 64
FUSED_ROW_UNROLL = True
# The one-launch op's weight ring with two K steps a slot: one TMA box of 128 contiguous bytes a weight row instead of
# 64 (groups, symmetric; the same steps summed in the same order, so the same output bit for bit). Runs 242-243 (H100,
# M = 1, two-level g128): 2-5 % faster on 9 of 12 LLaMA shapes (7B gate/up 14.4 -> 13.8 µs, 7B q/k/v fused 15.2 ->
# 14.5, 7B gate+up fused 22.1 -> 21.3, 70B q/k/v fused 23.5 -> 22.6, 70B q/o 19.2 -> 18.8, 70B down 53.8 -> 53.1),
# no change on the others, but only (`_pairs_pay`) where every full K slice has an even number of steps (7B q/k/v/o's
# 7-step slices: a pair reads a step it does not use, 8.5 -> 9.2 µs) and the launch has at most
# FUSED_PAIR_MAX_PER_SM programs an SM (70B gate+up fused, 896 programs: its ring of 41 KB a program leaves 5 an SM
# instead of 7, two waves instead of one, 96 -> 107 µs). 1: both halves of a slot read before its refill; 2: the first
# half summed before the second is read (the same speed, run 243). So 64-byte row segments were not what holds the
# large layers at 56-58 % of DRAM bandwidth (run 215): they cost these few percent, no more.
FUSED_PAIR = 1
FUSED_PAIR_MAX_PER_SM = 4
# The one-launch op unsplit, with KSUB K steps a weight-ring slot (`gluon_decode` KSUB): a program computes BLOCK_N /
# KSUB weight rows over the whole of K, its slot one TMA box of KSUB * 64 contiguous bytes a row, read as the MMA's
# BLOCK_N columns (column KSUB r + w: row r at the slot's step w) against an A operand whose row w holds step w's
# activations; the other rows' products are discarded. No split-K, so no partial sums through global memory and no
# arrival counter: run 261 (benchmarks/probe_stream_floor.py) timed that epilogue at ~2 µs of a launch on every LLaMA
# shape (4096 x 4096: a stream of its weights 4.7 µs, with the epilogue 6.7, the op 8.6), and 256-byte row segments
# 4-6 % faster than 128-byte ones on the 8192-column layers. Run 262 (M = 1, two-level g128, µs installed -> KSUB 4 /
# 2): 4096^2 8.6 -> 7.4 / 8.2, 13B q/k/v/o 11.1 -> 10.4 / 11.5, 13B gate/up 20.8 -> 19.4 / 19.5, 70B q/o 18.8 -> 18.3
# / 18.9, 70B q/k/v fused 22.6 -> 21.8 / 22.2, 70B gate/up 53.0 -> 50.3 / 50.8, 70B gate+up fused 96.9 -> 92.8 / 97.7;
# 7B gate/up 13.8 -> 13.9 / 12.9 and 7B q/k/v fused 14.5 -> 14.4 / 13.9 (rows of 4096: KSUB 2 where KSUB 4 would take
# more than FUSED_KSUB_SHORT_PROGRAMS programs); slower where K passes 8192 (7B down 15.1 -> 15.8, 70B down 53.6 -> 58.6:
# every one of 4x more programs reads and quantizes the whole long row) and on 4096-column rows that an unsplit launch
# already streams well (7B gate+up fused 21.0 -> 25.0 / 22.2). So (`_fused_ksub`): K at most 8192 (one absmax pass),
# and a launch that would be split or rows of 8192 columns; symmetric groups of 128 or more (128-column steps), at
# least FUSED_KSUB_MIN_PROGRAMS programs. A TMA box is at most 256 bytes wide (KSUB 8 read wrong, run 262). The partial
# sums are added in another order than the split launch's: close (within 3e-5 relative in run 262), not bit for bit.
# Run 263 (two alternated rounds, the rule against off): 4096^2 ×2.05-2.06 -> ×2.43 fp16, 70B gate/up ×3.06-3.08 ->
# ×3.25-3.27, 70B q/k/v fused ×2.87-2.88 -> ×2.99-3.02; the 7B-shaped decode step b1 3.99 -> 3.92 ms. Making each slot's
# codes in the main loop instead of before it (for the long rows) was twice as slow everywhere (run 266).
# Since SPLIT_FLAGS (session 31) a split launch's reduction costs one L2 round trip instead of three, and run 271 (M = 1,
# two rounds, the rule against the flagged split launch) found the split launch as fast or faster wherever its slices
# have 10 steps or more (13B q/k/v/o 10.3 -> 10.0 µs, 70B q/o 18.1 -> 17.6, 70B q/k/v fused 21.7 -> 21.3, 7B q/k/v
# fused 13.8 -> 13.5, 7B gate/up 13.0 -> 12.8, 13B gate/up a tie), and KSUB still faster on 4096 x 4096 (7.3 against
# 7.9: five slices of 7 steps, each program's row quantization paid for few steps) and on the unsplit 8192-column rows
# (70B gate/up 49.7-50.1 against 52.4, 70B gate+up fused 91.4 against 95.5: 256-byte row segments). So the rule now:
# K at most 8192, and either slices shorter than FUSED_KSUB_SHORT_SLICE steps or an unsplit launch of 8192-column rows.
# FUSED_KSUB: -1 by that rule, 0 off, 2 / 4 wherever the format allows (the sweeps); FUSED_KSUB_STAGES: its ring depth
# (0: the config's; 4 and 6 were no faster in run 262).
FUSED_KSUB = -1
FUSED_KSUB_STAGES = 0
FUSED_KSUB_MIN_PROGRAMS = 128
FUSED_KSUB_MAX_K = 8192
FUSED_KSUB_SHORT_PROGRAMS = 512
FUSED_KSUB_SHORT_SLICE = 8
# The same unsplit launch for the GEMM of the two-launch op at up to 16 / KSUB rows (`_launch_two`; at M = 1 where the
# one launch is not taken): the A operand's 16 rows are KSUB steps of 16 / KSUB tokens, each step's rows one activation
# TMA box (`gluon_decode._finish_tokens` adds a token's KSUB sums). Its ring depth is FUSED_KSUB_STAGES' too.
# Run 267 (ops at 2 / 4 / 8 rows, two rounds): KSUB 2 faster where the launch would
# be split in two and 32-row programs still fill the target (7B gate/up 15.2 -> 14.1-14.5 µs, 13B gate/up 21.6 ->
# 20.0 at 4 rows, 7B q/k/v fused 17.6 -> 16.7, 70B q/k/v fused 23.9 -> 22.2-22.7); slower where they would not (4096^2,
# 13B / 70B q/o, 7B / 70B down: 128-256 programs; 70B down at 4 rows 57 -> 71) and on most unsplit launches (7B
# gate+up fused 22.8 -> 24.1, 70B gate/up 53 -> 56); KSUB 4 slower nearly everywhere (four activation boxes a half
# slot). So it took KSUB 2 up to 8 rows where the launch would be split in two. With SPLIT_FLAGS those four shapes are a
# tie (run 271, ±0.4 µs at 2 / 4 / 8 rows, either sign), and the one layer where KSUB 2 keeps paying is an unsplit launch
# of many tiles: 70B gate+up fused (896 tiles of 64 rows) 104-108 -> 100-102 µs at 2 / 4 / 8 rows (runs 267, 268, 271),
# while the unsplit 70B gate/up (448 tiles) and 7B gate+up fused (344) get slower with it (54 -> 57-58, 22.7 -> 24.7 at
# 2 rows). So (`_decode_ksub`, -1): KSUB 2 up to 8 rows where the launch is unsplit and cdiv(N, 32) >=
# DECODE_KSUB_MIN_PROGRAMS; 0: off; 2 / 4: wherever the format allows (the sweeps). Either way the staged scales'
# slots stay within TMA_MAX_GROUPS.
DECODE_KSUB = -1
DECODE_KSUB_MIN_PROGRAMS = 1792
# Split-K arrival counters of the fused launches (and of the GEMM-only op at decode sizes launched as a programmatic
# dependent, `_launch`): a zeroed int32 buffer per device that every launch leaves zero again (the last K slice of a
# tile resets its counter; `scratch.kept_zeros`), room for this many output tiles. The two-launch path zeroes fresh
# counters inside its quantization kernel; the one launch (and that GEMM) has no such kernel before it, and a
# memset per call would be a graph node of its own between the previous kernel and the GEMM, which breaks the
# programmatic dependent launch (the weights could no longer stream in under the previous kernel's tail).
FUSED_COUNTERS = 1 << 14
# The TMA decode kernel's split-K reduction without an arrival counter (`gluon_decode._finish` FLAGS): the first K
# slices store their partials into a kept zeroed buffer (`scratch`, at least FLAG_PARTIALS floats a GPU) as the
# complement of their bits and are done; the last slice reads them until none is 0, adds them in slice order (the
# counter's sum, bit for bit) and zeroes them again. One L2 round trip after the last slice's steps instead of three
# (run 261 timed the counter's epilogue at ~2 µs of a launch on every LLaMA shape). Runs 269-271 (H100): the same
# outputs bit for bit, split launches 0.5-1.7 µs faster (70B down at M = 1 ×3.15 -> ×3.21 fp16, at 16 rows ×2.81 ->
# ×2.88). One buffer per GPU, so such launches must not run on two streams at once (`scratch`). Off: the counters.
SPLIT_FLAGS = True
# The flagged reduction's last slice reads the other slices' 16-row partial tiles all at once: its registers grow with
# the split (offline, M a runtime integer: 54 / 64 / 84 / 127 / 255 at 2 / 4 / 5 / 8 / 16 slices; narrow layers, e.g.
# an unfused 70B k / v projection, take 16). > 0: this many at a time where the split has more (`gluon_decode` PEERS;
# the same sum in the same order, a round trip a group). 0: all at once (not yet measured on a GPU otherwise).
FLAG_PEER_GROUP = 0
# The TMA decode kernel lets the next kernel launched as its programmatic dependent (the next op's quantization kernel,
# its one-launch M = 1 op or its GEMM-only op: QUANT_PDL, USE_PDL) be placed before the grid is done (`gluon_decode` TRIGGER): 1 once a
# program has requested its first ring slots, 2 after its K steps, 0 not at all (the dependent launches when the grid
# ends). Those programs then set up and request their own first weights under this grid's tail; each still waits for
# the whole grid and its writes (`gdc_wait`) before it reads anything the grid wrote. Kernels not launched as
# dependents (torch's) are unaffected. Run 276 (H100, ops back to back, two alternated rounds): 2 is 0.3-1.4 µs faster
# on most shapes at 1 / 4 / 16 rows (4096² at 4 rows 9.8 -> 9.0, 13B q/k/v/o 11.0 -> 9.7, 7B down at M = 1 14.4 ->
# 13.7) and equal on the large unsplit launches; 7B down at 16 rows 0.7 µs slower. 1 is slower nearly everywhere (the
# next grid's early requests compete with this one's stream; 70B down at 4 rows 56.5 -> 67.9), the 70B layers at M = 1
# excepted (gate/up 50.0-50.4 -> 48.8-48.9, q/o 17.1-17.4 -> 17.0, down 52.0-52.4 -> 51.5-51.6). In a model only our op
# after our op gains (gate+up -> down); after torch's kernels nothing changes.
DECODE_TRIGGER = 2
FLAG_PARTIALS = 1 << 19
# Keep each layer's launches per call signature (`w4a8_linear`'s `plans`): an eager decode call then costs the host
# ~15 µs of Python instead of ~47 at M = 1 and ~28 instead of ~80 at M = 16 (benchmarks/probe_host_cpu.py on a CPU
# ~2-4x faster than the H100 machine's); eager calls below ~1000 rows are host bound (benchmarks/GPU_NOTES.md, runs
# 132-149: with plans and direct launches eager decode b1 went from ×0.60 to ×0.83-0.88 of fp16).
LAUNCH_PLANS = True


def _fused_m1(x2: torch.Tensor, act_mode: str, cfg: KernelConfig, qweight: torch.Tensor, k: int) -> bool:
    """The one-launch op (`FUSED_DECODE_M1`): one token of dynamic or static int8 fp16 / bf16 activations, or up to
    FUSED_STATIC_ROWS rows of static ones K apart, contiguous and 16-byte aligned (the kernel reads a row in 16-byte
    vectors), on a launch the TMA decode kernel can serve (and that has not failed: failure key `decode_fused`, for
    several rows `decode_rows`)."""
    m = x2.shape[0]
    rows = m == 1 or (1 < m <= FUSED_STATIC_ROWS and act_mode == "static" and x2.stride(0) == k)
    return (FUSED_DECODE_M1 and rows and act_mode in ("dynamic", "static")
            and x2.dtype in (torch.float16, torch.bfloat16) and x2.stride(-1) == 1 and x2.data_ptr() % 16 == 0
            and gluon_decode._clamp is not None and not gluon_fallback.failed("decode_fused" if m == 1 else "decode_rows")
            and _tma_capable(cfg, x2.device, 0, m, qweight, k))


def _pairs_pay(qweight: torch.Tensor, k: int, group_size: int, zeros, split: int, grid: tuple) -> bool:
    """Whether the one-launch op takes two K steps a ring slot (FUSED_PAIR): symmetric weights in groups of 128 or more
    (128-column steps: what runs 242-243 measured), every full K slice an even number of steps, and at most
    FUSED_PAIR_MAX_PER_SM programs an SM."""
    sub = _sub_chunk(group_size)
    return (group_size != k and zeros is None and sub == 128 and _cdiv(_cdiv(k, sub), split) % 2 == 0
            and grid[0] * grid[1] <= FUSED_PAIR_MAX_PER_SM * _sms(qweight))


def _ksub_fits(n: int, k: int, group_size: int, zeros, cfg: KernelConfig, ksub: int) -> bool:
    """An unsplit launch of KSUB K steps a ring slot can serve this layer: symmetric groups of 128 or more (128-column
    steps), a weight box of at most 256 bytes and within a row (at least KSUB steps), at least FUSED_KSUB_MIN_PROGRAMS
    programs of BLOCK_N / KSUB rows, the slots' scales within TMA_MAX_GROUPS."""
    sub = _sub_chunk(group_size)
    return (ksub > 1 and group_size != k and zeros is None and sub == 128 and group_size % sub == 0
            and ksub * sub // 2 <= 256 and cfg.block_n % ksub == 0
            and _cdiv(n, cfg.block_n // ksub) >= FUSED_KSUB_MIN_PROGRAMS and ksub <= _cdiv(k, sub) <= TMA_MAX_GROUPS * ksub)


def _fused_ksub(n: int, k: int, group_size: int, zeros, cfg: KernelConfig, split: int) -> int:
    """K steps a ring slot of the unsplit one-launch op (FUSED_KSUB), or 1 where it does not apply; `split`: the K
    slices the launch would have otherwise."""
    ksub = FUSED_KSUB
    if ksub < 0:  # (the rule)
        short = split > 1 and _cdiv(_cdiv(k, _sub_chunk(group_size)), split) < FUSED_KSUB_SHORT_SLICE
        if k > FUSED_KSUB_MAX_K or not (short or (split == 1 and k >= 8192)):
            return 1
        ksub = 4 if k > 4096 or _cdiv(n, cfg.block_n // 4) <= FUSED_KSUB_SHORT_PROGRAMS else 2
    return ksub if k <= FUSED_KSUB_MAX_K and _ksub_fits(n, k, group_size, zeros, cfg, ksub) else 1


def _decode_ksub(m: int, n: int, k: int, group_size: int, zeros, cfg: KernelConfig, split: int) -> int:
    """K steps a ring slot of the unsplit GEMM at up to 16 / KSUB rows (DECODE_KSUB), or 1 where it does not apply;
    `split`: the K slices the launch would have otherwise."""
    ksub = DECODE_KSUB
    if ksub < 0:  # (the rule)
        ksub = 2 if split == 1 and _cdiv(n, cfg.block_n // 2) >= DECODE_KSUB_MIN_PROGRAMS else 1
    return ksub if ksub > 1 and m <= 16 // ksub and _ksub_fits(n, k, group_size, zeros, cfg, ksub) else 1


def _fused_counters(device: torch.device, tiles: int) -> torch.Tensor | None:
    """The device's zeroed split-K counters for a fused launch (or a GEMM-only one under PDL) of `tiles` output tiles
    (FUSED_COUNTERS); None if there are more tiles, or if the buffer is still to be made and this stream is capturing
    a CUDA graph."""
    return scratch.kept_zeros("decode split-K counters", FUSED_COUNTERS, device) if tiles <= FUSED_COUNTERS else None


def _flag_partials(device: torch.device, split: int, m: int, n: int) -> torch.Tensor | None:
    """The device's kept zeroed split-K partials for the FLAGS reduction of an (M, N) TMA decode launch of `split` K
    slices (SPLIT_FLAGS): at least (split - 1) M N floats (as int32), which the caller hands to `_DecodeTmaLaunch`;
    None without split-K, where it is off, failed to compile before (`_note_decode_failure`), or the buffer would
    have to be made during a graph capture (then the counters)."""
    if split <= 1 or not (SPLIT_FLAGS and device.type == "cuda") or gluon_fallback.failed("decode_flags"):
        return None
    return scratch.kept_zeros("decode split-K partials", max((split - 1) * m * n, FLAG_PARTIALS), device)


def _note_decode_failure(key: str, gemm, e: Exception) -> None:
    """`gluon_fallback.note_failure` of a TMA decode launch `gemm` (None if it was not made): a launch with the kept
    partials (FLAGS) turns off only those (the counters from then on), any other the kernel `key`."""
    gluon_fallback.note_failure("decode_flags" if getattr(gemm, "flags", None) is not None else key, e)


def _tma_groups_fit(k: int, sub: int, split: int, group_size: int) -> bool:
    """The TMA decode kernel can stage the group scales of a K slice of `split` (per channel: always)."""
    return group_size == k or _groups_per_program(k, sub, split, group_size) <= TMA_MAX_GROUPS


class _DecodeTmaLaunch:
    """One launch of `gluon_decode._decode_tma_kernel` with its host decisions made: the weight descriptor, the
    constant arguments and constexprs of an (M, N, K) launch of `split` K slices on int8 activations in the permuted
    buffer `a` (M, Kp) with scales `sx_mode` (its descriptor made from `a`, or from the first run's buffer), or
    `fused` on the raw row (FUSED_ROW, M = 1, or MR rows of static activations: one launch per op; the default where
    `a` is None); `run` launches it on a call's buffers. Raises what a Gluon compile error raises (callers fall
    back)."""

    __slots__ = ("grid", "w_desc", "a_desc", "operands", "ints", "constexprs", "pdl", "key", "kept", "fused", "sub",
                 "pw", "a_rows", "flags")

    def __init__(self, qweight, scales, zeros, bias, m, k, group_size, cfg, split, sx_mode, pdl, a=None, fused=None,
                 prologue=None, ksub=1, partials=None):
        n, sub = qweight.shape[0], _sub_chunk(group_size)
        rows = cfg.block_n // ksub  # (KSUB: weight rows a program, unsplit)
        self.grid = (_tiles(cfg, m, n) if ksub == 1 else _cdiv(n, rows), split)
        self.fused, self.sub, self.a_rows = (a is None if fused is None else fused), sub, 16 // ksub
        pair = (FUSED_PAIR if self.fused and m == 1 and ksub == 1 and _pairs_pay(qweight, k, group_size, zeros, split,
                                                                                 self.grid) else 0)
        self.w_desc, self.a_desc = gluon_decode.tma_descriptors(a, qweight, rows, sub, pair > 0, ksub)
        dummy = scales
        self.operands = (scales, zeros if zeros is not None else dummy, bias if bias is not None else dummy)
        self.ints = (m, n, k, scales.stride(0), zeros.stride(0) if zeros is not None else 0)
        self.constexprs = dict(GROUP=group_size, PER_CHANNEL=group_size == k, HAS_ZEROS=zeros is not None,
                               SX_MODE=sx_mode, HAS_BIAS=bias is not None, SPLIT_K=split, STAGES=cfg.tma_stages, PDL=pdl,
                               GROUPS=_groups_per_program(k, sub, split, group_size), num_warps=cfg.num_warps)
        if ksub > 1:
            self.constexprs.update(KSUB=ksub, GROUPS=_pow2(_cdiv(_cdiv(k, sub), ksub)),
                                   STAGES=FUSED_KSUB_STAGES or cfg.tma_stages)
        self.flags = partials  # (FLAGS: the caller's `_flag_partials`, or None: the counters)
        if self.flags is not None:
            self.constexprs["FLAGS"] = True
            if FLAG_PEER_GROUP and split - 1 > FLAG_PEER_GROUP:
                self.constexprs["PEERS"] = FLAG_PEER_GROUP
        if DECODE_TRIGGER:
            self.constexprs["TRIGGER"] = DECODE_TRIGGER
        if self.fused:
            self.constexprs["PAIR"] = pair
            per = _cdiv(_cdiv(k, sub), split)
            # (NORM holds the row and the norm's weight a pass: NORM_ROW_BLOCK)
            block = FUSED_ROW_BLOCK if prologue is None else min(FUSED_ROW_BLOCK, NORM_ROW_BLOCK)
            row_block = min(_pow2(k), block)
            hold = FUSED_HOLD and split > 1 and per <= FUSED_HOLD_MAX_STEPS and m == 1
            self.constexprs.update(FUSED_ROW=True, A_STEPS=max(_pow2(per), ksub), ROW_BLOCK=row_block, HOLD=hold,
                                   ROW_PASSES=_cdiv(k, row_block) if FUSED_ROW_UNROLL else 0)
            if m > 1:  # (static rows, `_fused_m1`)
                self.constexprs["MR"] = _pow2(m)
            if prologue is not None:  # (FUSED_ROW only, an RMSNorm: `_launch_fused_m1` takes no other)
                self.constexprs.update(NORM=True, EPS=float(prologue.eps))
        self.pw = prologue.weight if prologue is not None else None  # (the RMSNorm weight; None otherwise)
        self.pdl, self.key = pdl, None
        self.kept = False  # set by a plan that keeps this launch: its weight descriptor is encoded once

    def run(self, a, sx, out, ws, counters, same_key: bool = False):
        """Launch on the activations `a` (the permuted buffer, a fresh one of the planned shape; FUSED_ROW: the raw
        row), their scales `sx` (or None), the output `out` (rows of unit stride), the split-K partials `ws` and
        counters (or `out` for both without split-K). `same_key`: the buffers' alignment and `out`'s row stride are
        those of the previous run (fresh buffers of the planned sizes)."""
        scales, zeros, bias = self.operands
        if self.flags is not None:  # (no counters: the kept partials, `_flag_partials`)
            ws = counters = self.flags
        if self.fused:
            head = (self.w_desc, None, a)
        else:
            if self.a_desc is None:  # (made on the first call's buffer)
                self.a_desc = gluon_decode.activation_descriptor(a, self.sub, self.a_rows)
            head = (self.w_desc, launch.rebased(self.a_desc, a), None)  # (the planned descriptor on this call's buffer)
        args = (*head, scales, zeros, sx if sx is not None else scales, bias, out, ws, counters, *self.ints,
                out.stride(0), self.pw)
        key = self.key if same_key else None
        if key is None:
            pointers = args[3:10]
            key = (launch.descriptor_key(args[0]), launch.descriptor_key(args[1]),
                   None if args[2] is None else args[2].dtype, tuple(t.dtype for t in pointers), args[10:16],
                   None if self.pw is None else self.pw.dtype, tuple(self.constexprs.items()), self.pdl,
                   launch.alignment(args[2], *pointers, self.pw))
            if same_key:
                self.key = key
        launch.launch(gluon_decode._decode_tma_kernel, self.grid, key, args, self.constexprs,
                      {"launch_pdl": True} if self.pdl else {}, kept=(0,) if self.kept else ())


def _launch_fused_m1(x2, qweight, scales, zeros, bias, k: int, group_size: int, out_dtype, cfg: KernelConfig, out,
                     keep=None, pdl_ok: bool = True, prologue: Prologue | None = None, act_scale=None):
    """The one-launch op: `gluon_decode._decode_tma_kernel` with FUSED_ROW on the raw row `x2` (1, K; or M rows of
    static activations, MR), unsplit with KSUB steps a slot where `_fused_ksub` says so (one row; the same products in
    another order), else the split of the two-launch TMA path (so the same partial sums), PDL as there; `prologue`: the
    row RMSNorm'd first (NORM); `act_scale`: static activations with this scale (else dynamic). None where it cannot run (a program's K
    steps past FUSED_MAX_STEPS or its group scales past TMA_MAX_GROUPS, too many tiles for the counters, counters to
    be made during a capture, a Gluon compile error): the caller then takes the two launches. `keep`: called with the
    op's plan (`_Op`) once it ran."""
    if prologue is not None and prologue.kind != "rmsnorm":  # (SiLU * up: the quantization kernel's, `_launch_two`)
        return None
    m, n = x2.shape[0], qweight.shape[0]
    if n == 0:
        return out if out is not None else torch.empty(m, 0, dtype=out_dtype, device=x2.device)
    sub = _sub_chunk(group_size)
    steps = _cdiv(k, sub)
    split = _split_k(cfg, m, n, steps, _tma_slice_steps(True, k, group_size))
    ksub = _fused_ksub(n, k, group_size, zeros, cfg, split) if m == 1 else 1
    split = 1 if ksub > 1 else split
    if ksub == 1 and (_cdiv(steps, split) > FUSED_MAX_STEPS or not _tma_groups_fit(k, sub, split, group_size)):
        return None
    counters, partials = None, _flag_partials(x2.device, split, m, n)
    if split > 1 and partials is None:  # (FLAGS: no counters)
        counters = _fused_counters(x2.device, _tiles(cfg, m, n))
        if counters is None:
            return None
    gemm = None
    try:
        static = act_scale is not None
        gemm = _DecodeTmaLaunch(qweight, scales, zeros, bias, m, k, group_size, cfg, split, 1 if static else 0,
                                pdl_ok and _pdl_available(x2), prologue=prologue, ksub=ksub, partials=partials)
        gemm.kept = keep is not None
        plan = _Op(m, n, out_dtype, x2.device, split, counters, None, gemm, _static_scale(act_scale) if static else None)
        y = plan.run(x2, out)
    except torch.OutOfMemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - compile errors of an untested Gluon: the two launches instead (the
        # two-launch TMA kernel stays on: a failure of this mode has a key of its own)
        if m > 1:  # (several rows: that mode alone off, not the one-token op nor the flags)
            gluon_fallback.note_failure("decode_rows", e)
        else:
            _note_decode_failure("decode_fused" if prologue is None else "decode_prologue", gemm, e)
        return None
    if keep is not None:
        keep(plan)
    return y


def _static_scale(act_scale: torch.Tensor) -> torch.Tensor:
    """The static activation scale as the kernels read it (one fp32 value): the layer's own tensor where it is fp32
    (a kept plan then follows it, even a `.data` swap), else an fp32 copy."""
    return act_scale if act_scale.dtype == torch.float32 and act_scale.numel() == 1 else act_scale.reshape(()).float()


def _dense_strides(shape) -> tuple:
    """The strides of a contiguous tensor of `shape` (what `x` must have for a plan: its replays pass `x` itself to
    kernels that read (M, K) rows K apart, and view it as int32 words)."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def _row_stride(x2: torch.Tensor) -> int:
    """The row stride passed for (M, K) activations `x2`: K for a single row (whose stride is never used and may be
    anything), so that a plan's replays on contiguous inputs (row stride K) launch as its first call did."""
    return x2.stride(0) if x2.shape[0] > 1 else x2.shape[1]


def _launch_two(x2, qweight, scales, zeros, bias, act_mode, act_scale, k: int, group_size: int, out_dtype,
                cfg: KernelConfig, pdl: bool, out, keep=None, tma: bool = True, prologue: Prologue | None = None):
    """The op in two launches on int8 activations as an `_Op`: the quantization kernel (zeroing fresh split-K
    counters; `prologue`: the layer's input computed in it from the rows, NORM / SILU) and the GEMM, PDL between them
    — the TMA decode kernel (`tma`: `_tma_capable`; None where its group scales do not fit, `_tma_groups_fit`, or
    after a Gluon compile error: then the caller's path, which has the Triton kernel) or `_w4a8_kernel` (the tiled
    kernel of `cfg`); `keep` as `_launch_fused_m1`'s. An error of the quantization kernel is raised as it is (it is
    not the Gluon kernel's: `gluon_fallback.raised_in`)."""
    m, n, sub = x2.shape[0], qweight.shape[0], _sub_chunk(group_size)
    split = _split_k(cfg, m, n, _cdiv(k, sub), _tma_slice_steps(tma, k, group_size))
    ksub = _decode_ksub(m, n, k, group_size, zeros, cfg, split) if tma else 1
    split = 1 if ksub > 1 else split
    if tma and ksub == 1 and not _tma_groups_fit(k, sub, split, group_size):
        return None
    # (the counters the quantization kernel zeroes: none where the TMA launch takes the kept partials, SPLIT_FLAGS)
    partials = _flag_partials(x2.device, split, m, n) if tma else None
    quant = _QuantLaunch(m, k, x2.dtype, x2.device, group_size, act_mode, _words(x2), pdl, split > 1 and partials is None,
                         prologue)
    sx_mode = 1 if act_mode == "static" else 2
    gemm = None
    try:
        if tma:
            gemm = _DecodeTmaLaunch(qweight, scales, zeros, bias, m, k, group_size, cfg, split, sx_mode, pdl, fused=False,
                                    ksub=ksub, partials=partials)
            gemm.kept = keep is not None
        else:  # (no descriptors to keep encoded)
            gemm = _TiledLaunch(qweight, scales, zeros, bias, m, k, group_size, cfg, split, sx_mode, pdl,
                                on_gpu=x2.is_cuda)
        plan = _Op(m, n, out_dtype, x2.device, split, None, quant, gemm,
                   _static_scale(act_scale) if act_mode == "static" else None)
        y = plan.run(x2, out, None, _row_stride(x2))
    except torch.OutOfMemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - compile errors of an untested Gluon: the Triton kernel instead
        if not tma or gluon_fallback.raised_in(e, _QuantLaunch.run):  # (the quantization kernel's: not Gluon's)
            raise
        _note_decode_failure("decode", gemm, e)
        return None
    if keep is not None:
        keep(plan)
    return y


class _Op:
    """A layer's op with its host decisions made, kept per call signature (`w4a8_linear`'s `plans`): `gemm` after
    `quant` (a `_QuantLaunch`), or alone on the raw row (FUSED_ROW, M = 1; the kept split-K `counters`). `gemm`: a
    `_DecodeTmaLaunch` (M <= 16) or a `_TiledLaunch` with `split` K slices (partial sums in a fresh workspace whose
    counters the quantization kernel zeroes), or a `gluon_swap.SwapLaunch` (prefill; `split` None). `run(x, out, shape,
    row_stride)`: the (M, N) result of the M rows in `x` (unit column stride, rows `row_stride` apart, as planned),
    in `out` (contiguous (M, N)) or a fresh (M, N) output, viewed as `shape` if given."""

    __slots__ = ("m", "n", "dtype", "device", "split", "counters", "quant", "gemm", "quant_key", "act_scale")

    def __init__(self, m, n, dtype, device, split, counters, quant, gemm, act_scale=None):
        self.m, self.n, self.dtype, self.device, self.split, self.counters = m, n, dtype, device, split, counters
        self.quant, self.gemm, self.quant_key, self.act_scale = quant, gemm, None, act_scale

    def run(self, x, out=None, shape=None, row_stride: int = 0):
        y = self._run(x, out, row_stride)
        return y if shape is None else y.view(shape)  # (the kernels write (M, N) rows N apart: `shape` is a view)

    def _run(self, x, out, row_stride):
        m, n, split = self.m, self.n, self.split
        fresh = out is None
        if fresh:
            out = torch.empty(m, n, dtype=self.dtype, device=self.device)
        if split is None:  # (the swap kernel)
            a, sx, self.quant_key = self.quant.run(x, row_stride, self.act_scale, None, self.quant_key)
            self.gemm.run(a, sx if sx is not None else self.act_scale, out, fresh)
            return out
        ws = counters = out
        if split > 1 and getattr(self.gemm, "flags", None) is None:  # (FLAGS: the GEMM's kept partials)
            if self.quant is None:
                ws, counters = torch.empty(split * m * n, dtype=torch.float32, device=self.device), self.counters
            else:  # (one allocation, the counters zeroed by the quantization kernel: `_split_k_workspace`)
                buf = torch.empty(split * m * n + self.gemm.grid[0], dtype=torch.float32, device=self.device)
                ws, counters = buf[: split * m * n], buf[split * m * n :].view(torch.int32)
        if self.quant is None:  # (the one launch: static activations read the layer's scale)
            self.gemm.run(x, self.act_scale, out, ws, counters, fresh)
            return out
        a, sx, self.quant_key = self.quant.run(x, row_stride, self.act_scale, counters if counters is not out else None,
                                               self.quant_key)
        self.gemm.run(a, sx if sx is not None else self.act_scale, out, ws, counters, fresh)
        return out


def _launch_swap(x2, qweight, scales, bias, act_mode, act_scale, k: int, group_size: int, out_dtype, channel_scales,
                 out, config: PrefillConfig, keep=None, pdl_ok: bool = True, prologue: Prologue | None = None):
    """The prefill op on the swap kernel as an `_Op`, where `config` (the default prefill config) is a swap one that
    takes these operands (Hopper, int8 activations, symmetric weights: `direct`): the quantization kernel (`prologue`:
    the layer's input computed in it from the rows, NORM / SILU), then `gluon_swap.SwapLaunch`. None where it does not
    apply or after a Gluon compile error (then the caller's path, which has the other kernels). `keep` (as
    `_launch_fused_m1`'s) gets the plan where the launch may be kept (the kernel reads the layer's scales
    directly)."""
    m, n = x2.shape[0], qweight.shape[0]
    if not (m and n and act_mode in ("static", "dynamic")):
        return None
    if not (config.swap and direct(x2, True, qweight, None, k, group_size)):
        return None
    pdl = SWAP_PDL and pdl_ok and _pdl_available(x2)
    quant = _QuantLaunch(m, k, x2.dtype, x2.device, group_size, act_mode, _words(x2), pdl, False, prologue)
    sx_scalar = _static_scale(act_scale) if act_mode == "static" else None
    plan = _Op(m, n, out_dtype, x2.device, None, None, quant, None, sx_scalar)
    fresh = out is None
    if fresh:
        out = torch.empty(m, n, dtype=out_dtype, device=x2.device)
    a, sx, plan.quant_key = quant.run(x2, _row_stride(x2), sx_scalar, None)
    try:
        plan.gemm = gluon_swap.SwapLaunch(a, qweight, scales, 2 if act_mode == "dynamic" else 1, bias, group_size,
                                          config.block_m, config.num_stages, config.group_m, channel_scales,
                                          config.block_n, pdl)
        plan.gemm.kept = keep is not None and plan.gemm.keepable
        plan.gemm.run(a, sx if sx is not None else sx_scalar, out, fresh)
    except torch.OutOfMemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a compile error of the experimental Gluon API: the caller's kernels
        gluon_fallback.note_failure("swap", e)
        return None
    if plan.gemm.kept:
        keep(plan)
    return out


def _tma_slice_steps(tma: bool, k: int, group_size: int) -> int:
    """`_split_k`'s `tma_steps`: for the TMA decode kernel (`tma`) with 128-column steps (groups of 128 or more,
    or per channel) the most K steps one slice may take with its staged group scales within TMA_MAX_GROUPS (per
    channel: no bound); 0 otherwise (the Triton kernel, or the TMA kernel's 64-column steps)."""
    if not tma or _sub_chunk(group_size) != 128:
        return 0
    if group_size == k:
        return 1 << 30
    per_group = group_size // 128  # K steps a group; a slice may start mid-group (`_groups_per_program`)
    return (TMA_MAX_GROUPS - (per_group > 1)) * per_group


def _split_k_workspace(m: int, n: int, cfg: KernelConfig, device: torch.device, steps: int | None = None,
                       tma_steps: int = 0) -> tuple:
    """`(split, partials, counters)` of one launch: fp32 partial tiles `(split, M, N)` and one int32
    arrival counter per output tile, in one fresh allocation per call (so CUDA graphs and
    torch.compile's graph pools own them like any other temporary); the counters must be zeroed
    before the GEMM (`quantize_activation_triton(counters=...)` does it without a launch).
    `(split, None, None)` without split-K."""
    split = _split_k(cfg, m, n, steps, tma_steps)
    if split <= 1:
        return split, None, None
    tiles = _tiles(cfg, m, n)
    buf = torch.empty(split * m * n + tiles, dtype=torch.float32, device=device)
    return split, buf[: split * m * n], buf[split * m * n :].view(torch.int32)


def _check(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, group_size: int,
           k: int | None = None) -> tuple[int, int]:
    """`(N, K)` of a layer whose tensors match each other and K (default: `x`'s columns)."""
    k = x.shape[-1] if k is None else k
    n, groups = scales.shape
    if groups * group_size != k or qweight.shape != (n, k // 2):
        raise ValueError(f"weight {tuple(qweight.shape)} / scales {tuple(scales.shape)} do not match K={k}")
    if qweight.dtype != torch.uint8 or scales.dtype != torch.float16:
        raise ValueError("qweight must be uint8 and scales fp16")
    return n, k


def w4a8_linear(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None = None,
    *,
    bits: int = 4,
    group_size: int,
    act_mode: str = "dynamic",
    act_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    config: KernelConfig | DecodeConfig | GemvConfig | PrefillConfig | None = None,
    out: torch.Tensor | None = None,
    channel_scales: torch.Tensor | None = None,
    plans: dict | None = None,
    prologue: Prologue | None = None,
) -> torch.Tensor:
    """Triton backend of `fptq.kernels.quant_linear` (same arguments and semantics).

    x:        (..., K) fp16/bf16/fp32
    qweight:  uint8 (N, K // 2), QuantLinear layout
    scales:   fp16 (N, K // group_size); zeros: uint8 (N, K // group_size) or None
    act_scale: fp32 scalar for "static"
    config:   launch parameters: a `KernelConfig` (tiled GEMM), a `PrefillConfig` (unpack, then
              a pipelined GEMM: `triton_prefill`), a `DecodeConfig` (single-launch decode kernel,
              M <= 16) or a `GemvConfig` (dp4a GEMV, M <= 4, int8 activations, K a multiple of
              the step; otherwise the default path); default: the GEMV for M <= 4 when USE_GEMV,
              the `PREFILL_CONFIGS` bucket from `PREFILL_MIN_M` rows on (the installed swap config with
              its token tile by `swap_tile`), else the `CONFIGS` bucket
    out:      optional contiguous (M, N) output in x.dtype to write into (tests poison it)
    channel_scales: fp16 (N,) of two-level scales, or None: read only by the swap prefill kernel (one int32 sum
              over K per output, `gluon_swap`); the result is the same without it
    plans:    the layer's `fptq.kernels.LaunchPlans` (without `config` and `out`): a call whose signature (`x`'s
              shape, strides, dtype, device and alignment, the layer's tensors, the arguments) has a plan there,
              made under this module's current settings, runs it — the launches an earlier call decided, without
              deciding again; the int8 ops on the decode, tiled and swap kernels keep their plans there (`_Op`)
    prologue: the layer's input is `apply_prologue(x, prologue)` (`fptq.kernels.prologue`; "silu_glu": `x` is
              (..., 2 K), `[gate, up]`): int8 activations on the default path compute it inside a launch
              (`_prologue_fusable`, FUSED_PROLOGUE): the RMSNorm of one token in the one-launch op, more rows in the
              quantization kernel (`_act_quant_kernel` NORM), SiLU * up from SILU_MIN_ROWS rows on (one token
              included) in the quantization kernel (SILU) before the two launches; any other call runs the
              prologue's torch ops first

    One token of int8 activations (dynamic or static; without a prologue or with an RMSNorm one) on Hopper takes one
    launch whose split-K counters are kept per GPU
    (`FUSED_DECODE_M1`, `fptq.kernels.scratch`; so do the GEMM-only op's launches at 2-16 rows, `w4a8_gemm`): such
    calls must not run concurrently on two CUDA streams of one GPU.
    """
    signature = None
    # (a prologue no launch takes in any case: straight to the norm's torch ops below, no signature computed twice)
    norm_first = prologue is not None and (not (FUSED_PROLOGUE and act_mode in ("dynamic", "static"))
                                           or prologue.kind == "silu_glu" and math.prod(x.shape[:-1]) < SILU_MIN_ROWS)
    if plans is not None and config is None and out is None and LAUNCH_PLANS and not norm_first:
        signature = (x.shape, x.stride(), x.dtype, x.get_device(), x.data_ptr() % 16, bits, group_size, act_mode,
                     id(qweight), id(scales), id(zeros), id(bias), id(act_scale), id(channel_scales),
                     None if prologue is None else (prologue.kind, id(prologue.weight), prologue.eps))
        settings = _settings()
        kept = plans.get(signature)
        if kept is not None and kept[0] == settings:  # (equal tables compare equal: one changed in place is seen)
            y = kept[1](x)
            if y is not None:
                return y
            del plans[signature]
    if prologue is not None and (norm_first or not _prologue_fusable(x, bits, group_size, act_mode, prologue, config)):
        # (a prologue no launch can take: the call on the norm's torch ops' output, with its own plan)
        return w4a8_linear(apply_prologue(x, prologue), qweight, scales, zeros, bits=bits, group_size=group_size,
                           act_mode=act_mode, act_scale=act_scale, bias=bias, config=config, out=out,
                           channel_scales=channel_scales, plans=plans)
    width = x.shape[-1]  # (the row as called: with a SiLU * up prologue [gate, up], 2 K columns)
    k = layer_features(prologue, width)
    float_act = act_mode == "none" and x.dtype == torch.float32  # fp32 dot operands would run as tf32
    if act_mode == "dynamic_fp8" and supports_shape(k, bits, group_size) and x.dtype in _DTYPES and _has_fp8(x):
        fp8_config = config if isinstance(config, (KernelConfig, PrefillConfig)) else None
        return w4a8_fp8_linear(x, qweight, scales, zeros, group_size=group_size, bias=bias, config=fp8_config, out=out)
    if not supports_shape(k, bits, group_size) or x.dtype not in _DTYPES or float_act or act_mode == "dynamic_fp8":
        return quant_linear_reference(
            x,
            qweight,
            scales,
            zeros,
            bits=bits,
            group_size=group_size,
            act_mode=act_mode,
            act_scale=act_scale,
            bias=bias,
        )
    n, k = _check(x, qweight, scales, group_size, k)
    if act_mode == "static" and act_scale is None:
        raise ValueError("act_mode 'static' needs act_scale")
    if act_mode not in ("static", "dynamic", "none"):
        raise ValueError(f"unknown act_mode {act_mode!r}")
    x2 = x.reshape(-1, width)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    m = x2.shape[0]
    layer = (qweight, scales, zeros)
    qweight, scales = qweight.contiguous(), scales.contiguous()
    zeros = zeros.contiguous() if zeros is not None else None
    copied = qweight is not layer[0] or scales is not layer[1] or zeros is not layer[2]
    if copied:
        signature = None  # (a plan would keep this call's copies: later in-place updates of the layer unseen)
    # (no GEMM as a programmatic dependent on copies made just now: it reads the weights before its wait, and with
    # QUANT_PDL the quantization kernel between may start before the copy kernel is done)
    pdl_ok = not copied
    sub = _sub_chunk(group_size)
    if isinstance(config, GemvConfig) or (config is None and USE_GEMV):
        if gemv_supported(m, k, sub, act_mode):
            a, sx, sx_mode = _quantized_operand(x2, group_size, act_mode, act_scale)
            y = gemv_linear(a, sx, sx_mode, qweight, scales, zeros, bias, group_size, sub, x.dtype,
                            config or _for_m(GEMV_CONFIGS, m), out)
            return y.reshape(*x.shape[:-1], n)
        config = None
    if config is None and m <= DECODE_MAX_M and USE_DECODE_KERNEL:
        config = _for_m(DECODE_CONFIGS, m)
    if isinstance(config, DecodeConfig) and m <= DECODE_MAX_M:
        y = _decode(x2, qweight, scales, zeros, group_size, act_mode, act_scale, bias, config, out)
        return y.reshape(*x.shape[:-1], n)
    keep = None
    if (signature is not None and x.stride() == _dense_strides(x.shape)
            and not (x.is_cuda and torch.cuda.is_current_stream_capturing())):
        # (`x2` is `x` viewed; a plan made during a capture could hold a path taken only there)
        shape = (*x.shape[:-1], n)
        keep = lambda plan: plans.keep(signature, (settings, lambda x: plan.run(x, None, shape, width)))  # noqa: E731
    if _use_prefill(config, m, k, direct(x2, act_mode != "none", qweight, zeros, k, group_size), n, x2):
        if config is None:  # (decided once, for the swap op and the other prefill kernels alike)
            config = _default_prefill_config(m, n, k, group_size, channel_scales, x2)
            if zeros is None:
                y = _launch_swap(x2, qweight, scales, bias, act_mode, act_scale, k, group_size, x.dtype, channel_scales,
                                 out, config, keep, pdl_ok, prologue)
                if y is not None:
                    return y.reshape(*x.shape[:-1], n)
        x2 = apply_prologue(x2, prologue)  # (the other prefill kernels: the prologue in torch ops; no plan kept)
        a, sx, sx_mode = _quantized_operand(x2, group_size, act_mode, act_scale)
        y = _prefill(a, sx, sx_mode, qweight, scales, zeros, bias, k, group_size, x.dtype, config, out, channel_scales)
        return y.reshape(*x.shape[:-1], n)
    cfg = config or _for_m(CONFIGS, m)
    dot_type = 1 if act_mode == "none" else 0
    if cfg.fused_act and m <= cfg.block_m <= DECODE_MAX_M:
        x2 = apply_prologue(x2, prologue)  # (no plan kept on this path)
        a_mode = {"static": _A_RAW_STATIC, "dynamic": _A_RAW_DYNAMIC, "none": _A_RAW_FLOAT}[act_mode]
        sx = act_scale.reshape(()).float() if act_mode == "static" else None
        y = _launch(x2, a_mode, dot_type, qweight, scales, zeros, sx, 0, bias, m, k, group_size, x.dtype, cfg, out)
    else:
        if _fused_m1(x2, act_mode, cfg, qweight, k) and (prologue is None or prologue.kind == "rmsnorm" and m == 1
                                                         and not gluon_fallback.failed("decode_prologue")):
            y = _launch_fused_m1(x2, qweight, scales, zeros, bias, k, group_size, x.dtype, cfg, out, keep, pdl_ok,
                                 prologue=prologue, act_scale=act_scale if act_mode == "static" else None)
            if y is not None:
                return y.reshape(*x.shape[:-1], n)
        pdl = m <= DECODE_MAX_M and pdl_ok and _pdl_available(x2)
        tma = _tma_capable(cfg, x2.device, dot_type, m, qweight, k)  # (the fresh buffer will suit it: `_use_tma`)
        if m and n and dot_type == 0:
            y = _launch_two(x2, qweight, scales, zeros, bias, act_mode, act_scale, k, group_size, x.dtype, cfg, pdl, out,
                            keep, tma, prologue)
            if y is not None:
                return y.reshape(*x.shape[:-1], n)
        x2 = apply_prologue(x2, prologue)  # (the Triton kernel after a Gluon failure: the prologue in torch ops, no plan)
        workspace = _split_k_workspace(m, n, cfg, x2.device, _cdiv(k, sub), _tma_slice_steps(tma, k, group_size))
        a, sx, sx_mode = _quantized_operand(x2, group_size, act_mode, act_scale, pdl, workspace[2])
        y = _launch(a, _A_PERMUTED, dot_type, qweight, scales, zeros, sx, sx_mode, bias, m, k, group_size, x.dtype,
                    cfg, out, pdl, workspace)
    return y.reshape(*x.shape[:-1], n)


# An eager call of one token with a prologue (`fptq.kernels.prologue`: the preceding RMSNorm) takes the one-launch
# M = 1 op with the row normalized as it is read (`gluon_decode` NORM) instead of the norm's eight eager kernels:
# run 194 (H100, 7B shape, all layers dynamic, b1) the CUDA graph of the uncompiled step 5.01 -> 4.21 ms, run 195 the
# eager step ×1.3 faster. Under torch.compile the norm is traced instead (`_backend_fn`: Inductor fuses it with the
# residual add into one ~2.4 µs kernel; in the op it costs 1.4-3.0 µs, run 195, and the add stays a kernel of its own:
# about even, not measured end to end without the SiLU * up variant that made run 192's compiled step slower).
# More rows (eager decode batches, eager prefill; session 22): the quantization kernel normalizes each row it holds in
# registers before its absmax (`_act_quant_kernel` NORM). False: the prologue in torch ops, then the op.
FUSED_PROLOGUE = True
# SiLU * up in the quantization kernel (SILU) in one pass for rows of at most this many columns (the layer's K,
# padded; 16 warps hold a row of 32768 gate and up values in 112 registers with SILU_DIV 2, offline compile); longer
# rows in two passes over blocks of this many columns (rounded down to a power of two of chunks), each pass computing
# it. Run 209 (H100), 70B down (28672): one pass against two of 16384 the kernel alone 10.1 / 14.8 / 201.6 -> 8.4 /
# 8.5 / 152.6 µs at 1 / 16 / 2048 rows, the op at 16 rows 68.5 -> 62.7 (torch ops + op 68.4), at 2048 1254 -> 1186
# (1402).
SILU_MAX_K = 32768
# The fewest rows whose SiLU * up runs in the quantization kernel (SILU); fewer: its torch ops, then the op. Run 206
# (ops, H100): one token inside (the quantization kernel, then the two-launch decode GEMM) against the torch ops and the
# one-launch op 2.1 / 4.1 µs faster on 7B / 13B down, 1.4 slower on 70B down (two passes); run 209 with SILU_DIV 2 and
# SILU_MAX_K 32768: 3.0 / 4.0 µs faster (16.9 vs 19.9, 21.7 vs 25.7), 70B 0.8 slower (59.8 vs 59.0).
SILU_MIN_ROWS = 1
# SILU's division on sm_90 (`_silu_glu` DIV; other GPUs: 0): 2, the approximate reciprocal and one fma correction of
# the quotient, gives F.silu's value for every one of the 65536 fp16 and 65536 bf16 gate values (run 207 on an H100,
# Triton 3.6, `probe_silu.py`; the review's run: the fp32 quotient itself equals the correctly rounded one; the value
# rounded to 16 bits depends on the gate alone, so that is every input), as the correctly rounded division (0) does,
# without its slow-path branch: the kernel alone on 7B down rows 8.6 -> 5.4 µs at 16 rows, 136 -> 62 at 2048 (plain rows
# 2.6 / 29). (70B down, then in two passes of 4096-column blocks: 17-19 / 187-194 µs either way.)
SILU_DIV = 2
# NORM's columns of the row per pass (at most): 80 registers at 4096 against 168 at 8192, which left 13B q/k/v's 480
# programs a second partial wave (run 194: +7.2 µs in the op; run 195 with 4096: +2.5)
NORM_ROW_BLOCK = 4096


def _prologue_fusable(x: torch.Tensor, bits: int, group_size: int, act_mode: str, prologue: Prologue, config) -> bool:
    """Whether a call with a prologue may normalize its rows inside its launches: the default launch path (no config,
    GEMV or single-launch decode kernel asked for), a shape the kernels take, dynamic or static int8 activations in a
    contiguous fp16 / bf16 tensor the quantization kernel reads as int32 words (`_words`).
    An RMSNorm: the row held in registers (K padded at most ONE_PASS_MAX_K), a weight of the row's dtype and length,
    contiguous and 16-byte aligned, on the row's device. One token then takes the one-launch op with the norm inside
    where that can run (`_launch_fused_m1`), every other int8 path the quantization kernel's NORM (`_launch_two`,
    `_launch_swap`); the paths without it (other prefill kernels, a Gluon failure) apply the norm's torch ops first.
    SiLU * up ("silu_glu": rows of `[gate, up]`, 2 K columns, K even) the same way from SILU_MIN_ROWS rows on, in the
    quantization kernel (SILU; in two passes over rows past SILU_MAX_K columns); fewer rows run its torch ops, then
    the op (the one-launch op's programs would each compute the whole row's SiLU: slower, round 21)."""
    width = x.shape[-1]
    silu = prologue.kind == "silu_glu"
    k = layer_features(prologue, width)
    sub = _sub_chunk(group_size)
    if not (FUSED_PROLOGUE and prologue.kind in PROLOGUES and act_mode in ("dynamic", "static")
            and config is None and not USE_GEMV and not USE_DECODE_KERNEL
            and supports_shape(k, bits, group_size) and x.dtype in (torch.float16, torch.bfloat16)
            and x.is_contiguous() and _words(x.view(-1, width))):
        return False
    if silu:  # (the up half from word K // 2 on; past SILU_MAX_K columns two passes over the row)
        return k % 2 == 0 and math.prod(x.shape[:-1]) >= SILU_MIN_ROWS
    if -(-k // sub) * sub > ONE_PASS_MAX_K:  # (the norm needs the whole row held)
        return False
    w = prologue.weight
    return (w is not None and w.shape == (k,) and w.dtype == x.dtype and w.is_contiguous() and w.device == x.device
            and w.data_ptr() % 16 == 0)


def _use_prefill(config, m: int, k: int, packed: bool = False, n: int = 0, t: torch.Tensor | None = None) -> bool:
    """The prefill path (`triton_prefill`): for a `PrefillConfig`, or by default from the PREFILL_MIN_M rows
    of K's bucket on when USE_PREFILL (the second of them where the `packed` weights are taken directly by
    the installed swap config, and below that from SWAP_MEDIUM's rows for an (m, n) output whose smallest
    swap tiles give SWAP_MEDIUM's share of the SMs of `t`'s GPU one each)."""
    if isinstance(config, PrefillConfig):
        return True
    if config is not None or not USE_PREFILL:
        return False
    _, unpacked, direct_m = next((row for row in PREFILL_MIN_M if k <= row[0]), PREFILL_MIN_M[-1])
    if m >= unpacked:
        return True
    if not (packed and _for_m(PREFILL_CONFIGS, m).swap):
        return False
    if m >= direct_m:
        return True
    first, share = SWAP_MEDIUM
    return m >= first and t is not None and _output_tiles(m, n, SWAP_TILES[0][1]) >= share * _sms(t) > 0


def _sms(t: torch.Tensor) -> int:
    """SMs of `t`'s GPU (0 on the CPU)."""
    return gluon_prefill._sm_count(t.device.index) if t.is_cuda else 0


def _prefill(a, sx, sx_mode, qweight, scales, zeros, bias, k, group_size, out_dtype, config, out, channel_scales=None):
    m, n = a.shape[0], qweight.shape[0]
    if out is None:
        out = torch.empty(m, n, dtype=out_dtype, device=a.device)
    if config is None:
        config = _default_prefill_config(m, n, k, group_size, channel_scales, a)
    return prefill_gemm(a, sx, sx_mode, qweight, scales, zeros, bias, k, group_size, _sub_chunk(group_size), out, config,
                        channel_scales)


def _default_prefill_config(m: int, n: int, k: int, group_size: int, channel_scales, t: torch.Tensor) -> PrefillConfig:
    """`_prefill_config` on `t`'s GPU, with 256-row tiles among the candidates where the swap kernel's plan sums one
    int32 per output (two-level scales, per channel; its plan only for groups it takes — multiples of 128 columns or
    per channel)."""
    two_level = channel_scales is not None and gluon_swap.USE_TWO_LEVEL
    wide = (m >= SWAP_WIDE_MIN_M and (group_size >= k or group_size % gluon_swap.SUB == 0)
            and gluon_swap.plan(k, group_size, m, two_level)["SPG"] == 0)
    return _prefill_config(m, n, _sms(t), wide)


def _prefill_config(m: int, n: int, sms: int, wide: bool = False) -> PrefillConfig:
    """The default prefill config for an (m, n) output: PREFILL_CONFIGS' bucket for m, re-tiled by `swap_tile` over
    `sms` SMs (`wide`: 256-row tiles among the candidates) where that bucket holds one of SWAP_TILES' own config
    objects (the installed default; a config assigned by hand, even an equal one, is taken as it is); sms = 0 (no
    GPU): the bucket's."""
    config = _for_m(PREFILL_CONFIGS, m)
    if sms and any(config is cfg for _, cfg in SWAP_TILES):
        config = swap_tile(m, n, sms, wide)
    return config


def _decode(x2, qweight, scales, zeros, group_size, act_mode, act_scale, bias, cfg: DecodeConfig, out):
    m = x2.shape[0]
    sub = _sub_chunk(group_size)
    if act_mode == "none" or (cfg.dot == DOT_FMA and m > cfg.block_m) or (cfg.dot != DOT_FMA and cfg.block_m < 16):
        cfg = DecodeConfig(cfg.block_n, cfg.steps, cfg.num_warps, DOT_FP16 if act_mode == "none" else DOT_INT8, cfg.fused, 16)
    if act_mode == "static":
        sx = act_scale.reshape(()).float()
        return decode_linear(x2, x2, _A_RAW_STATIC, qweight, scales, zeros, sx, 0, bias, group_size, sub, cfg, out)
    if act_mode == "none":
        return decode_linear(x2, x2, _A_RAW_FLOAT, qweight, scales, zeros, None, 0, bias, group_size, sub, cfg, out)
    if cfg.fused:
        return decode_linear(x2, x2, _A_RAW_DYNAMIC, qweight, scales, zeros, None, 0, bias, group_size, sub, cfg, out)
    a, sx = quantize_activation_triton(x2, group_size, "dynamic")
    return decode_linear(x2, a, _A_PERMUTED, qweight, scales, zeros, sx, 2, bias, group_size, sub, cfg, out)


def w4a8_fp8_linear(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None = None,
    *,
    group_size: int,
    bias: torch.Tensor | None = None,
    config: KernelConfig | PrefillConfig | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """W4A8-FP8: per-token float8 e4m3 activations, int4 weights as exact e4m3 integers.

    Semantics (`fptq.kernels.reference`, act_mode "dynamic_fp8"): `s_x = max|x_t| / 448` (all-zero rows: 1),
    `x_f8 = e4m3(clamp(x / s_x, -448, 448))` rounded to nearest even; per group the partial sum
    `sum_k x_f8 * (code - zero)` is accumulated in fp32 by the fp8 tensor cores (Hopper),
    scaled by the group scale, summed over groups, times `s_x`, plus bias. Needs a GPU with
    fp8 tensor cores (sm_89+).
    """
    n, k = _check(x, qweight, scales, group_size)
    if not supports_shape(k, 4, group_size):
        raise ValueError(f"w4a8_fp8_linear does not support group size {group_size} with K={k}")
    x2 = x.reshape(-1, k)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    qweight, scales = qweight.contiguous(), scales.contiguous()
    zeros = zeros.contiguous() if zeros is not None else None
    m = x2.shape[0]
    if _use_prefill(config, m, k):
        a, sx = quantize_activation_triton(x2, group_size, "dynamic_fp8")
        y = _prefill(a, sx, 2, qweight, scales, zeros, bias, k, group_size, x.dtype, config, out)
        return y.reshape(*x.shape[:-1], n)
    cfg = config or _for_m(CONFIGS, max(m, DECODE_MAX_M + 1))
    workspace = _split_k_workspace(m, n, cfg, x2.device, _cdiv(k, _sub_chunk(group_size)))
    a, sx = quantize_activation_triton(x2, group_size, "dynamic_fp8", counters=workspace[2])
    y = _launch(a, _A_PERMUTED, 2, qweight, scales, zeros, sx, 2, bias, m, k, group_size, x.dtype, cfg, out,
                workspace=workspace)
    return y.reshape(*x.shape[:-1], n)


def _supports(x: torch.Tensor, bits: int, group_size: int, act_mode: str) -> bool:
    # (dynamic_fp8 on a GPU without fp8 tensor cores falls back to the reference in w4a8_linear)
    return x.is_cuda and bits == 4 and act_mode in ("static", "dynamic", "dynamic_fp8", "none")


# The two ops a compiled model calls (opaque to Dynamo / Inductor, captured by CUDA graphs), defined on a
# `torch.library.Library` with one implementation for every device: `torch.library.custom_op`'s wrappers (autograd,
# alias checks, a Dynamo-disabled frame) cost ~25 µs of host time per call on the H100 machine against ~11 µs for a
# Library implementation (run 131, benchmarks/probe_host.py), and a compiled prefill without CUDA graphs is host bound
# (runs 128-131). Inference only, as the eager path: no autograd formula (PyTorch's autograd fallback warns on a
# backward through them).
_LIB = torch.library.Library("fptq", "FRAGMENT")
_LIB.define(
    "w4a8_linear(Tensor x, Tensor qweight, Tensor scales, Tensor? zeros, int bits, int group_size, str act_mode, "
    "Tensor? act_scale, Tensor? bias, Tensor? channel_scales) -> Tensor",
    tags=(torch.Tag.pt2_compliant_tag,),
)
_LIB.define(
    "w4a8_gemm(Tensor a, Tensor sx, Tensor qweight, Tensor scales, Tensor? zeros, Tensor? bias, SymInt k, int group_size, "
    "int sx_mode, ScalarType out_dtype, Tensor? channel_scales) -> Tensor",
    tags=(torch.Tag.pt2_compliant_tag,),
)


def _w4a8_linear_op(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    bits: int,
    group_size: int,
    act_mode: str,
    act_scale: torch.Tensor | None,
    bias: torch.Tensor | None,
    channel_scales: torch.Tensor | None,
) -> torch.Tensor:
    n = qweight.shape[0]
    out = x.new_empty(*x.shape[:-1], n)
    y = w4a8_linear(
        x,
        qweight,
        scales,
        zeros,
        bits=bits,
        group_size=group_size,
        act_mode=act_mode,
        act_scale=act_scale,
        bias=bias,
        out=out.view(-1, n),
        channel_scales=channel_scales,
    )
    if y.data_ptr() == out.data_ptr():
        return out
    return y.reshape(out.shape).clone()  # fallback paths that ignore `out` (outputs may not be views)


_LIB.impl("w4a8_linear", _w4a8_linear_op, "CompositeExplicitAutograd")


@torch.library.register_fake("fptq::w4a8_linear", lib=_LIB)
def _(x, qweight, scales, zeros, bits, group_size, act_mode, act_scale, bias, channel_scales):
    return x.new_empty(*x.shape[:-1], qweight.shape[0])


def quantize_activation_torch(
    x2: torch.Tensor, group_size: int, act_mode: str, act_scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`quantize_activation_triton` for the int8 and fp8 modes in torch ops: bit for bit the same when run
    eagerly (fp32 division, clamp, round half to even / e4m3). Under torch.compile Inductor fuses these ops
    into the kernel that produces `x` (RMSNorm, SiLU * up), so the quantization costs no launch of
    its own; on a GPU Inductor then multiplies by the reciprocal of the constant divisor (the scale is often
    an ulp off the eager one: 4.5 % of fp16 row maxima for 127, 55 % for 448 — review of session 8) and may
    divide `x / s` approximately, which moves a code by one where `x / s` lies within an ulp of a rounding
    boundary (rare)."""
    s = activation_scale(x2, act_mode, act_scale)  # the reference's own scale and codes
    if act_mode == "dynamic_fp8":  # (permuted as fp32, then e4m3: elementwise, so the same values)
        q = activation_layout((x2.float() / s).clamp(-FP8_MAX, FP8_MAX), group_size).to(torch.float8_e4m3fn)
        return q, s.reshape(-1)
    q = activation_codes(x2, act_mode, s).to(torch.int8)
    return activation_layout(q, group_size), s.reshape(-1) if act_mode == "dynamic" else None


def _w4a8_gemm_op(
    a: torch.Tensor,
    sx: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    bias: torch.Tensor | None,
    k: int,
    group_size: int,
    sx_mode: int,
    out_dtype: torch.dtype,
    channel_scales: torch.Tensor | None,
) -> torch.Tensor:
    """The GEMM alone, on activations already in the kernels' permuted int8 (or float8 e4m3) layout."""
    m = a.shape[0]
    if _use_prefill(None, m, k, direct(a, a.dtype == torch.int8, qweight, zeros, k, group_size), qweight.shape[0], a):
        return _prefill(a, sx, sx_mode, qweight, scales, zeros, bias, k, group_size, out_dtype, None, None,
                        channel_scales)
    if a.dtype == torch.float8_e4m3fn:  # the tiled kernel's fp8 dot (as in `w4a8_fp8_linear`)
        cfg = _for_m(CONFIGS, max(m, DECODE_MAX_M + 1))
        return _launch(a, _A_PERMUTED, 2, qweight, scales, zeros, sx, sx_mode, bias, m, k, group_size, out_dtype, cfg)
    pdl = m <= DECODE_MAX_M and _pdl_available(a)
    return _launch(a, _A_PERMUTED, 0, qweight, scales, zeros, sx, sx_mode, bias, m, k, group_size, out_dtype,
                   _for_m(CONFIGS, m), None, pdl)


_LIB.impl("w4a8_gemm", _w4a8_gemm_op, "CompositeExplicitAutograd")


@torch.library.register_fake("fptq::w4a8_gemm", lib=_LIB)
def _(a, sx, qweight, scales, zeros, bias, k, group_size, sx_mode, out_dtype, channel_scales):
    return a.new_empty(a.shape[0], qweight.shape[0], dtype=out_dtype)


# Under torch.compile: True quantizes the int8 / e4m3 activations with traced torch ops (which Inductor
# fuses into their producer: RMSNorm, SiLU * up) and makes only the GEMM an opaque op; False keeps the
# whole layer one opaque op, whose quantization kernel overlaps the GEMM's weight prefetch (PDL); None
# (default): one op for decode-sized calls (below TRACED_QUANT_MIN_M rows), traced from there (one guard on the row
# count, the same for every layer: a threshold per K would multiply the graphs Dynamo compiles). Compiled
# decode, run 75, same run: b1 3.31 ms opaque vs 3.59 traced, b16 6.03 vs 6.36; compiled prefill (2048
# tokens) 52.4 ms traced vs 55.6 for W4A8-FP8's opaque op (run 67; run 75's 108.8 ms for the int8 opaque
# op is likely a timing artifact, benchmarks/GPU_NOTES.md).
QUANTIZE_IN_GRAPH: bool | None = None
# (QUANTIZE_IN_GRAPH None) the row count from which the quantization is traced. Run 186 (compiled b16 step, context
# 128, H100): traced from 2 rows 3.80 ms against 3.69 with the opaque op — its quantization kernel hands over to the
# GEMM by PDL (the weights stream in under it), the traced one leaves an Inductor kernel before the GEMM.
TRACED_QUANT_MIN_M = DECODE_MAX_M + 1


def _compiled(x, qweight, scales, zeros, bits, group_size, act_mode, act_scale, bias, channel_scales):
    k = x.shape[-1]
    traceable = (act_mode in ("static", "dynamic", "dynamic_fp8") and (act_mode != "dynamic_fp8" or _has_fp8(x))
                 and supports_shape(k, bits, group_size) and x.dtype in _DTYPES)
    # (the row count only where it matters: a guard on it is a recompile)
    if not (traceable and (QUANTIZE_IN_GRAPH if QUANTIZE_IN_GRAPH is not None
                           else math.prod(x.shape[:-1]) >= TRACED_QUANT_MIN_M)):
        return torch.ops.fptq.w4a8_linear(x, qweight, scales, zeros, bits, group_size, act_mode, act_scale, bias,
                                          channel_scales)
    a, sx = quantize_activation_torch(x.reshape(-1, k), group_size, act_mode, act_scale)
    sx, sx_mode = _epilogue_scale(act_mode, act_scale, sx)
    y = torch.ops.fptq.w4a8_gemm(a, sx, qweight, scales, zeros, bias, k, group_size, sx_mode, x.dtype, channel_scales)
    return y.reshape(*x.shape[:-1], qweight.shape[0])


def _backend_fn(x, qweight, scales, zeros=None, *, bits=4, group_size, act_mode="dynamic", act_scale=None, bias=None,
                channel_scales=None, plans=None, prologue=None):
    """The registered backend: plain call in eager mode; under torch.compile an opaque custom op
    (Dynamo then neither traces the launch code nor breaks the graph; CUDA graphs capture it),
    with the activation quantization traced in front of a GEMM-only op (QUANTIZE_IN_GRAPH: by default from
    TRACED_QUANT_MIN_M rows on). A prologue: eagerly `w4a8_linear`'s (the RMSNorm inside the launches where the
    call allows: the one-token op, else the quantization kernel); under torch.compile traced in torch ops in front of
    the layer (which Inductor fuses with the residual add before it)."""
    if torch.compiler.is_compiling():
        x = apply_prologue(x, prologue)
        return _compiled(x, qweight, scales, zeros, bits, group_size, act_mode, act_scale, bias, channel_scales)
    return w4a8_linear(x, qweight, scales, zeros, bits=bits, group_size=group_size, act_mode=act_mode, act_scale=act_scale,
                       bias=bias, channel_scales=channel_scales, plans=plans, prologue=prologue)


def _register() -> None:
    from fptq.kernels import Backend, register_backend

    register_backend(Backend("triton", _backend_fn, supports=_supports, priority=10, takes_plans=True,
                             takes_prologue=True))


# This module's settings (its public upper-case names) and the swap kernel's, kept with every plan: a setting changed
# between two calls of a layer (assigned or, for a table, changed in place) makes the second decide again.
_SETTING_NAMES = tuple(name for name, value in globals().items() if name.isupper() and not name.startswith("_")
                       and not isinstance(value, type(math)))
_settings_of = operator.itemgetter(*_SETTING_NAMES)
_TABLES = tuple(i for i, name in enumerate(_SETTING_NAMES) if isinstance(globals()[name], list))


def _settings() -> tuple:
    values = _settings_of(globals())
    # (the tables' rows copied: a table changed in place differs from the copy kept with a plan; the swap kernel's
    # settings: a kept swap launch holds that module's schedule)
    return values, tuple([tuple(values[i]) for i in _TABLES]), gluon_swap._settings()


if triton is not None:
    _register()

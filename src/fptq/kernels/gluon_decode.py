"""Decode GEMM (M <= 16, int8 activations) for Hopper in Gluon: a TMA ring per program, int4
weights read from shared memory straight into `mma.sync` operand registers.

A decode GEMM streams its weights once, so what matters is how close it gets to the memory
bandwidth. Each program (BLOCK_N weight rows x one K slice under split-K) keeps STAGES K steps in
flight: TMA brings the packed weight tile (BLOCK_N x SUB / 2 bytes, unswizzled) and the two
halves of the activation tile (16 x SUB / 2 int8, rows past M zero-filled) on one mbarrier per
slot. The group scales (and zero points) of the program's K range are staged in shared memory
once, before the main loop: loading a column of them per step (one 2-byte load per weight row)
cost ~20 % on large layers (benchmarks/GPU_NOTES.md, runs 34-35).

Operand layout. For `mma.m16n8k32` with int8 operands, lane `4 n + t` holds, of the B
operand's 32 K values of column `n`, `k = 4 t + e` and `16 + 4 t + e` (`e < 4`); over a step's
`HALF = SUB // 2` packed bytes per weight row (`HALF // 16` such pairs of registers),
`k = 16 r + 4 t + e`. Each lane instead reads `HALF // 4` contiguous bytes
`b = (HALF // 4) t + 4 r + e` of its column (one 16-byte `ld.shared.v4` for SUB = 128) and
the kernel relabels them: `b -> k` is a permutation of the step's K positions that stays inside
every lane, so the conversion into the operand layout moves no data
(`convert_layout(..., assert_trivial=True)` checks this when the kernel compiles). The
activations are read through the same relabelling: the dot product is a sum over K and does not
care about the order, only that both operands use the same one. (A version that loaded the
weights into registers itself, with 2.5x fewer instructions than the Triton kernel, measured
the same as it: instructions were not the limit; runs 31-33.)

The nibble split is the one of `triton_w4a8`: the permuted activation buffer holds a step's
even columns (low nibbles) first, then its odd columns (high nibbles), so one packed tile
becomes two int8 operands against the two halves of the activation chunk. Group scaling per
step in fp32, the activation scale and bias in the epilogue, split-K reduced in the kernel by
the last K slice to arrive (the same workspace and counters as `triton_w4a8._split_k_reduce`; FLAGS, the default:
by the grid's last K slice, from partials flagged by their own bits in a kept buffer, no counter: `_finish`),
and the same programmatic dependent launch: the weight tiles of the first STAGES steps and the
group scales are requested before waiting for the activation-quantization kernel.

One token, dynamic activations (FUSED_ROW): the kernel quantizes the activations itself, so the op
is one launch instead of two. After the PDL wait every program reads the raw fp16 / bf16 row (from
L2: it was just written) for its absmax, computes the per-token scale exactly as
`triton_w4a8._act_quant_kernel` does (`s = RN(absmax / 127)`, 1 for an all-zero row; `x / s` by
the reciprocal with two fma corrections, clamp, round half to even: the same int8 codes and scale
bit for bit), quantizes its own K slice into shared memory in the permuted order above (one row of
even and one of odd codes per K step), and the ring carries only weights. Rows 1..15 of the MMA's
A operand are row 0 again (a broadcast of the registers, no instructions): those output rows are
computed and never stored, so they may hold anything. Split-K slices each compute the same `s` from
the whole row and multiply their partials by it before the reduction, as the unfused kernel does.
Static activations (SX_MODE 1 with FUSED_ROW): `s` is the layer's per-tensor scale at `sx_ptr`, no
absmax pass; the codes as `_act_quant_kernel`'s static mode makes them, the scale applied in `_finish`.
MR > 1 (with FUSED_ROW, static only; `triton_w4a8.FUSED_STATIC_ROWS`, off): M <= MR rows quantized the same way,
each program only its own K slice of every row (`_quantize_rows`), step `j`'s MR rows read as the A operand whose row
`r` is token `r % MR` (the KSUB layout, `_slot_rows`); rows past M are computed and not stored.
PAIR (with FUSED_ROW; `triton_w4a8.FUSED_PAIR`): a ring slot holds two K steps, one TMA box of 2 * HALF bytes a
weight row, read as two HALF-byte halves and summed in the same order as unpaired steps (the same output bit for
bit); 2-5 % faster on most LLaMA shapes at M = 1 (runs 242-244).

KSUB (grouped, symmetric, one K slice; with FUSED_ROW `triton_w4a8.FUSED_KSUB`): a program computes ROWS = BLOCK_N /
KSUB weight rows over the whole of K, and its ring slot is one TMA box of KSUB steps of those rows (KSUB * HALF bytes a
row, contiguous). Read as a (BLOCK_N, HALF) tile (the unswizzled slot's bytes relabelled), its column `v = KSUB r + w`
is row `r` at the slot's step `w`; the A operand's row `w` holds step `w`'s codes (rows past KSUB repeat them: a
broadcast, `_a_layout3`), so column `v`'s row `w` is the product of weight row `r` with step `w`, and the other rows'
products are discarded. Each column is scaled by its own step's group scale (staged by slot in the MMA's column order),
and the epilogue (`_finish_rows`) adds a row's KSUB sums and stores: no split-K partials through global memory, no
arrival counter. The split launch's epilogue cost ~2 µs of a launch on every LLaMA shape (run 261): 4096 x 4096 at
M = 1 8.6 -> 7.3 µs (run 263). The same products as the split launch, added in another order. Without FUSED_ROW (the
2-16 // KSUB-row GEMM, `triton_w4a8.DECODE_KSUB`): the A operand's row `MR w + t` (MR = 16 // KSUB) is token `t` at
the slot's step `w`, each step's MR rows one activation TMA box (`_issue`), and `_finish_tokens` adds a (token, row)'s
KSUB sums before the per-token scale.

The preceding RMSNorm (NORM, with FUSED_ROW; `fptq.kernels.prologue`): the layer's input is
`w * fp16(x * rsqrt(mean(x^2) + eps))`, computed from the raw row as it is read (its sum of squares over the whole
row first), with the norm's weight `w` (`pw_ptr`), rounded to 16 bits where the torch module rounds; the fp32 sum
of squares (fused multiply-adds, another order), the mean and the rsqrt (approximate instructions) may differ from
torch's by a few ulps, which can move a code (bit-exact in runs 193-195). Every program normalizes the whole row for
its absmax: 1.4-3.0 µs more than the op on a ready row on the LLaMA-2 q/k/v and gate/up layers (run 195), against an
eager norm's eight kernels (LlamaRMSNorm).
"""

from __future__ import annotations

import functools

try:
    import triton.language as tl
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.ampere import mma_v2
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    from fptq.kernels.gluon_prefill import gdc_launch_dependents, gdc_wait
    from fptq.kernels.triton_prefill import UNPACK_HI, UNPACK_HI_Z, UNPACK_LO, UNPACK_LO_Z
except Exception:  # pragma: no cover - no Triton, or an older / changed Gluon: the Triton path only
    gluon = None
try:  # (a private Gluon helper: without it only the one-launch M = 1 mode is off, `triton_w4a8._fused_m1`)
    from triton.experimental.gluon.language._core import builtin as _builtin

    # Triton's clamp op (not exported by Gluon): the quantization kernel clamps with it, and its lowering
    # (`min.xorsign.abs` for symmetric bounds) differs from maximum / minimum where the quotient is NaN
    _clamp = _builtin(tl.core.clamp)
except Exception:  # pragma: no cover - a changed Gluon
    _clamp = None

if gluon is not None:
    try:

        @gluon.constexpr_function
        def _a_layout(half, num_warps):
            """Registers of the (16, HALF) activation tile: lane `4 g + t` loads bytes
            `[t * HALF/4, (t + 1) * HALF/4)` of rows `g` and `g + 8`; every warp holds the whole tile
            (the MMA's A operand is the same for all warps, which split N)."""
            ch = half // 4
            regs = [[0, 1 << i] for i in range(ch.bit_length() - 1)] + [[8, 0]]
            lanes = [[0, ch], [0, 2 * ch], [1, 0], [2, 0], [4, 0]]
            warps = [[0, 0] for _ in range(num_warps.bit_length() - 1)]
            return gl.DistributedLinearLayout(regs, lanes, warps, [], [16, half])

        @gluon.constexpr_function
        def _a_layout3(half, ksub, num_warps):
            """`_a_layout`'s (16, HALF) tile viewed as (16 // KSUB, KSUB, HALF), row `r = KSUB a + b` at `(a, b)`: a
            (KSUB, HALF) tile loaded in its slice along `a` and broadcast over `a` is the A operand whose row `r` is
            the tile's row `r % KSUB` (KSUB)."""
            ch = half // 4

            def row(r):
                return [r // ksub, r % ksub, 0]
            regs = [[0, 0, 1 << i] for i in range(ch.bit_length() - 1)] + [row(8)]
            lanes = [[0, 0, ch], [0, 0, 2 * ch], row(1), row(2), row(4)]
            warps = [[0, 0, 0] for _ in range(num_warps.bit_length() - 1)]
            return gl.DistributedLinearLayout(regs, lanes, warps, [], [16 // ksub, ksub, half])

        @gluon.constexpr_function
        def _word_layout(half, num_warps):
            """(steps, HALF) int32 words of raw activations (two 2-byte columns each, even one in the low half):
            four contiguous words (16 bytes) per lane, a K step's HALF words over HALF / 4 lanes."""
            lanes = half // 4
            return gl.BlockedLayout([1, 4], [32 // lanes, lanes], [num_warps, 1], [1, 0])

        @gluon.constexpr_function
        def _chunk_steps(a_steps, sub, num_warps, hold):
            """K steps the fused quantization handles per pass of its loop: about 16 columns per thread (HOLD: all of
            them, one tile)."""
            return a_steps if hold else max(1, min(a_steps, 16 * 32 * num_warps // sub))

        @gluon.jit
        def _act_codes(x, s, r):
            """int8 codes of fp32 activations `x` with scale `s` (`r = RN(1 / s)`): `triton_w4a8._codes` of
            mode "dynamic" with FMA_DIV, op for op (`_quotient`: the correctly rounded `x / s` from the
            reciprocal and two fma corrections where 2**-100 < s < 2**100, else `div.rn`; the clamp; the code
            as the low byte of `clamp(x / s) + 1.5 * 2**23`, rounded half to even by the hardware)."""
            if (s > 7.888609052210118e-31) & (s < 1.2676506002282294e30):  # 2**-100 < s < 2**100
                q0 = x * r
                q = gl.fma(gl.fma(-q0, s, x), r, q0)
                q = gl.fma(gl.fma(-q, s, x), r, q)
                q = gl.where((q0 == 0.0) | (gl.abs(q0) > 1e30), q0, q)
            else:
                q = gl.div_rn(x, s)
            v = _clamp(q, -127.0, 127.0) + 12582912.0
            return v.to(gl.int32, bitcast=True).to(gl.int8)

        @gluon.jit
        def _normed(x, w, rstd, XT: gl.constexpr):
            """NORM: the RMSNorm of the row's value `x` with the norm's weight `w` (fp32 of 16-bit values) and the
            row's `rstd`, rounded to XT where the torch module rounds (`fptq.kernels.prologue.apply_prologue`)."""
            return (w * (x * rstd).to(XT).to(gl.float32)).to(XT).to(gl.float32)

        @gluon.jit
        def _amax_pass(x_ptr, pw_ptr, c0, offs, K, rstd, amax, NORM: gl.constexpr, XT: gl.constexpr):
            """The running absmax `amax` over the row's columns `c0 + offs` (NORM: of their normalized values)."""
            mask = c0 + offs < K
            xv = gl.load(x_ptr + c0 + offs, mask=mask, other=0.0).to(gl.float32)
            if NORM:
                xv = _normed(xv, gl.load(pw_ptr + c0 + offs, mask=mask, other=0.0).to(gl.float32), rstd, XT)
            return gl.maximum(amax, gl.abs(xv))

        @gluon.jit
        def _slice_codes(w_ptr, pw_ptr, w_idx, w, e_smem, o_smem, i, K, s, r, rstd, NORM: gl.constexpr,
                         XT: gl.constexpr):
            """The int8 codes of the int32 words `w` (an even / odd pair of raw activations each, at word indices
            `w_idx`; NORM: normalized first) into pass `i` of `e_smem` / `o_smem`."""
            xe = _half(w, XT)
            xo = _half(w >> 16, XT)
            if NORM:
                wa = gl.load(pw_ptr.to(gl.pointer_type(gl.int32), bitcast=True) + w_idx, mask=w_idx < K // 2, other=0)
                xe = _normed(xe, _half(wa, XT), rstd, XT)
                xo = _normed(xo, _half(wa >> 16, XT), rstd, XT)
            e_smem.index(i).store(_act_codes(xe, s, r))
            o_smem.index(i).store(_act_codes(xo, s, r))

        @gluon.jit
        def _quantize_row(x_ptr, pw_ptr, sx_ptr, e_smem, o_smem, K, lo, n, SUB: gl.constexpr, QS: gl.constexpr,
                          ROW_BLOCK: gl.constexpr, NORM: gl.constexpr, EPS: gl.constexpr, STATIC: gl.constexpr,
                          num_warps: gl.constexpr, HOLD: gl.constexpr = False, ROW_PASSES: gl.constexpr = 0):
            """FUSED_ROW: the per-token scale of the raw row `x_ptr` (K fp16 / bf16 values; NORM: RMSNorm'd with the
            weight `pw_ptr` first; STATIC: the per-tensor scale at `sx_ptr` instead) and the int8 codes of this
            program's K steps `[lo, lo + n)` in shared memory, `e_smem` / `o_smem` (A_STEPS // QS, QS, HALF): step
            `j`'s even / odd columns at row `j` of their (A_STEPS, HALF) view, zero past K (as TMA fills the
            activation tiles of the unfused kernel). HOLD: this slice's raw words are loaded first (one tile, QS ==
            A_STEPS) and kept in registers for its codes, so that their L2 round trip overlaps the absmax pass instead
            of following it. ROW_PASSES > 0: the absmax passes unrolled (cdiv(K, ROW_BLOCK) of them), their loads
            free to be issued together. Returns the scale."""
            HALF: gl.constexpr = SUB // 2
            XT: gl.constexpr = x_ptr.dtype.element_ty
            w_ptr = x_ptr.to(gl.pointer_type(gl.int32), bitcast=True)
            q_l: gl.constexpr = _word_layout(HALF, num_warps)
            steps = gl.arange(0, QS, layout=gl.SliceLayout(1, q_l))
            jj = gl.arange(0, HALF, layout=gl.SliceLayout(0, q_l))
            if HOLD:  # (steps past n: codes nobody reads; A_STEPS is a power of two, so up to 78 % more words than
                # the slice's on 7B down. Not loading those, a mask on n, was no faster: run 227)
                h_idx = ((lo + steps) * HALF)[:, None] + jj[None, :]
                h_words = gl.load(w_ptr + h_idx, mask=h_idx < K // 2, other=0)
            # the absmax of the whole row (every K slice needs the row's scale): 16-byte loads, ROW_BLOCK
            # columns a pass (one pass up to 8192 columns)
            r_l: gl.constexpr = gl.BlockedLayout([8], [32], [num_warps], [0])
            offs = gl.arange(0, ROW_BLOCK, layout=r_l)
            rstd = 1.0
            if NORM:  # the row's sum of squares first
                ssq = gl.zeros([ROW_BLOCK], gl.float32, r_l)
                for c0 in range(0, K, ROW_BLOCK):
                    xv = gl.load(x_ptr + c0 + offs, mask=c0 + offs < K, other=0.0).to(gl.float32)
                    ssq += xv * xv
                rstd = gl.rsqrt(gl.sum(ssq, axis=0) / K + EPS)
            if STATIC:  # (`_act_quant_kernel` MODE 0: the layer's scale)
                s = gl.load(sx_ptr).to(gl.float32)
            else:
                amax = gl.zeros([ROW_BLOCK], gl.float32, r_l)
                if ROW_PASSES > 0:
                    for p in gl.static_range(ROW_PASSES):
                        amax = _amax_pass(x_ptr, pw_ptr, p * ROW_BLOCK, offs, K, rstd, amax, NORM, XT)
                else:
                    for c0 in range(0, K, ROW_BLOCK):
                        amax = _amax_pass(x_ptr, pw_ptr, c0, offs, K, rstd, amax, NORM, XT)
                m = gl.max(amax, axis=0)
                s = gl.where(m > 0, gl.div_rn(m, 127.0), 1.0)  # `_row_scale`
            r = gl.div_rn(1.0, s)
            if HOLD:
                _slice_codes(w_ptr, pw_ptr, h_idx, h_words, e_smem, o_smem, 0, K, s, r, rstd, NORM, XT)
            else:
                # this slice's codes, QS steps a pass, read again (from L1) as int32 words of an even / odd pair
                for c in range(0, n, QS):  # (steps past n in the last pass: codes nobody reads)
                    w_idx = ((lo + c + steps) * HALF)[:, None] + jj[None, :]
                    w = gl.load(w_ptr + w_idx, mask=w_idx < K // 2, other=0)
                    _slice_codes(w_ptr, pw_ptr, w_idx, w, e_smem, o_smem, c // QS, K, s, r, rstd, NORM, XT)
            gl.thread_barrier()  # every warp's codes are in shared memory before any warp reads them
            return s

        @gluon.jit
        def _quantize_rows(x_ptr, sx_ptr, e_smem, o_smem, K, M, lo, n, SUB: gl.constexpr, QS: gl.constexpr,
                           MR: gl.constexpr, num_warps: gl.constexpr):
            """FUSED_ROW with MR > 1 (static activations: the layer's scale at `sx_ptr`, no absmax, so only this
            program's slice is read): the int8 codes of the M raw rows (K apart) at the program's K steps `[lo, lo +
            n)` into `e_smem` / `o_smem` (A_STEPS // QS, QS * MR, HALF), step `j`'s token `t` at row `MR j + t` of their
            (A_STEPS * MR, HALF) view; zero past K and for tokens past M (as `_quantize_row` makes them for one)."""
            HALF: gl.constexpr = SUB // 2
            XT: gl.constexpr = x_ptr.dtype.element_ty
            w_ptr = x_ptr.to(gl.pointer_type(gl.int32), bitcast=True)
            q_l: gl.constexpr = _word_layout(HALF, num_warps)
            r = gl.arange(0, QS * MR, layout=gl.SliceLayout(1, q_l))
            jj = gl.arange(0, HALF, layout=gl.SliceLayout(0, q_l))
            tok = r % MR
            row = (tok.to(gl.int64) * (K // 2))[:, None]
            s = gl.load(sx_ptr).to(gl.float32)
            rs = gl.div_rn(1.0, s)
            for c in range(0, n, QS):  # (steps past n in the last pass: codes nobody reads)
                w_idx = ((lo + c + r // MR) * HALF)[:, None] + jj[None, :]
                w = gl.load(w_ptr + row + w_idx, mask=(w_idx < K // 2) & (tok < M)[:, None], other=0)
                e_smem.index(c // QS).store(_act_codes(_half(w, XT), s, rs))
                o_smem.index(c // QS).store(_act_codes(_half(w >> 16, XT), s, rs))
            gl.thread_barrier()  # every warp's codes are in shared memory before any warp reads them
            return s

        @gluon.jit
        def _slot_rows(codes, zero3, a_l: gl.constexpr):
            """KSUB: the (16, HALF) A operand of a ring slot whose row `r` holds the codes of the slot's step `r % KSUB`
            (`codes`: the slot's (KSUB, HALF) rows in shared memory; `zero3` in `_a_layout3`)."""
            x = codes.load(gl.SliceLayout(0, zero3.type.layout))
            x = gl.broadcast(gl.expand_dims(x, 0), zero3)[0]
            return gl.convert_layout(gl.reshape(x, [16, x.shape[2]]), a_l, assert_trivial=True)

        @gluon.jit
        def _finish_rows(acc, s_x, sx_ptr, bias_ptr, out_ptr, off_n, N, SX_MODE: gl.constexpr, HAS_BIAS: gl.constexpr,
                         KSUB: gl.constexpr):
            """KSUB epilogue (M = 1, unsplit): column `v = KSUB r + w` of `acc` holds, in its row `w`, the scaled sum of
            weight row `off_n + r` over the program's steps `w (mod KSUB)`; the KSUB sums of a row added (fixed order),
            the activation scale, bias, store."""
            mma: gl.constexpr = acc.type.layout
            offs_m = gl.arange(0, 16, layout=gl.SliceLayout(1, mma))
            offs_v = gl.arange(0, acc.shape[1], layout=gl.SliceLayout(0, mma))
            col = gl.sum(gl.where(offs_m[:, None] == (offs_v % KSUB)[None, :], acc, 0.0), axis=0)
            tot = gl.sum(gl.reshape(col, [acc.shape[1] // KSUB, KSUB]), axis=1)
            if SX_MODE == 0:
                tot = tot * s_x
            else:
                tot = tot * gl.load(sx_ptr).to(gl.float32)
            rows = off_n + gl.arange(0, acc.shape[1] // KSUB, layout=tot.type.layout)
            if HAS_BIAS:
                tot = tot + gl.load(bias_ptr + rows, mask=rows < N, other=0.0).to(gl.float32)
            gl.store(out_ptr + rows, tot.to(out_ptr.dtype.element_ty), mask=rows < N)

        @gluon.jit
        def _finish_tokens(acc, sx_ptr, bias_ptr, out_ptr, off_n, M, N, stride_om, SX_MODE: gl.constexpr,
                           HAS_BIAS: gl.constexpr, KSUB: gl.constexpr):
            """KSUB epilogue of the 2-16 // KSUB-row GEMM (unsplit): row `MR w + t` of `acc` (MR = 16 // KSUB) holds
            token `t` at the slot's step `w`, so column `v = KSUB r + w`'s products of weight row `off_n + r` with
            token `t` are in row `MR (v % KSUB) + t`; those of a (token, row) added over w (fixed order), the
            activation scale, bias, store."""
            mma: gl.constexpr = acc.type.layout
            MR: gl.constexpr = 16 // KSUB
            ROWS: gl.constexpr = acc.shape[1] // KSUB
            offs_m = gl.arange(0, 16, layout=gl.SliceLayout(1, mma))
            offs_v = gl.arange(0, acc.shape[1], layout=gl.SliceLayout(0, mma))
            sel = gl.where((offs_m // MR)[:, None] == (offs_v % KSUB)[None, :], acc, 0.0)
            tot = gl.sum(gl.sum(gl.reshape(sel, [KSUB, MR, ROWS, KSUB]), axis=3), axis=0)  # (MR, ROWS)
            t_l: gl.constexpr = tot.type.layout
            offs_t = gl.arange(0, MR, layout=gl.SliceLayout(1, t_l))
            rows = off_n + gl.arange(0, ROWS, layout=gl.SliceLayout(0, t_l))
            if SX_MODE == 1:
                tot = tot * gl.load(sx_ptr).to(gl.float32)
            elif SX_MODE == 2:
                tot = tot * gl.load(sx_ptr + offs_t, mask=offs_t < M, other=0.0).to(gl.float32)[:, None]
            if HAS_BIAS:
                tot = tot + gl.load(bias_ptr + rows, mask=rows < N, other=0.0).to(gl.float32)[None, :]
            out = out_ptr + offs_t.to(gl.int64)[:, None] * stride_om + rows[None, :]
            gl.store(out, tot.to(out_ptr.dtype.element_ty), mask=(offs_t < M)[:, None] & (rows < N)[None, :])

        @gluon.jit
        def _half(w, XT: gl.constexpr):
            """fp32 of the 16-bit value in the low half of the int32 words `w`."""
            return w.to(gl.int16).to(XT, bitcast=True).to(gl.float32)

        @gluon.jit
        def _b_to_mma_order(x, HALF: gl.constexpr, BLOCK_N: gl.constexpr):
            """(HALF, BLOCK_N) in memory order `b = (HALF/4) t + 4 r + e` -> MMA order `k = 16 r + 4 t + e`."""
            x = gl.reshape(x, [4, HALF // 16, 4, BLOCK_N])
            x = gl.permute(x, [1, 0, 2, 3])
            return gl.reshape(x, [HALF, BLOCK_N])

        @gluon.jit
        def _a_to_mma_order(x, HALF: gl.constexpr):
            """(16, HALF) activations: the same relabelling of K as `_b_to_mma_order`."""
            x = gl.reshape(x, [16, 4, HALF // 16, 4])
            x = gl.permute(x, [0, 2, 1, 3])
            return gl.reshape(x, [16, HALF])

        @gluon.jit
        def _unpack(wb, c, HIGH: gl.constexpr, HAS_ZEROS: gl.constexpr):
            """int8 `code - zero` of the low / high nibbles, four bytes per instruction group (the PTX of
            `triton_prefill._unpack_int4`: `((nibble + 0x80 - zero) ^ 0x80) == nibble - zero`)."""
            if HAS_ZEROS:
                if HIGH:
                    return gl.inline_asm_elementwise(UNPACK_HI_Z, "=r,r,r", [wb, c], dtype=gl.int8, is_pure=True, pack=4)
                return gl.inline_asm_elementwise(UNPACK_LO_Z, "=r,r,r", [wb, c], dtype=gl.int8, is_pure=True, pack=4)
            if HIGH:
                return gl.inline_asm_elementwise(UNPACK_HI, "=r,r", [wb], dtype=gl.int8, is_pure=True, pack=4)
            return gl.inline_asm_elementwise(UNPACK_LO, "=r,r", [wb], dtype=gl.int8, is_pure=True, pack=4)

        @gluon.jit
        def _step_dot(wb, c, a_even, a_odd, acc_i, HALF: gl.constexpr, BLOCK_N: gl.constexpr, HAS_ZEROS: gl.constexpr,
                      a_dot: gl.constexpr, b_dot: gl.constexpr):
            """`acc_i` plus one K step's int32 products: the packed weights `wb` (HALF, BLOCK_N) unpacked (`c`: the
            zero-point bytes, or `wb`) against the step's even / odd activation codes, two `mma.sync` a 32-value pair."""
            w_even = gl.convert_layout(_b_to_mma_order(_unpack(wb, c, False, HAS_ZEROS), HALF, BLOCK_N), b_dot,
                                       assert_trivial=True)
            w_odd = gl.convert_layout(_b_to_mma_order(_unpack(wb, c, True, HAS_ZEROS), HALF, BLOCK_N), b_dot,
                                      assert_trivial=True)
            ae = gl.convert_layout(_a_to_mma_order(a_even, HALF), a_dot, assert_trivial=True)
            ao = gl.convert_layout(_a_to_mma_order(a_odd, HALF), a_dot, assert_trivial=True)
            return mma_v2(ao, w_odd, mma_v2(ae, w_even, acc_i))

        @gluon.jit
        def _scaled(part, s_w):
            """A step's int32 products in fp32 (exact: |part| < 2**22, added to 1.5 * 2**23 and read as a float), times
            the step's group scale."""
            return ((part + 0x4B400000).to(gl.float32, bitcast=True) - 12582912.0) * s_w.to(gl.float32)

        @gluon.jit
        def _store_out(acc, bias_ptr, out_ptr, offs_m, offs_n, M, N, stride_om, HAS_BIAS: gl.constexpr):
            if HAS_BIAS:
                acc = acc + gl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0).to(gl.float32)[None, :]
            out = out_ptr + offs_m.to(gl.int64)[:, None] * stride_om + offs_n[None, :]
            gl.store(out, acc.to(out_ptr.dtype.element_ty), mask=(offs_m < M)[:, None] & (offs_n < N)[None, :])

        @gluon.jit
        def _issue(w_desc, a_desc, bars, w_smem, a_smem, j, lo, n, off_n, WEIGHTS: gl.constexpr,
                   ACTS: gl.constexpr, RING_ACTS: gl.constexpr = True, PAIR: gl.constexpr = False,
                   TILED: gl.constexpr = False, n_pad=0, KSUB: gl.constexpr = 1):
            """TMA loads of this program's K step `lo + j` (if `j < n`) into ring slot `j % STAGES`: the
            packed weight tile and / or the activation tile, both completing on the slot's mbarrier
            (armed for both when the weights are issued; for the weights alone without RING_ACTS). PAIR (weights
            alone): slot `j` holds the weight tiles of steps `2 j` and `2 j + 1` side by side (one 2 * HALF-byte box).
            TILED (a probe, `benchmarks/probe_tiled_weights.py`): `w_desc` is over a box-major copy of the weights,
            box `b` of row `n` at row `b * n_pad + n`, so that a slot's tile is one contiguous block. KSUB > 1: slot `j`
            holds steps `KSUB j ... KSUB j + KSUB - 1` of its rows side by side (one KSUB * HALF-byte box), and each
            step's activation rows (a box of 16 / KSUB rows) at rows `16 / KSUB * w` of the slot's tiles."""
            STAGES: gl.constexpr = w_smem.shape[0]
            HALF: gl.constexpr = w_desc.block_type.shape[1]
            slot = j % STAGES
            bar = bars.index(slot)
            if PAIR:
                ok = 2 * j < n
                col = (lo + 2 * j) * (HALF // 2)
            elif KSUB > 1:
                ok = KSUB * j < n
                col = (lo + KSUB * j) * (HALF // KSUB)
            else:
                ok = j < n
                col = (lo + j) * HALF
            if WEIGHTS:
                if RING_ACTS:  # (KSUB: KSUB activation boxes of 16 // KSUB rows a half)
                    mbarrier.expect(bar, w_desc.block_type.nbytes + 2 * KSUB * a_desc.block_type.nbytes, pred=ok)
                else:
                    mbarrier.expect(bar, w_desc.block_type.nbytes, pred=ok)
                if TILED:
                    tma.async_copy_global_to_shared(w_desc, [(col // HALF) * n_pad + off_n, 0], bar, w_smem.index(slot),
                                                    pred=ok)
                else:
                    tma.async_copy_global_to_shared(w_desc, [off_n, col], bar, w_smem.index(slot), pred=ok)
            if ACTS and KSUB > 1:  # slot j's steps KSUB j + w: their MR rows at rows MR w of the even / odd tiles
                MR: gl.constexpr = a_desc.block_type.shape[0]
                for w in gl.static_range(KSUB):
                    a_col = (lo + KSUB * j + w) * 2 * (HALF // KSUB)
                    tma.async_copy_global_to_shared(a_desc, [0, a_col], bar,
                                                    a_smem.index(2 * slot).slice(w * MR, MR), pred=ok)
                    tma.async_copy_global_to_shared(a_desc, [0, a_col + HALF // KSUB], bar,
                                                    a_smem.index(2 * slot + 1).slice(w * MR, MR), pred=ok)
            elif ACTS:  # the step's even and odd activation columns, one tile each
                tma.async_copy_global_to_shared(a_desc, [0, (lo + j) * 2 * HALF], bar, a_smem.index(2 * slot), pred=ok)
                tma.async_copy_global_to_shared(a_desc, [0, (lo + j) * 2 * HALF + HALF], bar, a_smem.index(2 * slot + 1),
                                                pred=ok)

        @gluon.jit
        def _decode_tma_kernel(
            w_desc,  # TMA descriptor of qweight (N, K // 2) uint8, block (BLOCK_N, HALF) (PAIR: 2 HALF; KSUB: (BLOCK_N /
            # KSUB, KSUB HALF))
            a_desc,  # TMA descriptor of the activation buffer (M, Kp) int8, block (16, HALF) (KSUB: (16 / KSUB, HALF));
            # None with FUSED_ROW
            x_ptr,  # FUSED_ROW: the raw activation row (K,) fp16 / bf16, 16-byte aligned; else None
            scales_ptr,
            zeros_ptr,
            sx_ptr,
            bias_ptr,
            out_ptr,
            ws_ptr,
            cnt_ptr,
            M,
            N,
            K,
            stride_sn,
            stride_zn,
            stride_om,
            pw_ptr,  # NORM: the RMSNorm weight (K,) in x's dtype; else None
            GROUP: gl.constexpr,
            PER_CHANNEL: gl.constexpr,
            HAS_ZEROS: gl.constexpr,
            SX_MODE: gl.constexpr,
            HAS_BIAS: gl.constexpr,
            SPLIT_K: gl.constexpr,
            STAGES: gl.constexpr,
            PDL: gl.constexpr,
            GROUPS: gl.constexpr,  # power of two >= the groups one program's K range touches (KSUB: >= its slots)
            num_warps: gl.constexpr,
            FUSED_ROW: gl.constexpr = False,  # M = 1, activations quantized here from x_ptr (SX_MODE 0 dynamic, 1 static)
            A_STEPS: gl.constexpr = 1,  # FUSED_ROW: power of two >= the K steps of one program
            ROW_BLOCK: gl.constexpr = 1,  # FUSED_ROW: columns of the row per pass of its absmax (power of two)
            NORM: gl.constexpr = False,  # FUSED_ROW: the row RMSNorm'd first (pw_ptr, EPS)
            EPS: gl.constexpr = 0.0,  # NORM: the norm's epsilon
            HOLD: gl.constexpr = False,  # FUSED_ROW: the slice's raw words held in registers (`_quantize_row`)
            ROW_PASSES: gl.constexpr = 0,  # FUSED_ROW: > 0, the absmax passes unrolled (`_quantize_row`)
            PAIR: gl.constexpr = 0,  # FUSED_ROW, grouped, symmetric: two K steps a ring slot (w_desc's box 2 * HALF);
            # 1: both halves read before the refill, 2: the first half's products before the second half is read
            TILED: gl.constexpr = False,  # (a probe) w_desc over a box-major copy of the weights (`_issue`)
            KSUB: gl.constexpr = 1,  # grouped, symmetric, unsplit: K steps a ring slot spread over the MMA's rows (at
            # most 16 / KSUB rows of activations without FUSED_ROW)
            FLAGS: gl.constexpr = False,  # split-K: partials flagged by their own bits in a kept zeroed ws_ptr (`_finish`)
            TRIGGER: gl.constexpr = 0,  # let the next kernel (a programmatic dependent) be placed: 1 once this program's
            # first STAGES slots are requested, 2 after its K steps; 0 only when the grid is done
            MR: gl.constexpr = 1,  # FUSED_ROW: rows of x quantized here, a power of two >= M (> 1: static activations)
            PEERS: gl.constexpr = 0,  # FLAGS: the other slices' partials read this many at a time (0: all at once)
        ):
            """The decode GEMM: a STAGES-deep ring of TMA loads (weight and activation tiles of one K step per
            slot, on one mbarrier) per program; TMA also zero-fills the rows past M and the bytes past K.
            Each step: every lane reads its 16 weight bytes (one `ld.shared.v4`) and its activation bytes,
            unpacks, relabels (no data movement), two `mma.sync` per 32 K values, group scale in fp32.
            FUSED_ROW: the activations of all steps quantized into shared memory once after the PDL wait
            (`_quantize_row`), the ring for the weights alone."""
            BLOCK_N: gl.constexpr = w_desc.block_type.shape[0] * KSUB  # (KSUB: the MMA's columns, KSUB a weight row)
            BOX: gl.constexpr = w_desc.block_type.shape[1]  # bytes of a weight row a ring slot holds
            HALF: gl.constexpr = BOX // ((1 + (PAIR > 0)) * KSUB)  # bytes of a weight row a K step takes
            SUB: gl.constexpr = 2 * HALF
            mma: gl.constexpr = gl.NVMMADistributedLayout(version=[2, 0], warps_per_cta=[1, num_warps],
                                                          instr_shape=[16, 8])
            a_dot: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma, k_width=4)
            b_dot: gl.constexpr = gl.DotOperandLayout(operand_index=1, parent=mma, k_width=4)
            w_l: gl.constexpr = gl.BlockedLayout([HALF // 4, 1], [4, 8], [1, num_warps], [0, 1])
            w_rows: gl.constexpr = gl.BlockedLayout([1, HALF // 4], [8, 4], [num_warps, 1], [1, 0])  # w_l transposed
            a_l: gl.constexpr = _a_layout(HALF, num_warps)

            ROWS: gl.constexpr = w_desc.block_type.shape[0]  # weight rows a program computes
            pid_n = gl.program_id(0)
            pid_k = gl.program_id(1)
            off_n = pid_n * ROWS
            n_steps = (K + SUB - 1) // SUB
            per = (n_steps + SPLIT_K - 1) // SPLIT_K
            lo = pid_k * per
            n = gl.minimum(per, n_steps - lo)
            n_pad = (N + ROWS - 1) // ROWS * ROWS  # (TILED: rows of the copy a box apart)

            w_smem = gl.allocate_shared_memory(gl.uint8, [STAGES, ROWS, BOX], w_desc.layout)
            if FUSED_ROW:
                gl.static_assert(SX_MODE <= 1)  # (dynamic: the scale is computed here and applied before `_finish`)
                if MR > 1:  # (static rows: no absmax, one K step a slot, no prologue)
                    gl.static_assert(SX_MODE == 1)
                    gl.static_assert(KSUB == 1)
                    gl.static_assert(PAIR == 0)
                    gl.static_assert(not NORM)
                    gl.static_assert(not HOLD)
                QS: gl.constexpr = _chunk_steps(A_STEPS, SUB * MR, num_warps, HOLD)
                # unswizzled, row-major; rank 2 so that `.index` of a pass gives its (QS * MR, HALF) tile
                q_layout: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
                e_smem = gl.allocate_shared_memory(gl.int8, [A_STEPS // QS, QS * MR, HALF], q_layout)
                o_smem = gl.allocate_shared_memory(gl.int8, [A_STEPS // QS, QS * MR, HALF], q_layout)
                a_smem = w_smem  # (no activation ring: `_issue` never touches it)
            else:
                a_smem = gl.allocate_shared_memory(gl.int8, [2 * STAGES, 16, HALF], a_desc.layout)
            bars = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
            for i in gl.static_range(STAGES):
                mbarrier.init(bars.index(i), count=1)
            # weights and group scales first (independent of the activations: under PDL they stream in
            # while the quantization kernel still runs), then the activations once they exist
            for i in gl.static_range(STAGES):
                _issue(w_desc, a_desc, bars, w_smem, a_smem, i, lo, n, off_n, True, False, not FUSED_ROW, PAIR > 0,
                       TILED, n_pad, KSUB)
            if TRIGGER == 1:
                gdc_launch_dependents()
            offs_n = off_n + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, mma))
            cols = gl.where(offs_n < N, offs_n, 0).to(gl.int64)
            offs_m = gl.arange(0, 16, layout=gl.SliceLayout(1, mma))
            offs_wn = off_n + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, w_l))
            wcols = gl.where(offs_wn < N, offs_wn, 0).to(gl.int64)
            g0 = (lo * SUB) // GROUP
            if PER_CHANNEL:
                scale = gl.load(scales_ptr + cols * stride_sn).to(gl.float32)
                if HAS_ZEROS:
                    zc = gl.load(zeros_ptr + wcols * stride_zn)[None, :]
            elif KSUB > 1:
                # (the same staging, GROUPS >= the program's slots: slot q's row in the MMA's column order, column
                # v = KSUB r + w the group scale of weight row off_n + r at step KSUB q + w; 0 past K)
                gl.static_assert(SPLIT_K == 1 and PAIR == 0 and not HAS_ZEROS and GROUP % SUB == 0)
                t_l: gl.constexpr = gl.BlockedLayout([1, 1], [8, 4], [1, num_warps], [0, 1])
                t_smem: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
                r_smem: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [2, 1, 0])
                offs_q = gl.arange(0, GROUPS, layout=gl.SliceLayout(1, t_l))
                offs_tv = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, t_l))
                offs_tn = off_n + offs_tv // KSUB
                g_idx = ((lo + KSUB * offs_q[:, None] + (offs_tv % KSUB)[None, :]) * SUB) // GROUP
                t_off = gl.where(offs_tn < N, offs_tn, 0).to(gl.int64)[None, :]
                s_t = gl.load(scales_ptr + t_off * stride_sn + g_idx, mask=g_idx < K // GROUP, other=0.0)
                s_smem = gl.allocate_shared_memory(gl.float16, [GROUPS, 1, BLOCK_N], r_smem)
                s_smem.store(gl.reshape(s_t, [GROUPS, 1, BLOCK_N]))
                s_smem = s_smem._reinterpret(gl.float16, [GROUPS, 1, BLOCK_N], t_smem)
                gl.thread_barrier()
            else:
                # The group scales (and zeros) of this program's K range, GROUPS x BLOCK_N, copied once into
                # shared memory: per K step, reading a column of them from global memory touched one
                # sector per weight row and cost ~20 % of the large shapes (run 34, per-channel probe).
                t_l: gl.constexpr = gl.BlockedLayout([1, 1], [8, 4], [1, num_warps], [0, 1])
                t_smem: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])  # unswizzled, row-major
                r_smem: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [2, 1, 0])
                offs_g = gl.arange(0, GROUPS, layout=gl.SliceLayout(1, t_l))
                offs_tn = off_n + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, t_l))
                t_off = gl.where(offs_tn < N, offs_tn, 0).to(gl.int64)[None, :]
                t_mask = (g0 + offs_g < K // GROUP)[:, None] & (offs_tn >= 0)[None, :]
                # stored as (GROUPS, 1, BLOCK_N), read back one (1, BLOCK_N) row per step through a view of
                # the same bytes whose rows index like a ring slot
                s_t = gl.load(scales_ptr + t_off * stride_sn + (g0 + offs_g)[:, None], mask=t_mask, other=0.0)
                s_smem = gl.allocate_shared_memory(gl.float16, [GROUPS, 1, BLOCK_N], r_smem)
                s_smem.store(gl.reshape(s_t, [GROUPS, 1, BLOCK_N]))
                s_smem = s_smem._reinterpret(gl.float16, [GROUPS, 1, BLOCK_N], t_smem)
                if HAS_ZEROS:
                    z_t = gl.load(zeros_ptr + t_off * stride_zn + (g0 + offs_g)[:, None], mask=t_mask, other=0)
                    z_smem = gl.allocate_shared_memory(gl.uint8, [GROUPS, 1, BLOCK_N], r_smem)
                    z_smem.store(gl.reshape(z_t, [GROUPS, 1, BLOCK_N]))
                    z_smem = z_smem._reinterpret(gl.uint8, [GROUPS, 1, BLOCK_N], t_smem)
                gl.thread_barrier()
            # the activations, once the quantization kernel (FUSED_ROW: the kernel that wrote x) is done
            if PDL:
                gdc_wait()
            if FUSED_ROW and MR > 1:  # (step j's MR rows: `.index(j)`; A operand row r = token r % MR, `_slot_rows`)
                s_x = _quantize_rows(x_ptr, sx_ptr, e_smem, o_smem, K, M, lo, n, SUB, QS, MR, num_warps)
                t_layout: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
                e_tok = e_smem._reinterpret(gl.int8, [A_STEPS, MR, HALF], t_layout)
                o_tok = o_smem._reinterpret(gl.int8, [A_STEPS, MR, HALF], t_layout)
                zero_t3 = gl.zeros([16 // MR, MR, HALF], gl.int8, _a_layout3(HALF, MR, num_warps))
            elif FUSED_ROW:
                s_x = _quantize_row(x_ptr, pw_ptr, sx_ptr, e_smem, o_smem, K, lo, n, SUB, QS, ROW_BLOCK, NORM, EPS,
                                    SX_MODE == 1, num_warps, HOLD, ROW_PASSES)
                rows_layout: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])  # (rank 1: `.index` gives a row)
                e_rows = e_smem._reinterpret(gl.int8, [A_STEPS, HALF], rows_layout)  # step j: row j
                o_rows = o_smem._reinterpret(gl.int8, [A_STEPS, HALF], rows_layout)
                a_row: gl.constexpr = gl.SliceLayout(0, a_l)
                zero_a = gl.zeros([16, HALF], gl.int8, a_l)
                if KSUB > 1:  # (slot q's KSUB steps: the rows of `.index(q)`)
                    k_layout: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])  # (`.index` gives a slot's rows)
                    e_slots = e_smem._reinterpret(gl.int8, [A_STEPS // KSUB, KSUB, HALF], k_layout)
                    o_slots = o_smem._reinterpret(gl.int8, [A_STEPS // KSUB, KSUB, HALF], k_layout)
                    zero_a3 = gl.zeros([16 // KSUB, KSUB, HALF], gl.int8, _a_layout3(HALF, KSUB, num_warps))
            else:
                for i in gl.static_range(STAGES):
                    _issue(w_desc, a_desc, bars, w_smem, a_smem, i, lo, n, off_n, False, True, KSUB=KSUB)

            acc = gl.zeros([16, BLOCK_N], gl.float32, mma)
            zero_i = gl.zeros([16, BLOCK_N], gl.int32, mma)
            acc_i = zero_i
            if PAIR > 0:  # (FUSED_ROW, grouped, symmetric: the same steps in the same order as below, two a slot)
                gl.static_assert(FUSED_ROW and not PER_CHANNEL and not HAS_ZEROS)
                for jj in range(0, (n + 1) // 2):
                    slot = jj % STAGES
                    j0 = 2 * jj
                    j1 = gl.minimum(j0 + 1, n - 1)  # (past the slice: a step read and not summed)
                    s_w0 = s_smem.index(((lo + j0) * SUB) // GROUP - g0).load(mma)
                    s_w1 = s_smem.index(((lo + j1) * SUB) // GROUP - g0).load(mma)
                    mbarrier.wait(bars.index(slot), (jj // STAGES) & 1)
                    wb0 = gl.permute(w_smem.index(slot).slice(0, HALF, dim=1).load(w_rows), (1, 0))
                    a_e0 = gl.broadcast(gl.expand_dims(e_rows.index(j0).load(a_row), 0), zero_a)[0]
                    a_o0 = gl.broadcast(gl.expand_dims(o_rows.index(j0).load(a_row), 0), zero_a)[0]
                    if PAIR == 2:  # (the first half's products before the second half is read: fewer live registers)
                        part = _step_dot(wb0, wb0, a_e0, a_o0, zero_i, HALF, BLOCK_N, False, a_dot, b_dot)
                        acc = acc + _scaled(part, s_w0)
                    wb1 = gl.permute(w_smem.index(slot).slice(HALF, HALF, dim=1).load(w_rows), (1, 0))
                    a_e1 = gl.broadcast(gl.expand_dims(e_rows.index(j1).load(a_row), 0), zero_a)[0]
                    a_o1 = gl.broadcast(gl.expand_dims(o_rows.index(j1).load(a_row), 0), zero_a)[0]
                    gl.thread_barrier()  # every warp has read the slot before its refill
                    _issue(w_desc, a_desc, bars, w_smem, a_smem, jj + STAGES, lo, n, off_n, True, False, False, True,
                           TILED, n_pad)
                    if PAIR == 1:
                        part = _step_dot(wb0, wb0, a_e0, a_o0, zero_i, HALF, BLOCK_N, False, a_dot, b_dot)
                        acc = acc + _scaled(part, s_w0)
                    if j0 + 1 < n:
                        part = _step_dot(wb1, wb1, a_e1, a_o1, zero_i, HALF, BLOCK_N, False, a_dot, b_dot)
                        acc = acc + _scaled(part, s_w1)
            elif KSUB > 1:  # slot q: its steps KSUB q + w against the A operand's rows w (`_slot_rows`), in the MMA's
                # columns KSUB r + w (the slot's (ROWS, KSUB * HALF) box read as (BLOCK_N, HALF)); `_finish_rows` keeps
                # each column's row w
                for q in range(0, (n + KSUB - 1) // KSUB):
                    slot = q % STAGES
                    s_w = s_smem.index(q).load(mma)  # (1, BLOCK_N)
                    mbarrier.wait(bars.index(slot), (q // STAGES) & 1)
                    w_view = w_smem.index(slot)._reinterpret(gl.uint8, [BLOCK_N, HALF], w_desc.layout)
                    wb = gl.permute(w_view.load(w_rows), (1, 0))
                    if FUSED_ROW:
                        a_even = _slot_rows(e_slots.index(q), zero_a3, a_l)
                        a_odd = _slot_rows(o_slots.index(q), zero_a3, a_l)
                    else:  # (row MR w + t of the ring's tiles: token t at the slot's step w, `_issue`)
                        a_even = a_smem.index(2 * slot).load(a_l)
                        a_odd = a_smem.index(2 * slot + 1).load(a_l)
                    gl.thread_barrier()  # every warp has read the slot before its refill
                    _issue(w_desc, a_desc, bars, w_smem, a_smem, q + STAGES, lo, n, off_n, True, not FUSED_ROW,
                           not FUSED_ROW, False, TILED, n_pad, KSUB)
                    part = _step_dot(wb, wb, a_even, a_odd, zero_i, HALF, BLOCK_N, False, a_dot, b_dot)
                    acc = acc + _scaled(part, s_w)
            else:
                for j in range(0, n):
                    slot = j % STAGES
                    if not PER_CHANNEL:
                        gi = ((lo + j) * SUB) // GROUP - g0
                        s_w = s_smem.index(gi).load(mma)  # (1, BLOCK_N)
                        if HAS_ZEROS:
                            zc = z_smem.index(gi).load(w_l)
                    mbarrier.wait(bars.index(slot), (j // STAGES) & 1)
                    wb = gl.permute(w_smem.index(slot).load(w_rows), (1, 0))  # (HALF, BLOCK_N) in w_l
                    if FUSED_ROW and MR > 1:  # (row r: token r % MR; rows past M are not stored)
                        a_even = _slot_rows(e_tok.index(j), zero_t3, a_l)
                        a_odd = _slot_rows(o_tok.index(j), zero_t3, a_l)
                    elif FUSED_ROW:  # row 0 of the tile, broadcast to its 16 rows (only row 0 is stored)
                        a_even = gl.broadcast(gl.expand_dims(e_rows.index(j).load(a_row), 0), zero_a)[0]
                        a_odd = gl.broadcast(gl.expand_dims(o_rows.index(j).load(a_row), 0), zero_a)[0]
                    else:
                        a_even = a_smem.index(2 * slot).load(a_l)
                        a_odd = a_smem.index(2 * slot + 1).load(a_l)
                    gl.thread_barrier()  # every warp has read the slot before its refill
                    _issue(w_desc, a_desc, bars, w_smem, a_smem, j + STAGES, lo, n, off_n, True, not FUSED_ROW,
                           not FUSED_ROW, False, TILED, n_pad)
                    if HAS_ZEROS:
                        c = gl.broadcast((128 - zc.to(gl.int32)).to(gl.uint8), wb)[0]  # zc: (1, BLOCK_N)
                    else:
                        c = wb
                    if PER_CHANNEL:
                        acc_i = _step_dot(wb, c, a_even, a_odd, acc_i, HALF, BLOCK_N, HAS_ZEROS, a_dot, b_dot)
                    else:
                        part = _step_dot(wb, c, a_even, a_odd, zero_i, HALF, BLOCK_N, HAS_ZEROS, a_dot, b_dot)
                        acc = acc + _scaled(part, s_w)
            for i in gl.static_range(STAGES):
                mbarrier.invalidate(bars.index(i))
            if TRIGGER == 2:
                gdc_launch_dependents()
            if KSUB > 1 and FUSED_ROW:
                _finish_rows(acc, s_x, sx_ptr, bias_ptr, out_ptr, off_n, N, SX_MODE, HAS_BIAS, KSUB)
            elif KSUB > 1:
                _finish_tokens(acc, sx_ptr, bias_ptr, out_ptr, off_n, M, N, stride_om, SX_MODE, HAS_BIAS, KSUB)
            else:
                if PER_CHANNEL:
                    acc = acc_i.to(gl.float32) * scale[None, :]
                if FUSED_ROW and SX_MODE == 0:  # (`_finish`'s first operation with the scale in memory: the same product)
                    acc = acc * s_x
                _finish(acc, sx_ptr, bias_ptr, out_ptr, ws_ptr, cnt_ptr, offs_m, offs_n, M, N, stride_om, pid_n, pid_k,
                        SX_MODE, HAS_BIAS, SPLIT_K, FLAGS, PEERS)

        FLAG_TRIES = gl.constexpr(1 << 22)  # (FLAGS: the last slice's reads of the others' partials, at most)

        @gluon.jit
        def _peer_range(wsi, mn, tile, mask, total, S0: gl.constexpr, G: gl.constexpr, END: gl.constexpr):
            """FLAGS: `total` plus the other slices' partials of slices `[S0, min(S0 + G, END))` from `wsi`, in slice
            order (slice 0's partial starts the sum), each stored as the complement of its bits, and whether any of
            them is still unwritten (0: no float's complement, since no arithmetic makes the NaN 0xffffffff)."""
            unwritten = mask
            for s in gl.static_range(S0, S0 + G):
                if s < END:
                    bits = gl.load(wsi + s * mn + tile, mask=mask, other=-1, volatile=True)
                    part = (~bits).to(gl.float32, bitcast=True)
                    if s == 0:
                        total = part
                    else:
                        total = total + part
                    if s == S0:
                        unwritten = bits == 0
                    else:
                        unwritten = unwritten | (bits == 0)
            return total, gl.max(gl.max(unwritten.to(gl.int32), axis=1), axis=0)

        @gluon.jit
        def _peer_sum(wsi, mn, tile, mask, acc, SPLIT_K: gl.constexpr, G: gl.constexpr):
            """FLAGS, the last slice: the tile's sum over the K slices in slice order (the other slices' partials read
            G slices at a time, each group again while any of it is unwritten, at most FLAG_TRIES times; this slice's
            `acc` last)."""
            total = acc
            for g in gl.static_range(0, SPLIT_K - 1, G):
                part, pending = _peer_range(wsi, mn, tile, mask, total, g, G, SPLIT_K - 1)
                tries = 1
                while (pending > 0) & (tries < FLAG_TRIES):  # (bounded: an unwritten partial reads as a NaN)
                    part, pending = _peer_range(wsi, mn, tile, mask, total, g, G, SPLIT_K - 1)
                    tries += 1
                total = part
            return total + acc

        @gluon.jit
        def _finish(acc, sx_ptr, bias_ptr, out_ptr, ws_ptr, cnt_ptr, offs_m, offs_n, M, N, stride_om, pid_n, pid_k,
                    SX_MODE: gl.constexpr, HAS_BIAS: gl.constexpr, SPLIT_K: gl.constexpr, FLAGS: gl.constexpr = False,
                    PEERS: gl.constexpr = 0):
            """Epilogue: the activation scale, then (split-K) this slice's fp32
            partial into the workspace and, in the last slice to arrive, the fixed-order sum; bias; store.
            FLAGS: no arrival counter. Slices 0 .. SPLIT_K - 2 store their partials, each value as the complement of its
            bits, into `ws_ptr` (kept zeroed between launches) and are done; the last slice reads them until none is
            0 (unwritten), adds them in slice order with its own (the counter's sum, bit for bit), zeroes them again
            and stores. The last slice is the grid's last row of programs, so the slices it waits for are launched
            before it (what CUTLASS's stream-K fixup assumes too). One L2 round trip after the last slice's own steps,
            against three with the counter (the partials' release, the atomic, the reads). The wait is bounded
            (FLAG_TRIES reads, seconds): a partial still unwritten then is summed as the NaN its 0 reads as, an error
            that shows instead of a hang (two streams sharing the buffer, which the host does not do). PEERS > 0 (fewer
            than the other slices): their partials read PEERS slices at a time, each group until written (its
            registers, not all slices' at once: 255 registers at 16 slices otherwise; the same sum in the same
            order)."""
            if SX_MODE == 1:
                acc = acc * gl.load(sx_ptr).to(gl.float32)
            elif SX_MODE == 2:
                acc = acc * gl.load(sx_ptr + offs_m, mask=offs_m < M, other=0.0).to(gl.float32)[:, None]
            if SPLIT_K > 1:
                mask = (offs_m < M)[:, None] & (offs_n < N)[None, :]
                tile = offs_m.to(gl.int64)[:, None] * N + offs_n[None, :]
                mn = gl.cast(M, gl.int64) * N
                if FLAGS:
                    wsi = ws_ptr.to(gl.pointer_type(gl.int32), bitcast=True)
                    if pid_k < SPLIT_K - 1:  # (a NaN stored as the canonical one: no complement is then 0)
                        acc = gl.where(acc == acc, acc, float("nan"))
                        gl.store(wsi + pid_k * mn + tile, ~acc.to(gl.int32, bitcast=True), mask=mask)
                    else:
                        if PEERS > 0 and SPLIT_K - 1 > PEERS:  # (a group at a time)
                            total = _peer_sum(wsi, mn, tile, mask, acc, SPLIT_K, PEERS)
                        else:  # (all at once)
                            total = _peer_sum(wsi, mn, tile, mask, acc, SPLIT_K, SPLIT_K - 1)
                        cleared = gl.zeros_like(acc).to(gl.int32)
                        for s in gl.static_range(SPLIT_K - 1):
                            gl.store(wsi + s * mn + tile, cleared, mask=mask)
                        _store_out(total, bias_ptr, out_ptr, offs_m, offs_n, M, N, stride_om, HAS_BIAS)
                else:
                    gl.store(ws_ptr + pid_k * mn + tile, acc, mask=mask)
                    gl.thread_barrier()  # every thread's partial is written before the release below
                    arrived = gl.atomic_add(cnt_ptr + pid_n, 1, sem="acq_rel", scope="gpu")
                    if arrived == SPLIT_K - 1:
                        total = gl.load(ws_ptr + tile, mask=mask, other=0.0, cache_modifier=".cg")
                        for s in range(1, SPLIT_K):
                            total += gl.load(ws_ptr + s * mn + tile, mask=mask, other=0.0, cache_modifier=".cg")
                        _store_out(total, bias_ptr, out_ptr, offs_m, offs_n, M, N, stride_om, HAS_BIAS)
                        gl.atomic_xchg(cnt_ptr + pid_n, 0)
            else:
                _store_out(acc, bias_ptr, out_ptr, offs_m, offs_n, M, N, stride_om, HAS_BIAS)

    except Exception:  # pragma: no cover - a Gluon API this code does not know: the Triton path only
        gluon = None


@functools.cache
def _tile_layout():
    """The unswizzled shared layout of both TMA tiles (kept: built on every launch otherwise, ~8 µs of host time)."""
    return gl.NVMMASharedLayout(swizzle_byte_width=0, element_bitwidth=8, rank=2)


def tma_descriptors(a, qweight, block_n: int, sub: int, pair: bool = False, ksub: int = 1):
    """Host TMA descriptors of `_decode_tma_kernel` (unswizzled shared tiles: each lane reads 16
    contiguous bytes of one weight row, 8 rows of 64 bytes per warp access, no bank conflicts);
    `pair` (PAIR): a weight box of two K steps (an activation box would still be one step's half);
    `ksub` (KSUB): a weight box of `ksub` K steps of `block_n` rows;
    `a` None (FUSED_ROW, or a descriptor made on the first call's buffer): no activation descriptor."""
    w_desc = TensorDescriptor.from_tensor(qweight, [block_n, (1 + pair) * ksub * (sub // 2)], _tile_layout())
    return w_desc, activation_descriptor(a, sub, 16 // ksub) if a is not None else None


def activation_descriptor(a, sub: int, rows: int = 16):
    """The host TMA descriptor of `_decode_tma_kernel`'s permuted int8 activation buffer `a` (M, Kp): boxes of `rows`
    rows (KSUB: 16 // KSUB) and half a K step."""
    return TensorDescriptor.from_tensor(a, [rows, sub // 2], _tile_layout())

"""Single-launch W4A8 decode GEMM (M <= 16) for `fptq.kernels.triton_w4a8`.

Decode is memory-bound: the whole cost is streaming the packed int4 weights once. This kernel
does the op in ONE launch, with the semantics of `fptq.kernels.reference`:

- Grid `(cdiv(N, BLOCK_N), SPLIT)`: program `(n, s)` owns a `BLOCK_N x KS` slab of the weight
  (`KS = STEPS * SUB` columns, `SPLIT = cdiv(K, KS)`). The slab is read by ONE `tl.load` of shape
  `(STEPS, SUB / 2, BLOCK_N)` bytes issued first thing, so all of its bytes are in flight at
  once (16-byte vector loads along K), independent of Triton's software pipeliner.
- Activations are quantized in the program itself (`fused`): static per-tensor needs nothing
  more; dynamic per-token first computes each row's absmax over the full K from the raw input
  (tiny, L2-resident), while the weight slab is already in flight. Without `fused` the
  activations come pre-quantized (the row kernel of `triton_w4a8`, one extra launch), which is
  cheaper when many programs would each redo the absmax of 16 rows.
- Products: a batched int8 `tl.dot` over the slab's `STEPS` chunks (`(STEPS, 16, SUB/2) x
  (STEPS, SUB/2, BLOCK_N)`, M padded to 16), or the same with fp16 operands (integer values,
  exact), or plain FMA + `tl.sum` (M = 1 GEMV). Each chunk's exact partial sum is scaled by its
  group scale in fp32 and the chunks are summed.
- Split-K without a second launch: every program writes its fp32 partial tile to a workspace
  (plain stores, no zero fill) and bumps a per-column-tile arrival counter (acq_rel atomic);
  the last program to arrive sums the `SPLIT` partials in a fixed order (deterministic), resets
  the counter to 0 for the next launch, applies the activation scale and bias and writes the
  output in the input dtype. `SPLIT == 1` stores directly.

The counters live in one zero-initialised int32 buffer per device, reused by every launch:
launches must not run concurrently on several streams (each launch leaves it zeroed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover
    triton = None
    tl = None

__all__ = ["DecodeConfig", "decode_linear", "DOT_INT8", "DOT_FP16", "DOT_FMA"]

DOT_INT8, DOT_FP16, DOT_FMA = 0, 1, 2
# A operand sources (same numbering as triton_w4a8's _A_* constants)
A_PERMUTED, A_RAW_STATIC, A_RAW_DYNAMIC, A_RAW_FLOAT = 0, 1, 2, 3


@dataclass(frozen=True)
class DecodeConfig:
    """Launch parameters of `_decode_kernel`."""

    block_n: int = 64
    steps: int = 4  # SUB-column chunks per program: the K slice is steps * SUB columns
    num_warps: int = 4
    dot: int = DOT_INT8
    fused: bool = True  # quantize activations in the kernel (else a separate row kernel)
    block_m: int = 16  # 16 for the tensor-core dots; FMA may use 1 (M = 1 only)


if triton is not None:
    from fptq.kernels.triton_prefill import _unpack_int4

    @triton.jit
    def _rne(v):
        return (v + 12582912.0) - 12582912.0

    @triton.jit
    def _max2(a, b):
        return tl.maximum(a, b)

    @triton.jit
    def _add2(a, b):
        return a + b

    @triton.jit
    def _decode_kernel(
        x_ptr,  # raw x (M, K) float, or the permuted int8 buffer (M, Kp)
        w_ptr,  # uint8 (N, K // 2)
        scales_ptr,  # fp16 (N, groups)
        zeros_ptr,  # uint8 (N, groups) or dummy
        sx_ptr,  # fp32 scalar (static) / (M,) per-token scales (pre-quantized dynamic) / dummy
        bias_ptr,
        out_ptr,  # (M, N) in the output dtype
        ws_ptr,  # fp32 (SPLIT, M, N) partials, SPLIT > 1
        cnt_ptr,  # int32 arrival counters, zero on entry and on exit
        M,
        N,
        K,
        stride_xm,
        stride_wn,
        stride_sn,
        stride_zn,
        stride_om,
        SPLIT,  # K slices (runtime: one compiled kernel for every K; 1 is specialised)
        GROUP: tl.constexpr,
        SUB: tl.constexpr,
        PER_CHANNEL: tl.constexpr,
        A_MODE: tl.constexpr,
        DOT: tl.constexpr,
        HAS_ZEROS: tl.constexpr,
        SX_MODE: tl.constexpr,  # pre-quantized input: 1 scalar, 2 per token; 0 none
        HAS_BIAS: tl.constexpr,
        K_TAIL: tl.constexpr,  # K % SUB != 0 (per-channel only): element masks along K
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        STEPS: tl.constexpr,
        XROWS: tl.constexpr,  # rows of the absmax pre-pass: 1 (M == 1) or BLOCK_M
        USE_ASM: tl.constexpr,
    ):
        HALF: tl.constexpr = SUB // 2
        KS: tl.constexpr = STEPS * SUB
        pid_n = tl.program_id(0)
        pid_k = tl.program_id(1)
        offs_m = tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_s = tl.arange(0, STEPS)
        offs_j = tl.arange(0, HALF)
        row_ok = offs_m < M
        rows = tl.where(row_ok, offs_m, 0).to(tl.int64)
        cols = tl.where(offs_n < N, offs_n, 0).to(tl.int64)
        k_lo = pid_k * KS
        k_step = k_lo + offs_s * SUB  # (STEPS,) first column of each chunk
        step_ok = k_step < K

        # ---- the weight slab first: (STEPS, HALF, BLOCK_N) bytes, all in flight at once
        kb = (pid_k * (KS // 2) + offs_s * HALF)[:, None, None] + offs_j[None, :, None]
        w_ptrs = w_ptr + cols[None, None, :] * stride_wn + kb
        if K_TAIL:
            wb = tl.load(w_ptrs, mask=kb < K // 2, other=0)
        else:
            wb = tl.load(w_ptrs, mask=step_ok[:, None, None], other=0)
        # group scales / zeros of each chunk: (STEPS, 1, BLOCK_N)
        if PER_CHANNEL:
            scale = tl.load(scales_ptr + cols * stride_sn).to(tl.float32)
            if HAS_ZEROS:
                zero = tl.load(zeros_ptr + cols * stride_zn).to(tl.int8)[None, None, :]
        else:
            g = tl.minimum(k_step // GROUP, K // GROUP - 1)
            s_w = tl.load(scales_ptr + cols[None, None, :] * stride_sn + g[:, None, None]).to(tl.float32)
            if HAS_ZEROS:
                zero = tl.load(zeros_ptr + cols[None, None, :] * stride_zn + g[:, None, None]).to(tl.int8)
        if not HAS_ZEROS:
            zero = tl.full((1, 1, BLOCK_N), 8, dtype=tl.int8)

        # ---- activations of this K slice: (STEPS, BLOCK_M, HALF) even / odd columns
        if A_MODE == 2:
            # per-token absmax over the whole row (raw input, L2-resident)
            XC: tl.constexpr = 4096 // XROWS
            offs_xr = tl.arange(0, XROWS)
            offs_c = tl.arange(0, XC)
            xr_ok = offs_xr < M
            x_rows = x_ptr + offs_xr.to(tl.int64)[:, None] * stride_xm
            amax = tl.full((XROWS, XC), 0, dtype=tl.float32)
            for c0 in range(0, K, XC):
                xc = tl.load(x_rows + c0 + offs_c[None, :], mask=xr_ok[:, None] & (c0 + offs_c[None, :] < K), other=0.0)
                amax = tl.maximum(amax, tl.abs(xc.to(tl.float32)))
            m_abs = tl.reduce(amax, 1, _max2)  # (XROWS,)
            s_x = tl.where(m_abs > 0, tl.math.div_rn(m_abs, 127.0), 1.0)
            if XROWS == 1:
                s_row = tl.full((BLOCK_M,), 0, dtype=tl.float32) + tl.reduce(s_x, 0, _max2)
            else:
                s_row = s_x
        elif A_MODE == 1:
            s_row = tl.full((BLOCK_M,), 0, dtype=tl.float32) + tl.load(sx_ptr).to(tl.float32)
        else:
            s_row = tl.full((BLOCK_M,), 1.0, dtype=tl.float32)  # unused
        x_base = x_ptr + rows[None, :, None] * stride_xm
        if A_MODE == 0:
            a_off = k_step[:, None, None] + offs_j[None, None, :]
            a_mask = row_ok[None, :, None] & step_ok[:, None, None]
            a_even = tl.load(x_base + a_off, mask=a_mask, other=0)
            a_odd = tl.load(x_base + a_off + HALF, mask=a_mask, other=0)
        else:
            src = k_step[:, None, None] + 2 * offs_j[None, None, :]
            if K_TAIL:
                me = row_ok[None, :, None] & (src < K)
                mo = row_ok[None, :, None] & (src + 1 < K)
            else:
                me = row_ok[None, :, None] & step_ok[:, None, None]
                mo = me
            xe = tl.load(x_base + src, mask=me, other=0.0)
            xo = tl.load(x_base + src + 1, mask=mo, other=0.0)
            if A_MODE == 3:
                a_even = xe
                a_odd = xo
            else:
                sr = s_row[None, :, None]
                a_even = _rne(tl.clamp(tl.math.div_rn(xe.to(tl.float32), sr), -127.0, 127.0)).to(tl.int8)
                a_odd = _rne(tl.clamp(tl.math.div_rn(xo.to(tl.float32), sr), -127.0, 127.0)).to(tl.int8)

        # ---- products of each chunk: d (STEPS, BLOCK_M, BLOCK_N)
        w_even = _unpack_int4(wb, zero, False, HAS_ZEROS, USE_ASM)
        w_odd = _unpack_int4(wb, zero, True, HAS_ZEROS, USE_ASM)
        if A_MODE == 3:
            d = tl.dot(a_even, w_even.to(a_even.dtype), out_dtype=tl.float32)
            d = tl.dot(a_odd, w_odd.to(a_even.dtype), d, out_dtype=tl.float32)
        elif DOT == 0:
            d = tl.dot(a_even, w_even, out_dtype=tl.int32)
            d = tl.dot(a_odd, w_odd, d, out_dtype=tl.int32)
            if PER_CHANNEL:
                d = d.to(tl.float32)
            else:
                # |d| <= 127 * 15 * 128 < 2**22: exact int32 -> fp32 by the magic-number trick
                d = (d + 0x4B400000).to(tl.float32, bitcast=True) - 12582912.0
        elif DOT == 1:
            d = tl.dot(a_even.to(tl.float16), w_even.to(tl.float16), out_dtype=tl.float32)
            d = tl.dot(a_odd.to(tl.float16), w_odd.to(tl.float16), d, out_dtype=tl.float32)
        else:
            pe = a_even.to(tl.float32)[:, :, :, None] * w_even.to(tl.float32)[:, None, :, :]
            po = a_odd.to(tl.float32)[:, :, :, None] * w_odd.to(tl.float32)[:, None, :, :]
            d = tl.reduce(pe + po, 2, _add2)
        if PER_CHANNEL:
            acc = tl.reduce(d, 0, _add2) * scale[None, :]
        else:
            acc = tl.reduce(d * s_w, 0, _add2)  # (BLOCK_M, BLOCK_N)

        out_mask = row_ok[:, None] & (offs_n[None, :] < N)
        if SPLIT > 1:
            ws_tile = ws_ptr + offs_m[:, None] * N + offs_n[None, :]
            tl.store(ws_tile + pid_k * M * N, acc, mask=out_mask)
            tl.debug_barrier()  # every thread's partial is written before the release below
            arrived = tl.atomic_add(cnt_ptr + pid_n, 1, sem="acq_rel", scope="gpu")
            if arrived == SPLIT - 1:
                acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.float32)
                for s in range(SPLIT):  # fixed order: deterministic
                    acc += tl.load(ws_tile + s * M * N, mask=out_mask, other=0.0, cache_modifier=".cg")
                tl.store(cnt_ptr + pid_n, 0)
                _epilogue(acc, s_row, sx_ptr, bias_ptr, out_ptr, rows, cols, offs_m, offs_n, out_mask, stride_om, A_MODE, SX_MODE, HAS_BIAS)
        else:
            _epilogue(acc, s_row, sx_ptr, bias_ptr, out_ptr, rows, cols, offs_m, offs_n, out_mask, stride_om, A_MODE, SX_MODE, HAS_BIAS)

    @triton.jit
    def _epilogue(
        acc,
        s_row,
        sx_ptr,
        bias_ptr,
        out_ptr,
        rows,
        cols,
        offs_m,
        offs_n,
        out_mask,
        stride_om,
        A_MODE: tl.constexpr,
        SX_MODE: tl.constexpr,
        HAS_BIAS: tl.constexpr,
    ):
        if A_MODE == 1 or A_MODE == 2:
            acc = acc * s_row[:, None]
        elif SX_MODE == 1:
            acc = acc * tl.load(sx_ptr).to(tl.float32)
        elif SX_MODE == 2:
            acc = acc * tl.load(sx_ptr + rows).to(tl.float32)[:, None]
        if HAS_BIAS:
            acc = acc + tl.load(bias_ptr + cols).to(tl.float32)[None, :]
        out = out_ptr + offs_m.to(tl.int64)[:, None] * stride_om + offs_n[None, :]
        tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=out_mask)


def decode_linear(
    x2: torch.Tensor,
    a: torch.Tensor,
    a_mode: int,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    sx: torch.Tensor | None,
    sx_mode: int,
    bias: torch.Tensor | None,
    group_size: int,
    sub: int,
    cfg: DecodeConfig,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Launch `_decode_kernel`. `a` is `x2` itself (raw modes) or the permuted int8 buffer."""
    m, k = x2.shape
    n = qweight.shape[0]
    if out is None:
        out = torch.empty(m, n, dtype=x2.dtype, device=x2.device)
    if m == 0 or n == 0:
        return out
    ks = cfg.steps * sub
    split = triton.cdiv(k, ks)
    tiles = triton.cdiv(n, cfg.block_n)
    if split > 1:
        ws = torch.empty(split, m, n, dtype=torch.float32, device=x2.device)
        cnt = torch.zeros(tiles, dtype=torch.int32, device=x2.device)  # per call: safe in CUDA graphs
    else:
        ws = cnt = out
    dummy = scales
    _decode_kernel[(tiles, split)](
        a,
        qweight,
        scales,
        zeros if zeros is not None else dummy,
        sx if sx is not None else dummy,
        bias if bias is not None else dummy,
        out,
        ws,
        cnt,
        m,
        n,
        k,
        a.stride(0),
        qweight.stride(0),
        scales.stride(0),
        zeros.stride(0) if zeros is not None else 0,
        out.stride(0),
        split,
        GROUP=group_size,
        SUB=sub,
        PER_CHANNEL=group_size == k,
        A_MODE=a_mode,
        DOT=cfg.dot,
        HAS_ZEROS=zeros is not None,
        SX_MODE=sx_mode,
        HAS_BIAS=bias is not None,
        K_TAIL=k % sub != 0,
        BLOCK_M=cfg.block_m,
        BLOCK_N=cfg.block_n,
        STEPS=cfg.steps,
        XROWS=1 if m == 1 else cfg.block_m,
        USE_ASM=x2.is_cuda,
        num_warps=cfg.num_warps,
    )
    return out

"""W4A8 GEMV for decode (M <= 4) for `fptq.kernels.triton_w4a8`: no tensor cores, no operand shuffles.

At M = 1 the tiled GEMM pads M to 16 rows for the int8 `tl.dot` and moves every unpacked weight
into the MMA operand layout through shared memory: a fixed instruction cost per weight that no
tile shape removed (benchmarks/GPU_NOTES.md, run 9). Here the weights stay in the layout they
are loaded in and the products are `dp4a`: one instruction multiplies four int8 lanes of two
32-bit words and sums them.

Layout facts this relies on (QuantLinear packing, `_act_quant_kernel`'s permuted activations):
- `qweight` (N, K/2) uint8, byte j = column 2j (low nibble) | column 2j+1 (high nibble), read
  here as int32 words (N, K/8): word i of a SUB-column chunk holds bytes 4i..4i+3.
- the activation buffer (M, K) int8 stores each SUB-column chunk as its even columns, then its
  odd columns: byte 4i+b of the even half is column 2(4i+b) of the chunk, the low nibble of
  weight byte 4i+b. So `dp4a(low nibbles of word i, even word i)` and `dp4a(high nibbles of word
  i, odd word i)` pair every weight with its activation, lane by lane.
- nibbles become int8 `code - zero` four at a time in a 32-bit word: with `c = 0x80 - zero` per
  byte, `((nibble + c) ^ 0x80)` is `code - zero` with no carry between bytes.

Each SUB-column chunk's exact int32 partial sum is scaled by its group scale in fp32 (the
reference semantics; chunks of one group of 256+ columns are summed in fp32); the activation
scale (per-tensor static or per-token dynamic) and bias are applied at the end. Program `(n, s)`
owns BLOCK_N output columns and the `s`-th of SPLIT slices of K (SPLIT > 1: fp32 atomics into a
zeroed buffer, cast afterwards). The next step's weight words are loaded before the current
step is computed, so two steps of weights are in flight per program.
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

__all__ = ["GemvConfig", "GEMV_MAX_M", "gemv_supported", "gemv_linear"]

GEMV_MAX_M = 4


@dataclass(frozen=True)
class GemvConfig:
    """Launch parameters of `_gemv_kernel`."""

    block_n: int = 32  # output columns per program
    chunks: int = 4  # SUB-column chunks per loop step
    split_k: int = 1  # K slices (programs) per column tile
    num_warps: int = 4


def gemv_supported(m: int, k: int, sub: int, act_mode: str) -> bool:
    return 0 < m <= GEMV_MAX_M and k % sub == 0 and act_mode in ("static", "dynamic")


if triton is not None:

    @triton.jit
    def _dp4a(a, b, USE_ASM: tl.constexpr):
        """Sum of the four int8 lane products of int32 words `a` and `b` (same shapes)."""
        if USE_ASM:
            zero = tl.full(a.shape, 0, dtype=tl.int32)
            return tl.inline_asm_elementwise(
                "dp4a.s32.s32 $0, $1, $2, $3;", "=r,r,r,r", [a, b, zero], dtype=tl.int32, is_pure=True, pack=1
            )
        # interpreter: sign-extend each byte lane with a shift pair
        s = ((a << 24) >> 24) * ((b << 24) >> 24)
        s += ((a << 16) >> 24) * ((b << 16) >> 24)
        s += ((a << 8) >> 24) * ((b << 8) >> 24)
        return s + (a >> 24) * (b >> 24)

    @triton.jit
    def _bias_store(acc, bias_ptr, cols, out_ptr, offs_m, offs_n, stride_om, row_ok, N, pid_k,
                    HAS_BIAS: tl.constexpr, SPLIT_K: tl.constexpr):
        """Epilogue shared with `triton_w4a8._w4a8_kernel`: add the bias (once per column, on K
        slice 0 under split-K) and write the `(BLOCK_M, BLOCK_N)` fp32 tile: fp32 atomics into
        the zeroed split-K buffer, or a store in the output dtype."""
        if HAS_BIAS:
            bias = tl.load(bias_ptr + cols).to(tl.float32)
            if SPLIT_K > 1:
                bias = tl.where(pid_k == 0, bias, 0.0)
            acc = acc + bias[None, :]
        out = out_ptr + offs_m.to(tl.int64)[:, None] * stride_om + offs_n[None, :]
        mask = row_ok[:, None] & (offs_n[None, :] < N)
        if SPLIT_K > 1:
            tl.atomic_add(out, acc, mask=mask, sem="relaxed")
        else:
            tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _gemv_kernel(
        a_ptr,  # int32 view of the permuted int8 activations (M, K/4)
        w_ptr,  # int32 view of qweight (N, K/8)
        scales_ptr,  # fp16 (N, groups)
        zeros_ptr,  # uint8 (N, groups) or dummy
        sx_ptr,  # fp32 scalar (static) or (M,) per token (dynamic)
        bias_ptr,  # (N,) or dummy
        out_ptr,  # (M, N) output dtype, or fp32 for split-K
        M,
        N,
        K,
        stride_am,  # in int32 words
        stride_wn,  # in int32 words
        stride_sn,
        stride_zn,
        stride_om,
        GROUP: tl.constexpr,
        SUB: tl.constexpr,
        HAS_ZEROS: tl.constexpr,
        SX_MODE: tl.constexpr,  # 1 per-tensor scalar, 2 per-token (M,)
        HAS_BIAS: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        CHUNKS: tl.constexpr,
        SPLIT_K: tl.constexpr,
        USE_ASM: tl.constexpr,
    ):
        W: tl.constexpr = SUB // 8  # int32 words per chunk per weight row (and per activation half)
        pid_n = tl.program_id(0)
        pid_k = tl.program_id(1)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_m = tl.arange(0, BLOCK_M)
        offs_c = tl.arange(0, CHUNKS)
        offs_i = tl.arange(0, W)
        cols = tl.where(offs_n < N, offs_n, 0).to(tl.int64)  # out-of-range columns read row 0
        row_ok = offs_m < M
        rows = tl.where(row_ok, offs_m, 0).to(tl.int64)

        n_chunks = K // SUB
        steps = (n_chunks + CHUNKS - 1) // CHUNKS
        per_split = (steps + SPLIT_K - 1) // SPLIT_K
        c_lo = pid_k * per_split * CHUNKS
        c_hi = tl.minimum(c_lo + per_split * CHUNKS, n_chunks)

        # (BLOCK_N, CHUNKS, W) weight words; (BLOCK_M, 1, CHUNKS, W) activation words
        w_base = w_ptr + cols[:, None, None] * stride_wn + offs_c[None, :, None] * W + offs_i[None, None, :]
        a_base = a_ptr + rows[:, None, None, None] * stride_am + offs_c[None, None, :, None] * (2 * W) \
            + offs_i[None, None, None, :]
        s_base = scales_ptr + cols[:, None] * stride_sn
        z_base = zeros_ptr + cols[:, None] * stride_zn

        acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.float32)
        c0 = c_lo
        ok = (c0 + offs_c < c_hi)[None, :, None]
        w_next = tl.load(w_base + c0 * W, mask=ok, other=0)
        for _ in range(c_lo, c_hi, CHUNKS):
            w = w_next
            chunk_ok = c0 + offs_c < c_hi  # (CHUNKS,)
            c_next = c0 + CHUNKS
            w_next = tl.load(w_base + c_next * W, mask=(c_next + offs_c < c_hi)[None, :, None], other=0)
            a_ok = row_ok[:, None, None, None] & chunk_ok[None, None, :, None]
            a_even = tl.load(a_base + c0 * (2 * W), mask=a_ok, other=0)
            a_odd = tl.load(a_base + c0 * (2 * W) + W, mask=a_ok, other=0)
            g = ((c0 + offs_c) * SUB) // GROUP  # (CHUNKS,) group of each chunk
            s = tl.load(s_base + g[None, :], mask=chunk_ok[None, :], other=0.0).to(tl.float32)  # (BLOCK_N, CHUNKS)
            if HAS_ZEROS:
                z = tl.load(z_base + g[None, :], mask=chunk_ok[None, :], other=0).to(tl.uint32)
                c = ((128 - z) * 0x01010101)[:, :, None]
            else:
                c = 0x78787878  # 0x80 - 8, the symmetric zero
            wu = w.to(tl.uint32, bitcast=True)
            lo = (((wu & 0x0F0F0F0F) + c) ^ 0x80808080).to(tl.int32, bitcast=True)
            hi = ((((wu >> 4) & 0x0F0F0F0F) + c) ^ 0x80808080).to(tl.int32, bitcast=True)
            shape: tl.constexpr = (BLOCK_M, BLOCK_N, CHUNKS, W)
            p = _dp4a(tl.broadcast_to(lo[None, :, :, :], shape), tl.broadcast_to(a_even, shape), USE_ASM)
            p += _dp4a(tl.broadcast_to(hi[None, :, :, :], shape), tl.broadcast_to(a_odd, shape), USE_ASM)
            d = tl.sum(p, axis=3)  # (BLOCK_M, BLOCK_N, CHUNKS): exact int32 partial sum per chunk
            acc += tl.sum(d.to(tl.float32) * s[None, :, :], axis=2)
            c0 = c_next

        if SX_MODE == 1:
            acc = acc * tl.load(sx_ptr).to(tl.float32)
        else:
            acc = acc * tl.load(sx_ptr + rows).to(tl.float32)[:, None]
        _bias_store(acc, bias_ptr, cols, out_ptr, offs_m, offs_n, stride_om, row_ok, N, pid_k, HAS_BIAS, SPLIT_K)


def gemv_linear(
    a: torch.Tensor,
    sx: torch.Tensor,
    sx_mode: int,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    bias: torch.Tensor | None,
    group_size: int,
    sub: int,
    out_dtype: torch.dtype,
    cfg: GemvConfig,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """`(M, N)` output of the permuted int8 activations `a` `(M, K)` (from `_act_quant_kernel`)
    times the packed int4 weight, with `sx` the fp32 scalar (`sx_mode` 1) or per-token scales (2)."""
    m, k = a.shape
    n = qweight.shape[0]
    final = out
    if cfg.split_k > 1:
        out = torch.zeros(m, n, dtype=torch.float32, device=a.device)
    elif out is None:
        out = torch.empty(m, n, dtype=out_dtype, device=a.device)
    if m == 0 or n == 0:
        return out.to(out_dtype)
    grid = (triton.cdiv(n, cfg.block_n), cfg.split_k)
    _gemv_kernel[grid](
        a.view(torch.int32),
        qweight.view(torch.int32),
        scales,
        zeros if zeros is not None else scales,
        sx,
        bias if bias is not None else scales,
        out,
        m,
        n,
        k,
        a.stride(0) // 4,
        qweight.stride(0) // 4,
        scales.stride(0),
        zeros.stride(0) if zeros is not None else 0,
        out.stride(0),
        GROUP=group_size,
        SUB=sub,
        HAS_ZEROS=zeros is not None,
        SX_MODE=sx_mode,
        HAS_BIAS=bias is not None,
        BLOCK_M=triton.next_power_of_2(m),
        BLOCK_N=cfg.block_n,
        CHUNKS=cfg.chunks,
        SPLIT_K=cfg.split_k,
        USE_ASM=a.is_cuda,
        num_warps=cfg.num_warps,
    )
    if cfg.split_k > 1:
        return final.copy_(out) if final is not None else out.to(out_dtype)
    return out

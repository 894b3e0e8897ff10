"""Prefill path (large M) of the Triton W4A8 backend: unpack once, then a plain pipelined GEMM.

At large M the GEMM is compute-bound, and unpacking the int4 nibbles inside the MMA loop costs
the tensor cores their operand feed: the unpacked weights go global -> shared -> registers
(unpack) -> shared -> MMA in every CTA that uses them, and the unpack and its registers sit on
the MMA warps (run 14: even without per-group scaling that kernel reached only ~0.75x of
cuBLAS int8). Here each call first expands the packed weights into `code - zero` in the MMA
operand type (int8, or float8 e4m3 / fp16 / bf16: every value in [-15, 15] is exact in all of
them) with `_unpack_kernel`, once per weight instead of once per row tile, in the kernels'
permuted column order (per `SUB`-column chunk: even columns, then odd ones, matching the
activation buffer of `triton_w4a8.quantize_activation_triton`). Then `_gemm_kernel` is an
ordinary tiled GEMM whose two operands stream global -> shared memory, software-pipelined by
Triton (int8 / fp8 wgmma on Hopper), with the group scaling in the K loop: per `SUB` columns an
exact partial sum (int32, or fp32 from a fresh accumulator) scaled by its group scale into the
fp32 accumulator; activation scale and bias in the epilogue. Same semantics as the reference.

The unpacked weights are a temporary: the columns are processed in chunks of at most
`CHUNK_BYTES` of unpacked weights, one chunk alive at a time, so the extra memory of a call is
bounded (64 MiB) and small next to the activations of a long prompt.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is missing
    triton = None
    tl = None
try:  # Gluon (Triton >= 3.5, experimental API): explicit wgmma / TMA / mbarriers for the Hopper kernel
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma, warpgroup_mma_wait
except Exception:  # pragma: no cover - older or changed Triton: the Triton kernel only
    gluon = None

# Operand kinds of the unpacked weights and of `_gemm_kernel`'s dot.
KIND_INT8, KIND_FLOAT, KIND_FP8 = 0, 1, 2
# Unpacked weight bytes per column chunk of one call at most (bounds the temporary); a layer is split
# into equal chunks (run 19: small or ragged chunks leave the GPU under-filled at M <= 1024).
CHUNK_BYTES = 64 << 20


@dataclass(frozen=True)
class PrefillConfig:
    """Launch parameters of `_gemm_kernel` (picked by `benchmarks/bench_gemm.py --prefill-sweep` on
    the H100, runs 19-25: 64x128 tiles, 4 warps, 4 stages; the stage count is lowered where the
    GPU's shared memory is smaller)."""

    block_m: int = 64
    block_n: int = 128
    num_warps: int = 4
    num_stages: int = 4
    group_m: int = 8
    # the Gluon kernel `_gemm_wgmma_kernel` (TMA ring, wgmma) for int8 / fp8 operands on Hopper
    # (sm_90), elsewhere the Triton kernel; it measured within +-10 % of the Triton kernel (runs 20-25)
    wgmma: bool = False
    maxnreg: int | None = None  # (wgmma) register cap per thread (more CTAs per SM); None: the compiler's
    # the warp-specialized persistent Gluon kernel `gluon_prefill._gemm_ws_kernel` (Hopper, int8 / fp8):
    # 128 x block_n tiles, two consumer warpgroups and a loader warp (block_m 128, num_warps 4)
    ws: bool = False
    # the Hopper kernel with the packed weights as wgmma's register operand, no unpack pass (`gluon_swap`,
    # the default where it applies): block_m tokens (64 or 128) x 128 weight rows; int8 activations and
    # symmetric weights, groups a multiple of 128 (else the ws kernel, `WS_CONFIG`). Its num_stages counts
    # ring slots (each of `gluon_swap.K_PER_SLOT` K steps, as many as fit), the ws kernel's K steps.
    swap: bool = False

    def __post_init__(self):
        pow2 = all(v > 0 and v & (v - 1) == 0 for v in (self.block_m, self.block_n, self.num_warps))
        if not pow2 or self.block_m < 16 or self.block_n < 16 or self.num_stages < 1 or self.group_m < 1:
            raise ValueError(f"bad PrefillConfig {self}: block sizes >= 16 and warps must be powers of two")
        if self.wgmma and (self.block_m < 64 or self.num_warps % 4):
            raise ValueError(f"bad PrefillConfig {self}: wgmma needs block_m >= 64 and whole warpgroups")
        if self.ws and (self.block_m != 128 or self.num_warps != 4 or self.block_n > 128 or self.wgmma):
            raise ValueError(f"bad PrefillConfig {self}: ws needs block_m 128, block_n <= 128 and 4 warps")
        if self.swap and (self.block_m not in (64, 128) or self.block_n not in (128, 256) or self.num_warps != 4
                          or self.wgmma or self.num_stages < 2 or (self.block_n == 256 and self.block_m != 128)):
            raise ValueError(f"bad PrefillConfig {self}: swap needs block_m 64 or 128 (256 weight rows: 128), block_n 128 "
                             "or 256, 4 warps, >= 2 stages")


if triton is not None:
    from fptq.kernels.triton_gemv import _bias_store

    def _unpack_ptx(high: bool, zeros: bool) -> str:
        """PTX of `_unpack_int4` for four packed bytes in one 32-bit register (`$1`; `$2`: the bytes
        `0x80 - zero`, else zero 8): low or high nibbles -> int8 `nibble - zero` in `$0`."""
        nibbles = "shr.u32 t, $1, 4; and.b32 t, t, 0x0F0F0F0F;" if high else "and.b32 t, $1, 0x0F0F0F0F;"
        add = "add.u32 t, t, $2;" if zeros else "add.u32 t, t, 0x78787878;"
        return "{ .reg .b32 t; " + nibbles + " " + add + " xor.b32 $0, t, 0x80808080; }"

    # two-level scales (`gluon_swap`'s TL): the nibbles times the integer group scale s2 (`$2`, a 32-bit register) plus
    # the bytes `0x80 - 8 * s2` (`$6`; pack 4: the int32 arguments take four registers each), as int8 bytes:
    # `(code - 8) * s2` in [-128, 112] (code * s2 <= 240: no carry between bytes)
    def _unpack_ptx_two_level(high: bool) -> str:
        nibbles = "shr.u32 t, $1, 4; and.b32 t, t, 0x0F0F0F0F;" if high else "and.b32 t, $1, 0x0F0F0F0F;"
        return "{ .reg .b32 t; " + nibbles + " mad.lo.u32 t, t, $2, $6; xor.b32 $0, t, 0x80808080; }"

    UNPACK_LO_TL = tl.constexpr(_unpack_ptx_two_level(False))
    UNPACK_HI_TL = tl.constexpr(_unpack_ptx_two_level(True))

    # the four variants as constants the Triton and Gluon kernels (`gluon_decode`) can read
    UNPACK_LO = tl.constexpr(_unpack_ptx(False, False))
    UNPACK_HI = tl.constexpr(_unpack_ptx(True, False))
    UNPACK_LO_Z = tl.constexpr(_unpack_ptx(False, True))
    UNPACK_HI_Z = tl.constexpr(_unpack_ptx(True, True))

    @triton.jit
    def _unpack_int4(wb, zero, HIGH: tl.constexpr, HAS_ZEROS: tl.constexpr, USE_ASM: tl.constexpr):
        """int8 `code - zero` of the low (even column) or high (odd column) nibbles of bytes `wb`.

        On the GPU, four bytes at a time in one 32-bit register: with `c = 0x80 - zero` (so
        `nibble + c` lies in [0x71, 0x8F] and no byte carries into the next),
        `((nibble + c) ^ 0x80) == nibble - zero` as int8. Three or four instructions per four
        weights instead of byte-wise shifts, masks and conversions.
        """
        if USE_ASM:
            if HAS_ZEROS:
                c = tl.broadcast_to((128 - zero.to(tl.int32)).to(tl.uint8), wb.shape)
                if HIGH:
                    return tl.inline_asm_elementwise(UNPACK_HI_Z, "=r,r,r", [wb, c], dtype=tl.int8, is_pure=True, pack=4)
                return tl.inline_asm_elementwise(UNPACK_LO_Z, "=r,r,r", [wb, c], dtype=tl.int8, is_pure=True, pack=4)
            if HIGH:
                return tl.inline_asm_elementwise(UNPACK_HI, "=r,r", [wb], dtype=tl.int8, is_pure=True, pack=4)
            return tl.inline_asm_elementwise(UNPACK_LO, "=r,r", [wb], dtype=tl.int8, is_pure=True, pack=4)
        if HIGH:
            return (wb >> 4).to(tl.int8) - zero
        return (wb & 15).to(tl.int8) - zero

    @triton.jit
    def _grouped_tile(pid, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
        """(row block, column block) of program `pid`, in groups of GROUP_M row blocks that walk the
        column blocks together, so that they share weight tiles in L2."""
        num_pid_m = (M + BLOCK_M - 1) // BLOCK_M
        num_pid_n = (N + BLOCK_N - 1) // BLOCK_N
        num_in_group = GROUP_M * num_pid_n
        first_m = (pid // num_in_group) * GROUP_M
        group_rows = min(num_pid_m - first_m, GROUP_M)
        return first_m + ((pid % num_in_group) % group_rows), (pid % num_in_group) // group_rows

    @triton.jit
    def _unpack_kernel(
        w_ptr,  # uint8 (N, K // 2) packed int4, QuantLinear layout
        zeros_ptr,  # uint8 (N, groups) or dummy
        out_ptr,  # (N, Kp) operand type, permuted column order, zero padded beyond K
        N,
        K,
        Kp,
        stride_wn,
        stride_zn,
        GROUP: tl.constexpr,
        SUB: tl.constexpr,
        HAS_ZEROS: tl.constexpr,
        KIND: tl.constexpr,
        BLOCK_N: tl.constexpr,
        CHUNKS: tl.constexpr,  # SUB-column chunks per program
        USE_ASM: tl.constexpr,
    ):
        HALF: tl.constexpr = SUB // 2
        offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        rows = tl.where(offs_n < N, offs_n, 0).to(tl.int64)
        c = tl.program_id(1) * CHUNKS + tl.arange(0, CHUNKS)
        j = tl.arange(0, HALF)
        byte = c[:, None] * HALF + j[None, :]  # (CHUNKS, HALF) byte of each row
        in_k = (byte < K // 2)[None, :, :]
        wb = tl.load(w_ptr + rows[:, None, None] * stride_wn + byte[None, :, :], mask=in_k, other=0)
        if HAS_ZEROS:
            g = tl.minimum((c * SUB) // GROUP, (K - 1) // GROUP)
            zero = tl.load(zeros_ptr + rows[:, None] * stride_zn + g[None, :]).to(tl.int8)[:, :, None]
        else:
            zero = tl.full((1, 1, 1), 8, dtype=tl.int8)
        lo = tl.where(in_k, _unpack_int4(wb, zero, False, HAS_ZEROS, USE_ASM), 0)
        hi = tl.where(in_k, _unpack_int4(wb, zero, True, HAS_ZEROS, USE_ASM), 0)
        if KIND == 1:
            lo = lo.to(out_ptr.dtype.element_ty)
            hi = hi.to(out_ptr.dtype.element_ty)
        elif KIND == 2:
            lo = lo.to(tl.float16).to(tl.float8e4nv)
            hi = hi.to(tl.float16).to(tl.float8e4nv)
        dst = out_ptr + rows[:, None, None] * Kp + (c[:, None] * SUB + j[None, :])[None, :, :]
        keep = (offs_n < N)[:, None, None] & (c < Kp // SUB)[None, :, None]
        tl.store(dst, lo, mask=keep)
        tl.store(dst + HALF, hi, mask=keep)

    @triton.jit
    def _gemm_kernel(
        a_ptr,  # (M, Kp) quantized activations, permuted column order (int8 / fp8 / float)
        b_ptr,  # (N, Kp) unpacked weights `code - zero`, same order and type
        scales_ptr,  # fp16 (N, groups)
        sx_ptr,  # activation scale: fp32 scalar or (M,), or dummy
        bias_ptr,  # (N,) or dummy
        out_ptr,  # (M, N) output dtype, row stride stride_om
        M,
        N,
        Kp,
        stride_am,
        stride_bn,
        stride_sn,
        stride_om,
        GROUP: tl.constexpr,
        SUB: tl.constexpr,
        PER_CHANNEL: tl.constexpr,
        KIND: tl.constexpr,
        SX_MODE: tl.constexpr,  # 0 none, 1 per-tensor scalar, 2 per-token (M,)
        HAS_BIAS: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        GROUP_M: tl.constexpr,
    ):
        pid_m, pid_n = _grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_k = tl.arange(0, SUB)
        # Out-of-range rows/columns read row 0 / column 0 (valid memory) and are never stored.
        rows = tl.where(offs_m < M, offs_m, 0).to(tl.int64)
        cols = tl.where(offs_n < N, offs_n, 0).to(tl.int64)
        row_ok = offs_m < M
        a_tile = a_ptr + rows[:, None] * stride_am + offs_k[None, :]  # (BLOCK_M, SUB)
        b_tile = b_ptr + cols[None, :] * stride_bn + offs_k[:, None]  # (SUB, BLOCK_N), K-major
        s_cols = scales_ptr + cols * stride_sn
        n_steps = Kp // SUB

        acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.float32)
        if PER_CHANNEL:
            if KIND == 0:
                acc_i = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.int32)
        else:
            last_g = Kp // GROUP - 1
            s_next = tl.load(s_cols)  # prefetched one step ahead (small loads are not pipelined)
        for step in range(0, n_steps):
            a = tl.load(a_tile + step * SUB)
            b = tl.load(b_tile + step * SUB)
            if PER_CHANNEL:
                if KIND == 0:
                    acc_i = tl.dot(a, b, acc_i, out_dtype=tl.int32)
                elif KIND == 1:
                    acc = tl.dot(a, b, acc, out_dtype=tl.float32)
                else:  # fp8: Hopper accumulates fp8 products at reduced precision; add each step's sum
                    acc += tl.dot(a, b, out_dtype=tl.float32)
            else:
                s_w = s_next.to(tl.float32)
                s_next = tl.load(s_cols + tl.minimum(((step + 1) * SUB) // GROUP, last_g))
                if KIND == 0:
                    d = tl.dot(a, b, out_dtype=tl.int32)
                    # exact int32 -> fp32 (|d| <= 127 * 15 * 128 < 2**22): the bits of
                    # d + 0x4B400000 are the float 1.5 * 2**23 + d (IADD + FADD, no I2F)
                    acc += ((d + 0x4B400000).to(tl.float32, bitcast=True) - 12582912.0) * s_w[None, :]
                else:
                    acc += tl.dot(a, b, out_dtype=tl.float32) * s_w[None, :]
        if PER_CHANNEL:
            scale = tl.load(s_cols).to(tl.float32)[None, :]
            acc = acc_i.to(tl.float32) * scale if KIND == 0 else acc * scale
        if SX_MODE == 1:
            acc = acc * tl.load(sx_ptr).to(tl.float32)
        elif SX_MODE == 2:
            acc = acc * tl.load(sx_ptr + rows).to(tl.float32)[:, None]
        _bias_store(acc, bias_ptr, cols, out_ptr, offs_m, offs_n, stride_om, row_ok, N, 0, HAS_BIAS, 1)


def unpack_weights(qweight: torch.Tensor, zeros: torch.Tensor | None, k: int, group_size: int, sub: int,
                   dtype: torch.dtype) -> torch.Tensor:
    """`(N, Kp)` `code - zero` in `dtype` (int8, float8_e4m3fn, fp16 or bf16), in the kernels'
    permuted column order (`triton_w4a8.activation_layout`), zero beyond K."""
    n = qweight.shape[0]
    kp = -(-k // sub) * sub
    kind = {torch.int8: KIND_INT8, torch.float8_e4m3fn: KIND_FP8}.get(dtype, KIND_FLOAT)
    out = torch.empty(n, kp, dtype=dtype, device=qweight.device)
    block_n, chunks = 32, 4
    grid = (triton.cdiv(n, block_n), triton.cdiv(kp // sub, chunks))
    _unpack_kernel[grid](
        qweight,
        zeros if zeros is not None else qweight,
        out,
        n,
        k,
        kp,
        qweight.stride(0),
        zeros.stride(0) if zeros is not None else 0,
        GROUP=group_size,
        SUB=sub,
        HAS_ZEROS=zeros is not None,
        KIND=kind,
        BLOCK_N=block_n,
        CHUNKS=chunks,
        USE_ASM=qweight.is_cuda,
        num_warps=4,
    )
    return out


# The warp-specialized kernel's tiles where a swap config meets a layer `gluon_swap` does not serve (fp8
# activations, zero points, groups of 64).
WS_CONFIG = PrefillConfig(128, 128, 4, 6, ws=True)


def prefill_gemm(
    a: torch.Tensor,
    sx: torch.Tensor | None,
    sx_mode: int,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    bias: torch.Tensor | None,
    k: int,
    group_size: int,
    sub: int,
    out: torch.Tensor,
    cfg: PrefillConfig,
    channel_scales: torch.Tensor | None = None,
) -> torch.Tensor:
    """`out (M, N) = a @ unpack(W)^T` with group, activation scales and bias, chunk by chunk of
    columns. `a`: the `(M, Kp)` activation buffer of `quantize_activation_triton` (int8, fp8, or a
    float copy for W4A16); the weights are unpacked to `a`'s type. `channel_scales` (two-level scales) is read
    by the swap kernel only."""
    m, kp = a.shape
    n = qweight.shape[0]
    if m == 0 or n == 0:
        return out
    kind = {torch.int8: KIND_INT8, torch.float8_e4m3fn: KIND_FP8}.get(a.dtype, KIND_FLOAT)
    gluon_ok = gluon is not None and kind != KIND_FLOAT and _is_hopper(a)
    if cfg.swap and gluon_ok and direct(a, a.dtype == torch.int8, qweight, zeros, k, group_size):
        try:
            gluon_swap.swap_gemm(a, qweight, scales, sx, sx_mode, bias, out,
                                 group_size, cfg.block_m, cfg.num_stages, cfg.group_m, channel_scales, cfg.block_n)
            return out
        except Exception as e:  # noqa: BLE001 - a compile error of the experimental Gluon API: the ws kernel instead
            gluon_fallback.note_failure("swap", e)
    if cfg.swap:  # not served by the swap kernel: the warp-specialized one
        cfg = WS_CONFIG
    if cfg.ws and gluon_ok and gluon_prefill.gluon is not None and not gluon_fallback.failed("prefill"):
        try:
            return _ws_prefill(a, sx, sx_mode, qweight, scales, zeros, bias, k, group_size, sub, out, cfg)
        except Exception as e:  # noqa: BLE001 - a compile error of the experimental Gluon API: Triton instead
            gluon_fallback.note_failure("prefill", e)
    if cfg.ws:  # no Hopper / Gluon, or fp16 operands (W4A16): the Triton kernel's own tiles
        cfg = PrefillConfig()
    wgmma = cfg.wgmma and gluon_ok
    stages = _stages(a, cfg, sub, wgmma)
    for n0, n1 in _column_chunks(n, kp, a, cfg.block_n):
        b = unpack_weights(qweight[n0:n1], None if zeros is None else zeros[n0:n1], k, group_size, sub, a.dtype)
        o = out[:, n0:n1]
        if wgmma:
            _wgmma_gemm(a, b, scales[n0:n1], sx, sx_mode, bias[n0:n1] if bias is not None else None, o, group_size,
                        sub, cfg, stages)
        else:
            _gemm(a, b, scales[n0:n1], sx, sx_mode, bias[n0:n1] if bias is not None else None, o, k, group_size,
                  sub, kind, cfg, stages)
        del b  # one unpacked chunk alive at a time (the allocator reuses it in stream order)
    return out


def direct(t: torch.Tensor, int8: bool, qweight, zeros, k: int, group_size: int) -> bool:
    """Whether a swap `PrefillConfig` on `t`'s device takes the packed weights directly (`gluon_swap`: Hopper,
    int8 activations, symmetric weights, groups of 128 columns or more) — no unpack pass, so the prefill path
    pays from fewer rows (`triton_w4a8.PREFILL_MIN_M`)."""
    return (gluon is not None and _is_hopper(t) and gluon_swap.supported(int8, qweight, zeros, k, group_size)
            and not gluon_fallback.failed("swap"))


def _stages(a, cfg: PrefillConfig, sub: int, scale_rows: bool, extra: int = 0) -> int:
    """K steps the kernel's ring holds: stages x (A + B tiles (+ a row of scales, counted as fp32, for the
    Gluon kernels) + `extra` bytes) within what this GPU gives a block (227 KB on the H100, 99 KB on sm_86/89)."""
    per_stage = (cfg.block_m + cfg.block_n) * sub * a.element_size() + (cfg.block_n * 4 if scale_rows else 0) + extra
    return max(1, min(cfg.num_stages, (_shared_memory(a) - (8 << 10)) // per_stage))


def _column_chunks(n: int, kp: int, a, block_n: int):
    """`(n0, n1)` column ranges whose unpacked weights take at most CHUNK_BYTES each, equal in size and
    multiples of block_n (so column slices of the scales stay aligned)."""
    chunks = -(-n * kp * a.element_size() // CHUNK_BYTES)
    cols = -(-triton.cdiv(n, chunks) // block_n) * block_n
    return [(n0, min(n, n0 + cols)) for n0 in range(0, n, cols)]


def _ws_prefill(a, sx, sx_mode, qweight, scales, zeros, bias, k, group_size, sub, out, cfg: PrefillConfig):
    """The warp-specialized Gluon kernel (`gluon_prefill`): on the packed weights directly where it unpacks
    them itself (`fused_ok`), else after the unpack pass, chunk by chunk of columns."""
    rows = gluon_prefill.ws_rows(scales)
    if gluon_prefill.fused_ok(a, qweight, zeros, k):  # + the packed tile in shared memory; no pass, no chunks
        stages = _stages(a, cfg, sub, True, cfg.block_n * sub // 2)
        gluon_prefill.ws_gemm(a, qweight, rows, sx, sx_mode, bias, out, group_size, sub, cfg.block_n, stages, cfg.group_m,
                              fused=True)
        return out
    stages = _stages(a, cfg, sub, True)
    for n0, n1 in _column_chunks(qweight.shape[0], a.shape[1], a, cfg.block_n):
        b = unpack_weights(qweight[n0:n1], None if zeros is None else zeros[n0:n1], k, group_size, sub, a.dtype)
        gluon_prefill.ws_gemm(a, b, rows[:, n0:n1], sx, sx_mode, bias[n0:n1] if bias is not None else None,
                              out[:, n0:n1], group_size, sub, cfg.block_n, stages, cfg.group_m)
        del b  # one unpacked chunk alive at a time
    return out


def _gemm(a, b, scales, sx, sx_mode, bias, o, k, group_size, sub, kind, cfg: PrefillConfig, stages: int) -> None:
    m, kp = a.shape
    n = b.shape[0]
    grid = (triton.cdiv(m, cfg.block_m) * triton.cdiv(n, cfg.block_n),)
    _gemm_kernel[grid](
        a,
        b,
        scales,
        sx if sx is not None else scales,
        bias if bias is not None else scales,
        o,
        m,
        n,
        kp,
        a.stride(0),
        b.stride(0),
        scales.stride(0),
        o.stride(0),
        GROUP=group_size,
        SUB=sub,
        PER_CHANNEL=group_size == k,
        KIND=kind,
        SX_MODE=sx_mode,
        HAS_BIAS=bias is not None,
        BLOCK_M=cfg.block_m,
        BLOCK_N=cfg.block_n,
        GROUP_M=cfg.group_m,
        num_warps=cfg.num_warps,
        num_stages=stages,
    )


def _is_hopper(t: torch.Tensor) -> bool:
    """sm_90 exactly: wgmma does not exist on Blackwell (sm_100+), and ROCm reports other numbers."""
    return t.is_cuda and torch.version.hip is None and _capability(t.device.index)[0] == 9


def _shared_memory(t: torch.Tensor) -> int:
    """Shared memory a block may use on `t`'s GPU (bytes); 100 KB for the CPU interpreter."""
    return _shared_memory_of(t.device.index) if t.is_cuda else 100 << 10


@functools.cache
def _shared_memory_of(index: int) -> int:
    return torch.cuda.get_device_properties(index).shared_memory_per_block_optin


@functools.cache
def _capability(index: int) -> tuple[int, int]:
    """Compute capability of CUDA device `index` (cached: asked on every launch)."""
    return torch.cuda.get_device_capability(index)


if gluon is not None:
    try:

        @gluon.constexpr_function
        def _warps_per_cta(block_m, num_warps):
            """wgmma tiles warps as [4, 1] atoms (16 rows each): along M while rows remain, then N."""
            wm = 4
            while wm < num_warps and block_m > 16 * wm:
                wm *= 2
            return [wm, num_warps // wm]

        @gluon.jit
        def _load_step(a_desc, b_desc, s_desc, bars, a_smem, b_smem, s_smem, slot, step, off_m, off_n, n_steps,
                       GROUP: gl.constexpr):
            """TMA loads of K step `step` (if it exists) into ring slot `slot`, completing on its mbarrier:
            the activation and weight tiles and the row of group scales that the step uses."""
            SUB: gl.constexpr = a_desc.block_type.shape[1]
            ok = step < n_steps
            bar = bars.index(slot)
            mbarrier.expect(bar, a_desc.block_type.nbytes + b_desc.block_type.nbytes + s_desc.block_type.nbytes, pred=ok)
            tma.async_copy_global_to_shared(a_desc, [off_m, step * SUB], bar, a_smem.index(slot), pred=ok)
            tma.async_copy_global_to_shared(b_desc, [off_n, step * SUB], bar, b_smem.index(slot), pred=ok)
            tma.async_copy_global_to_shared(s_desc, [(step * SUB) // GROUP, off_n], bar, s_smem.index(slot), pred=ok)

        @gluon.jit
        def _as_fp32(part, IS_INT: gl.constexpr):
            """A step's partial sums as fp32: int32 exactly by the magic number (|part| < 2**22, see
            `_gemm_kernel`), fp32 (fp8 operands) as is."""
            if IS_INT:
                part = (part + 0x4B400000).to(gl.float32, bitcast=True) - 12582912.0
            return part

        @gluon.jit
        def _gemm_wgmma_kernel(
            a_desc,  # TMA descriptor of the (M, Kp) activation buffer, block (BLOCK_M, SUB)
            b_desc,  # TMA descriptor of the (N, Kp) unpacked weights, block (BLOCK_N, SUB)
            s_desc,  # TMA descriptor of the (groups, N) fp32 group scales (transposed), block (1, BLOCK_N)
            sx_ptr,  # activation scale: fp32 scalar or (M,), or dummy
            bias_ptr,  # (N,) or dummy
            out_ptr,  # (M, N) output dtype, row stride stride_om
            M,
            N,
            Kp,
            stride_om,
            GROUP: gl.constexpr,
            SX_MODE: gl.constexpr,
            HAS_BIAS: gl.constexpr,
            GROUP_M: gl.constexpr,
            STAGES: gl.constexpr,
            num_warps: gl.constexpr,
        ):
            """`_gemm_kernel` for Hopper, written out in Gluon: a STAGES-deep ring of TMA loads (one
            mbarrier per slot; each stage brings its activation and weight tiles and its row of group
            scales, so no scale pointers are held in registers) feeding wgmma, the group scaling
            (int32 -> fp32, times the group scale) into the fp32 accumulator after each step."""
            BLOCK_M: gl.constexpr = a_desc.block_type.shape[0]
            BLOCK_N: gl.constexpr = b_desc.block_type.shape[0]
            SUB: gl.constexpr = a_desc.block_type.shape[1]
            IS_INT: gl.constexpr = a_desc.dtype == gl.int8
            pid = gl.program_id(0)
            num_pid_m = (M + BLOCK_M - 1) // BLOCK_M
            num_pid_n = (N + BLOCK_N - 1) // BLOCK_N
            num_in_group = GROUP_M * num_pid_n
            first_m = (pid // num_in_group) * GROUP_M
            group_rows = gl.minimum(num_pid_m - first_m, GROUP_M)
            off_m = (first_m + ((pid % num_in_group) % group_rows)) * BLOCK_M
            off_n = ((pid % num_in_group) // group_rows) * BLOCK_N

            warps: gl.constexpr = _warps_per_cta(BLOCK_M, num_warps)
            mma: gl.constexpr = gl.NVMMADistributedLayout(
                version=[3, 0], warps_per_cta=warps, instr_shape=[16, BLOCK_N // warps[1], 256 // a_desc.dtype.primitive_bitwidth]
            )
            a_smem = gl.allocate_shared_memory(a_desc.dtype, [STAGES, BLOCK_M, SUB], a_desc.layout)
            b_smem = gl.allocate_shared_memory(b_desc.dtype, [STAGES, BLOCK_N, SUB], b_desc.layout)
            s_smem = gl.allocate_shared_memory(s_desc.dtype, [STAGES, 1, BLOCK_N], s_desc.layout)
            bars = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
            for i in gl.static_range(STAGES):
                mbarrier.init(bars.index(i), count=1)
            n_steps = Kp // SUB
            for i in gl.static_range(STAGES):
                _load_step(a_desc, b_desc, s_desc, bars, a_smem, b_smem, s_smem, i, i, off_m, off_n, n_steps, GROUP)

            # Each step waits for its own wgmma before scaling its partial sums; the other warpgroup and
            # the other CTAs on the SM fill the gap. (Issuing the next step's wgmma first -- with a second
            # partial tile, or per column half -- measured slower: runs 20-24, benchmarks/GPU_NOTES.md.)
            # wgmma writes over its accumulator operand (ignored: use_acc=False): passing the tile consumed
            # the step before recycles those registers instead of holding a zero tile.
            acc = gl.zeros([BLOCK_M, BLOCK_N], gl.float32, mma)
            part = gl.zeros([BLOCK_M, BLOCK_N], gl.int32 if IS_INT else gl.float32, mma)
            for step in range(0, n_steps):
                slot = step % STAGES
                mbarrier.wait(bars.index(slot), (step // STAGES) & 1)
                d = warpgroup_mma(a_smem.index(slot), b_smem.index(slot).permute((1, 0)), part, use_acc=False,
                                  is_async=True)
                s_cur = s_smem.index(slot).load(mma)
                part = warpgroup_mma_wait(num_outstanding=0, deps=(d,))
                gl.thread_barrier()  # every warp is done with this slot (MMA and scales) before its refill
                _load_step(a_desc, b_desc, s_desc, bars, a_smem, b_smem, s_smem, slot, step + STAGES, off_m, off_n,
                           n_steps, GROUP)
                acc += _as_fp32(part, IS_INT) * s_cur
            for i in gl.static_range(STAGES):
                mbarrier.invalidate(bars.index(i))
            offs_m = off_m + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, mma))
            offs_n = off_n + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, mma))
            _epilogue(acc, offs_m, offs_n, sx_ptr, bias_ptr, out_ptr, M, N, stride_om, SX_MODE, HAS_BIAS)

        @gluon.jit
        def _epilogue(acc, offs_m, offs_n, sx_ptr, bias_ptr, out_ptr, M, N, stride_om, SX_MODE: gl.constexpr,
                      HAS_BIAS: gl.constexpr):
            """Activation scale, bias and the store of one fp32 tile (rows offs_m, columns offs_n)."""
            if SX_MODE == 1:
                acc = acc * gl.load(sx_ptr).to(gl.float32)
            elif SX_MODE == 2:
                acc = acc * gl.load(sx_ptr + offs_m, mask=offs_m < M, other=0.0).to(gl.float32)[:, None]
            if HAS_BIAS:
                acc = acc + gl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0).to(gl.float32)[None, :]
            out = out_ptr + offs_m.to(gl.int64)[:, None] * stride_om + offs_n[None, :]
            gl.store(out, acc.to(out_ptr.dtype.element_ty), mask=(offs_m < M)[:, None] & (offs_n < N)[None, :])
    except Exception:  # pragma: no cover - a Gluon API this code does not know: the Triton kernel only
        gluon = None


def _wgmma_gemm(a, b, scales, sx, sx_mode, bias, out, group_size, sub, cfg: PrefillConfig, stages: int) -> None:
    m, kp = a.shape
    n = b.shape[0]
    dt = gl.int8 if a.dtype == torch.int8 else gl.float8e4nv
    a_desc = gluon_prefill.tma_desc(a, (cfg.block_m, sub), dt)
    b_desc = gluon_prefill.tma_desc(b, (cfg.block_n, sub), dt)
    # group scales as fp32 (groups, N) rows that TMA brings with each K step
    st = gluon_prefill.scale_rows(scales, torch.float32)
    s_desc = gluon_prefill.scale_desc(st, n, cfg.block_n)
    grid = (triton.cdiv(m, cfg.block_m) * triton.cdiv(n, cfg.block_n),)
    _gemm_wgmma_kernel[grid](
        a_desc,
        b_desc,
        s_desc,
        sx if sx is not None else st,
        bias if bias is not None else st,
        out,
        m,
        n,
        kp,
        out.stride(0),
        GROUP=group_size,
        SX_MODE=sx_mode,
        HAS_BIAS=bias is not None,
        GROUP_M=cfg.group_m,
        STAGES=stages,
        num_warps=cfg.num_warps,
        **({"maxnreg": cfg.maxnreg} if cfg.maxnreg else {}),
    )


# the warp-specialized kernel uses this module's Gluon helpers (`_as_fp32`, `_epilogue`): imported last
from fptq.kernels import gluon_fallback, gluon_prefill, gluon_swap  # noqa: E402

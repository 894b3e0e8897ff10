"""Decode GEMM (M <= 16, int8 activations) for Hopper: persistent and warp-specialized, the weights streamed
through one deep TMA ring per SM ("stream-K").

`gluon_decode._decode_tma_kernel` launches a program per (column tile, K slice), each with its own short ring:
every program pays its prologue (barriers, scale staging, the first loads' full memory latency) and epilogue,
and the DRAM sees the programs' bursts (runs 32-35: 55-65 % of the bandwidth on the largest layers, where
cuBLAS fp16 streams at ~87 % with one CTA per SM and a deep pipeline). Here one CTA per SM walks a contiguous
range of the layer's (column tile, K step) iterations in tile-major order, so a tile's K steps follow each other
and the ring never drains between tiles: a loader warp keeps STAGES K steps in flight (the packed weight tile,
`BLOCK_N x SUB / 2` bytes, and the step's two activation tiles, rows past M zero-filled by TMA), the default
partition (one warpgroup) reads each slot into `mma.sync` operand registers exactly as `gluon_decode` does (the
same in-lane relabelling of K, the same unpacking) and releases it. A tile whose K steps all fall in one CTA's
range is stored directly; a tile split between consecutive CTAs (at most two partial segments per CTA: its
first and its last) is summed by the last contributor to arrive, in CTA order (deterministic), through a small
fp32 workspace and one arrival counter per tile (zeroed by the activation-quantization kernel, reset by the
summing CTA, as in `triton_w4a8._split_k_workspace`).

The group scales are read by the consumers from QuantLinear's (N, groups) scales (one 2-byte load per column and
step, requested before the slot's wait; consecutive groups of a row share a sector, so L1 serves most of them).
Programmatic dependent launch as in `gluon_decode`: the loader requests the first STAGES weight tiles before
waiting for the quantization kernel, then the activations.

Scope: int8 activations in the permuted buffer, symmetric weights (no zero points), any group size of
`triton_w4a8` (a step never straddles a group: SUB = `_sub_chunk(group_size)`), M <= 16.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

try:
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.ampere import mma_v2
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    from fptq.kernels import gluon_decode
    from fptq.kernels.gluon_decode import _a_layout, _a_to_mma_order, _b_to_mma_order, _unpack
except Exception:  # pragma: no cover - no Triton, or an older / changed Gluon
    gluon = None


@dataclass(frozen=True)
class StreamConfig:
    """Launch parameters of `_stream_kernel`: weight rows per tile, ring slots (at most: fewer where shared memory
    is smaller), CTAs per SM, registers per thread at most (None: the compiler's choice, which fits one CTA per
    SM)."""

    block_n: int = 128
    stages: int = 16
    ctas_per_sm: int = 1
    maxnreg: int | None = None


if gluon is not None:
    try:

        @gluon.jit
        def _w_coords(i, steps, BLOCK_N: gl.constexpr, HALF: gl.constexpr, TILED: gl.constexpr):
            """TMA coordinates of iteration i's weight tile: in QuantLinear's (N, K / 2) layout, or (TILED) in the
            tile-contiguous copy of `tiled_weights` (each tile's BLOCK_N x HALF bytes one contiguous block, read as
            BLOCK_N / 2 rows of 2 HALF bytes: the same bytes in shared memory, a wider TMA box)."""
            if TILED:
                return (i * (BLOCK_N // 2), 0)
            return ((i // steps) * BLOCK_N, (i % steps) * HALF)

        @gluon.jit
        def _loader(w_desc, a_desc, w_smem, a_smem, ready, empty, lo, hi, steps, PDL: gl.constexpr, TILED: gl.constexpr):
            """One warp: the iterations [lo, hi) into the ring, the first STAGES weight tiles before the PDL wait."""
            STAGES: gl.constexpr = w_smem.shape[0]
            HALF: gl.constexpr = a_desc.block_type.shape[1]
            BLOCK_N: gl.constexpr = w_desc.block_type.shape[0] * (2 if TILED else 1)
            nbytes: gl.constexpr = w_desc.block_type.nbytes + 2 * a_desc.block_type.nbytes
            first = gl.minimum(hi - lo, STAGES)
            for j in range(0, first):  # (fresh slots: nothing to wait for)
                i = lo + j
                mbarrier.expect(ready.index(j), nbytes)
                tma.async_copy_global_to_shared(w_desc, _w_coords(i, steps, BLOCK_N, HALF, TILED), ready.index(j),
                                                w_smem.index(j))
            if PDL:  # the activations once the quantization kernel has written them
                gl.inline_asm_elementwise("griddepcontrol.wait; // dummy $0", "=r", [], dtype=gl.int32, is_pure=False,
                                          pack=1)
            for j in range(0, first):
                k0 = ((lo + j) % steps) * 2 * HALF
                tma.async_copy_global_to_shared(a_desc, [0, k0], ready.index(j), a_smem.index(2 * j))
                tma.async_copy_global_to_shared(a_desc, [0, k0 + HALF], ready.index(j), a_smem.index(2 * j + 1))
            for j in range(first, hi - lo):
                i = lo + j
                slot = j % STAGES
                bar = ready.index(slot)
                mbarrier.wait(empty.index(slot), ((j // STAGES) & 1) ^ 1)
                mbarrier.expect(bar, nbytes)
                k0 = (i % steps) * 2 * HALF
                tma.async_copy_global_to_shared(w_desc, _w_coords(i, steps, BLOCK_N, HALF, TILED), bar, w_smem.index(slot))
                tma.async_copy_global_to_shared(a_desc, [0, k0], bar, a_smem.index(2 * slot))
                tma.async_copy_global_to_shared(a_desc, [0, k0 + HALF], bar, a_smem.index(2 * slot + 1))

        @gluon.jit
        def _first_cta(x, T, G):
            """The CTA whose range [c T // G, (c + 1) T // G) holds iteration x."""
            return ((x + 1) * G - 1) // T

        @gluon.jit
        def _consumer(w_smem, a_smem, ready, empty, scales_ptr, sx_ptr, bias_ptr, out_ptr, ws_ptr, cnt_ptr, lo, hi,
                      steps, M, N, stride_sn, stride_om, T, G, GROUP: gl.constexpr, SX_MODE: gl.constexpr,
                      HAS_BIAS: gl.constexpr, PDL: gl.constexpr, NW: gl.constexpr):
            """The default partition (NW warps): per column tile of the range, its K steps from the ring (two
            `mma.sync` per 32 K values, group scale in fp32), then the tile stored or its partial summed."""
            STAGES: gl.constexpr = w_smem.shape[0]
            BLOCK_N: gl.constexpr = w_smem.shape[1]
            HALF: gl.constexpr = w_smem.shape[2]
            SUB: gl.constexpr = 2 * HALF
            mma: gl.constexpr = gl.NVMMADistributedLayout(version=[2, 0], warps_per_cta=[1, NW], instr_shape=[16, 8])
            a_dot: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma, k_width=4)
            b_dot: gl.constexpr = gl.DotOperandLayout(operand_index=1, parent=mma, k_width=4)
            w_rows: gl.constexpr = gl.BlockedLayout([1, HALF // 4], [8, 4], [NW, 1], [1, 0])
            a_l: gl.constexpr = _a_layout(HALF, NW)
            if PDL:  # (the per-token scales and the counters below are the quantization kernel's)
                gl.inline_asm_elementwise("griddepcontrol.wait; // dummy $0", "=r", [], dtype=gl.int32, is_pure=False,
                                          pack=1)
            c = gl.program_id(0)
            offs_m = gl.arange(0, 16, layout=gl.SliceLayout(1, mma))
            row_ok = offs_m < M
            offs_t = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, mma))
            zero_i = gl.zeros([16, BLOCK_N], gl.int32, mma)
            j = 0
            for t in range(lo // steps, (hi - 1) // steps + 1):
                k_lo = gl.maximum(lo - t * steps, 0)
                k_hi = gl.minimum(hi - t * steps, steps)
                offs_n = t * BLOCK_N + offs_t
                srow = scales_ptr + gl.where(offs_n < N, offs_n, 0).to(gl.int64) * stride_sn
                acc = gl.zeros([16, BLOCK_N], gl.float32, mma)
                for ks in range(k_lo, k_hi):
                    slot = j % STAGES
                    s_w = gl.load(srow + (ks * SUB) // GROUP).to(gl.float32)  # (requested before the wait)
                    mbarrier.wait(ready.index(slot), (j // STAGES) & 1)
                    wb = gl.permute(w_smem.index(slot).load(w_rows), (1, 0))  # (HALF, BLOCK_N)
                    a_even = a_smem.index(2 * slot).load(a_l)
                    a_odd = a_smem.index(2 * slot + 1).load(a_l)
                    mbarrier.arrive(empty.index(slot), count=1)  # (after the partition barrier Triton puts before it)
                    w_even = gl.convert_layout(_b_to_mma_order(_unpack(wb, wb, False, False), HALF, BLOCK_N), b_dot,
                                               assert_trivial=True)
                    w_odd = gl.convert_layout(_b_to_mma_order(_unpack(wb, wb, True, False), HALF, BLOCK_N), b_dot,
                                              assert_trivial=True)
                    ae = gl.convert_layout(_a_to_mma_order(a_even, HALF), a_dot, assert_trivial=True)
                    ao = gl.convert_layout(_a_to_mma_order(a_odd, HALF), a_dot, assert_trivial=True)
                    part = mma_v2(ao, w_odd, mma_v2(ae, w_even, zero_i))
                    part_f = (part + 0x4B400000).to(gl.float32, bitcast=True) - 12582912.0
                    acc = acc + part_f * s_w[None, :]
                    j += 1
                if SX_MODE == 1:
                    acc = acc * gl.load(sx_ptr).to(gl.float32)
                elif SX_MODE == 2:
                    acc = acc * gl.load(sx_ptr + offs_m, mask=row_ok, other=0.0).to(gl.float32)[:, None]
                # A tile split between CTAs: this CTA's partial into its workspace slot (0: the tile its range starts
                # in, 1: the one it ends in), then the last contributor to arrive sums all of them in CTA order.
                # Branch-free (predicated): the stores and loads run under masks.
                whole = (k_lo == 0) & (k_hi == steps)
                split = (k_lo > 0) | (k_hi < steps)
                tile_off = offs_m[:, None] * BLOCK_N + offs_t[None, :]
                mask = row_ok[:, None] & (offs_n < N)[None, :]
                mine = ws_ptr + ((c * 2 + (t != lo // steps).to(gl.int32)) * M * BLOCK_N)
                gl.store(mine + tile_off, acc, mask=mask & split)
                gl.thread_barrier()  # every thread's partial is written before the release below
                c_first = _first_cta(t * steps, T, G)
                c_last = _first_cta(t * steps + steps - 1, T, G)
                arrived = gl.atomic_add(cnt_ptr + t, 1, mask=split, sem="acq_rel", scope="gpu")
                last = split & (arrived == c_last - c_first)
                total = gl.zeros([16, BLOCK_N], gl.float32, mma)
                for cc in range(c_first, c_last + 1):
                    slot_cc = (cc * 2 + (t != ((cc * T) // G) // steps).to(gl.int32)) * M * BLOCK_N
                    total += gl.load(ws_ptr + slot_cc + tile_off, mask=mask & last, other=0.0, cache_modifier=".cg")
                gl.atomic_xchg(cnt_ptr + t, 0, mask=last)
                acc = gl.where(whole, acc, total)
                _store_out_masked(acc, bias_ptr, out_ptr, offs_m, offs_n, M, N, stride_om, HAS_BIAS, whole | last)

        @gluon.jit
        def _store_out_masked(acc, bias_ptr, out_ptr, offs_m, offs_n, M, N, stride_om, HAS_BIAS: gl.constexpr, ok):
            """`gluon_decode._store_out` under a scalar predicate."""
            if HAS_BIAS:
                acc = acc + gl.load(bias_ptr + offs_n, mask=(offs_n < N) & ok, other=0.0).to(gl.float32)[None, :]
            out = out_ptr + offs_m.to(gl.int64)[:, None] * stride_om + offs_n[None, :]
            gl.store(out, acc.to(out_ptr.dtype.element_ty), mask=(offs_m < M)[:, None] & (offs_n < N)[None, :] & ok)

        @gluon.jit
        def _stream_kernel(
            w_desc,  # TMA descriptor of qweight (N, K // 2) uint8, block (BLOCK_N, HALF), unswizzled
            a_desc,  # TMA descriptor of the activation buffer (M, Kp) int8, block (16, HALF), unswizzled
            scales_ptr,
            sx_ptr,
            bias_ptr,
            out_ptr,
            ws_ptr,  # fp32 (2 G, M, BLOCK_N): each CTA's partial tiles
            cnt_ptr,  # int32 (tiles,): arrivals per tile, zero on entry, left zero
            M,
            N,
            steps,  # K steps of SUB columns
            stride_sn,
            stride_om,
            GROUP: gl.constexpr,
            SX_MODE: gl.constexpr,
            HAS_BIAS: gl.constexpr,
            STAGES: gl.constexpr,
            PDL: gl.constexpr,
            TILED: gl.constexpr,  # w_desc over `tiled_weights` (tile-contiguous) instead of the (N, K / 2) weights
            num_warps: gl.constexpr,
        ):
            """Persistent: CTA c walks iterations [c T // G, (c + 1) T // G) of the T = tiles x steps (tile-major)."""
            HALF: gl.constexpr = a_desc.block_type.shape[1]
            BLOCK_N: gl.constexpr = w_desc.block_type.shape[0] * (2 if TILED else 1)
            T = ((N + BLOCK_N - 1) // BLOCK_N) * steps
            G = gl.num_programs(0)
            c = gl.program_id(0)
            lo = (c * T) // G
            hi = ((c + 1) * T) // G
            w_smem = gl.allocate_shared_memory(gl.uint8, [STAGES] + w_desc.block_type.shape, w_desc.layout)
            w_rows = w_smem._reinterpret(gl.uint8, [STAGES, BLOCK_N, HALF], w_desc.layout)  # (TILED: the same bytes)
            a_smem = gl.allocate_shared_memory(gl.int8, [2 * STAGES, 16, HALF], a_desc.layout)
            ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
            empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
            for i in gl.static_range(STAGES):
                mbarrier.init(ready.index(i), count=1)
                mbarrier.init(empty.index(i), count=1)
            gl.warp_specialize(
                [(_consumer, (w_rows, a_smem, ready, empty, scales_ptr, sx_ptr, bias_ptr, out_ptr, ws_ptr, cnt_ptr, lo, hi,
                              steps, M, N, stride_sn, stride_om, T, G, GROUP, SX_MODE, HAS_BIAS, PDL, num_warps)),
                 (_loader, (w_desc, a_desc, w_smem, a_smem, ready, empty, lo, hi, steps, PDL, TILED))],
                [1], [24])

    except Exception:  # pragma: no cover - a Gluon API this code does not know
        gluon = None


def supported(a: torch.Tensor, zeros) -> bool:
    """Whether `stream_gemm` takes these operands (beyond `triton_w4a8._use_tma`'s TMA conditions): int8
    activations, no zero points, a working Gluon."""
    return gluon is not None and zeros is None and a.dtype == torch.int8


def grid_size(m: int, n: int, k: int, sub: int, cfg: StreamConfig, sms: int) -> int:
    """CTAs of one launch: one per SM (times `cfg.ctas_per_sm`), at most one per iteration."""
    return max(1, min(-(-n // cfg.block_n) * -(-k // sub), sms * cfg.ctas_per_sm))


def workspace(m: int, n: int, grid: int, cfg: StreamConfig, device) -> tuple[torch.Tensor, torch.Tensor]:
    """`(partials, counters)`: fp32 (2 grid, m, block_n) partial tiles and one int32 arrival counter per column
    tile, in one fresh allocation (the counters zeroed by the quantization kernel before the GEMM)."""
    tiles = -(-n // cfg.block_n)
    size = 2 * grid * m * cfg.block_n
    buf = torch.empty(size + tiles, dtype=torch.float32, device=device)
    return buf[:size], buf[size:].view(torch.int32)


def tiled_weights(qweight: torch.Tensor, k: int, block_n: int, sub: int) -> torch.Tensor:
    """The packed (N, K / 2) weights rearranged so that each (block_n rows x sub / 2 bytes) tile of the stream order
    (tile-major, then K step) is one contiguous block: (tiles * steps * block_n, sub / 2), rows and K padded."""
    n, half = qweight.shape[0], sub // 2
    tiles, steps = -(-n // block_n), -(-k // sub)
    w = torch.nn.functional.pad(qweight, (0, steps * half - qweight.shape[1], 0, tiles * block_n - n))
    return w.view(tiles, block_n, steps, half).permute(0, 2, 1, 3).reshape(tiles * steps * block_n, half).contiguous()


def stream_gemm(a, qweight, scales, sx, sx_mode: int, bias, out, k: int, group_size: int, sub: int,
                cfg: StreamConfig, grid: int, ws: tuple, pdl: bool, smem: int, tiled: torch.Tensor | None = None,
                n: int | None = None) -> torch.Tensor:
    """`out = a @ unpack(qweight)^T` with group, activation scales and bias (the semantics of
    `gluon_decode._decode_tma_kernel`) by `_stream_kernel`: `a` the (M <= 16, Kp) permuted int8 buffer, `ws` from
    `workspace(...)` (counters zero), `smem` the GPU's shared memory per block (bytes)."""
    m, n = a.shape[0], n or qweight.shape[0]
    half = sub // 2
    per_stage = cfg.block_n * half + 2 * 16 * half
    stages = max(2, min(cfg.stages, (smem // cfg.ctas_per_sm - (4 << 10)) // per_stage))
    w_desc, a_desc = gluon_decode.tma_descriptors(a, qweight, cfg.block_n, sub)
    if tiled is not None:  # (unswizzled: the wide box lands row-major, byte for byte the (block_n, sub / 2) tile)
        w_desc = TensorDescriptor.from_tensor(tiled.view(-1, sub), [cfg.block_n // 2, sub], w_desc.layout)
    dummy = scales
    _stream_kernel[(grid,)](
        w_desc, a_desc, scales, sx if sx is not None else dummy, bias if bias is not None else dummy, out, ws[0], ws[1],
        m, n, -(-k // sub), scales.stride(0), out.stride(0),
        GROUP=group_size, SX_MODE=sx_mode, HAS_BIAS=bias is not None, STAGES=stages, PDL=pdl, TILED=tiled is not None,
        num_warps=4,
        **({"launch_pdl": True} if pdl else {}), **({"maxnreg": cfg.maxnreg} if cfg.maxnreg else {}),
    )
    return out

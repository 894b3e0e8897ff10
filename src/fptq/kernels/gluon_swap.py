"""Prefill GEMM for Hopper with the packed int4 weights as the register operand of wgmma ("swap A/B").

`gluon_prefill` multiplies the activations (wgmma A, from shared memory) by an unpacked int8 copy of the
weights (B) that a separate pass writes before every call (1.5 bytes per weight of memory traffic, ~3.5 ms of
a 51 ms compiled 2048-token prefill of the LLaMA-2-7B shape). Here the output is computed transposed,
`C^T = W X^T`: each consumer warpgroup loads its 64 rows of the *packed* weight tile from shared memory
(QuantLinear's own format, brought by TMA: half the bytes), unpacks them in registers (the LOP3 `code - 8`
of `triton_prefill`) and relabels them — a join / permute / reshape that moves no data — into the A
dot-operand layout of an int8 wgmma whose B operand is the activation tile. The relabelling puts each
128-column step in the order of the kernels' activation buffer (even columns, then odd), so the buffer of
`quantize_activation_triton` is used as it is. The group scales run along the accumulator's rows: two per
thread and step instead of 32. Two K steps per ring slot (`K_PER_SLOT`); the second step's weights are
unpacked while the first step's wgmma runs, so the first step's scaling runs under the second's wgmma
(`PREFETCH_WEIGHTS`); groups of 256 are scaled once (the wgmma adds the second step into the first's int32
sums) and per-channel weights once per tile (one int32 sum over K; `GROUP_SUMS`). Scaling each step under the
same warpgroup's next wgmma across slots (`LAG_SCALING`, one step a slot) gained nothing.

Measured (H100, runs 78-79 and 82 of benchmarks/GPU_NOTES.md): the kernel alone within -5 ... +4 % of the
warp-specialized `gluon_prefill` kernel (run 78; with PREFETCH_WEIGHTS, run 82: -5 ... +2 % at groups of 128,
per channel with GROUP_SUMS 7-25 % faster than it), the op (without its unpack pass) 2-13 % faster at
M = 2048-4096, a compiled 2048-token LLaMA-2-7B-shaped prefill 51.9 -> 49.8 ms (run 79). It is the installed prefill kernel for the
layers it supports (`triton_w4a8.PREFILL_CONFIGS`), from 256 rows on (runs 81 / 87; from 64 rows where its tiles
fill half the SMs, `triton_w4a8.SWAP_MEDIUM`, runs 89-90), with 64- or 128-token tiles by the rounds of tiles over
the SMs (`triton_w4a8.swap_tile`, run 88); up to DIRECT_SCALES rows the consumers read the stored group scales
themselves (run 89). With two-level scales (`fptq.primitives`, given as `channel_scales`; TL) the unpacking
multiplies the codes by the integer group scales, so a whole row is one int32 sum over K as per channel: at 4096 rows
×1.25-1.70 of cuBLAS fp16 where fp16 group scales get ×0.99-1.21 (run 99).

Round 14 (runs 116-125): 256-row weight tiles (WIDE, `_consumer_wide`: two 64-row blocks per consumer warpgroup,
two wgmmas per K step against one activation tile, so each activation byte brought from L2 serves twice the rows)
for layers whose sums are one int32 per output, 2-9 % faster where their rounds of tiles fit (`triton_w4a8.SWAP_WIDE`);
a stream-K schedule (SK, `STREAM_K`) for few, badly rounded tiles.

Round 18 (runs 163-168): what bounds it. With ops back to back the card runs at its power cap (cuBLAS fp16 at ~1400
MHz, this kernel at ~1750, both ~690 W); per cycle (Nsight Compute, one launch) the tensor pipe is 44 % busy with shared
memory and L2 at ~45 % (cuBLAS fp16: 85 % / 93 %), a third of the consumers' stall samples on their wgmma waits.
Two-level scales below TL_AHEAD columns now chain a slot's two wgmmas (`CHAIN_STEPS`, 1.5-5 %). Round 19 (runs
169-180): the loader warp copies each slot's group scales into shared memory (`LOADER_SCALES`): 2-15 % faster.

Scope: int8 activations, symmetric weights (no zero points), groups that are a multiple of 128 columns
(per-channel included), K a multiple of 128; otherwise `triton_prefill` takes its other paths.
"""

import functools  # (no `from __future__ import annotations`: the aggregate below reads its annotations as types)
import math
import types

import torch

try:
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.ampere import async_copy
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma, warpgroup_mma_wait
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor
    from triton.language.core import _aggregate as aggregate

    from fptq.kernels import gluon_prefill, launch, scratch
    from fptq.kernels.gluon_prefill import _tile, gdc_launch_dependents, gdc_wait, scale_desc, tma_desc
    from fptq.kernels.triton_prefill import UNPACK_HI, UNPACK_HI_TL, UNPACK_LO, UNPACK_LO_TL, _as_fp32, _epilogue, _shared_memory
except Exception:  # pragma: no cover - no Triton, or an older / changed Gluon
    gluon = None

ROWS = 64  # weight rows per consumer warpgroup (one wgmma M)
SUB = 128  # K columns per step (one permuted chunk of the activation buffer; 64 packed bytes a row)
LAG_SCALING = False  # each step's scaling under the next step's wgmma (else right after its own; run 78: no gain;
# one K step a slot only)
K_PER_SLOT = 2  # K steps per ring slot where the step count is even (run 78: 5-15 % faster than one)
# One scaling per group of 256 (two steps a slot) and one int32 sum over K per channel, instead of a scaling
# per 128-column step (run 82: per channel the kernel takes 23-25 % less time at M = 2048).
GROUP_SUMS = True
# A slot's second K step's weights loaded and unpacked while the first step's wgmma runs (ptxas otherwise
# places them after its wait; run 82: groups of 128, kernel 1-10 % faster, 7 of 8 shape / M pairs).
PREFETCH_WEIGHTS = True
# Up to this many activation rows the consumers read their two rows' group scales from QuantLinear's (N, groups)
# scales in global memory (L2), one load per row and group, requested before the slot's wait (per channel once per
# tile), instead of fp32 scale rows that a copy kernel writes before every call (`gluon_prefill.scale_rows`) and the
# loader brings by TMA (0: never; not with the lagged schedule, at most two K steps a slot). Run 89 (ops, H100): at
# 256 rows 0-18 % faster (the copy is a few µs of a 20-180 µs op), at 1024 -3 … +6 %, at 4096 3-10 % slower.
DIRECT_SCALES = 512
# Two-level scales with the group scales read per slot (TL 1 / 4, not a slot ahead): a slot's two K steps' wgmmas
# chained on the one int32 accumulator, the second issued without waiting for the first (the slot drains once, before
# its release). Nsight Compute (runs 166-167, 13B q/k/v/o at 1024 rows): the tensor pipe 44 % busy, a third of the
# consumers' stall samples on the wgmma waits, half of them on the wait between a slot's two steps. Run 168 (GEMM
# alone, H100): TL 1 layers 1.5-5 % faster (7B q/k/v/o at 1024 rows 33.8 -> 32.3 µs, 13B q/k/v/o 61.9 -> 60.7, 13B
# gate/up at 4096 513.5 -> 489.1); with TL 2 (K >= TL_AHEAD) 1-21 % slower (7B down 75.8 -> 92.1), so not there; per
# channel not measured, so not there either.
CHAIN_STEPS = True
# Two-level scales (`fptq.primitives`; QuantLinear's `channel_scales`): the codes are multiplied by the integer
# group scales s2 in the unpacking, so the wgmma sums a whole row in int32 as per channel (TL; False: scaled per
# group as any other groups).
USE_TWO_LEVEL = True
# TL where the loader does not copy the scales (LOADER_SCALES: groups of 256, an odd number of K steps): each slot's
# group scales requested one slot ahead (TL 2) from this K on, else before the slot's own wait (TL 1, as DS). Run 98
# (ops, H100): ahead, long K 10-14 % faster (7B down at 1024 rows 108.4 -> 93.8 µs, 70B down 463.1 -> 418.3: per-channel
# speed), K of 4096 / 5120 0-4 % slower (7B gate+up at 4096 rows 672.6 -> 692.7).
TL_AHEAD = 8192
# TL with groups of 128 and two K steps a slot (the default format): the loader warp copies each slot's group scales
# (one int32 per weight row: the slot's two fp16 groups) into shared memory with cp.async, on the slot's ready barrier,
# STAGES slots ahead of the consumers, which read them there after the slot's wait (TL 4) — no L2 latency on the
# consumers' path (requested right before the wait, TL 1, it held 10 % of their stall samples: Nsight Compute, run
# 167), no scale registers live across the unpacking (requested a slot ahead, TL 2, or under the previous slot's
# wgmmas, they cost 256-row tiles 9-20 %: runs 168 / 171). Run 175 (GEMM alone, H100, all eight shapes at 1024 / 4096
# rows, bit-identical): 2-4 % faster below 8192 columns (13B q/k/v/o at 1024 rows 59.0 -> 57.2 µs: ×1.24 -> ×1.28
# fp16), 9-15 % from 8192 on against TL 2 (70B gate/up at 4096 rows 1657.8 -> 1424.7, 7B down at 1024 76.4 -> 68.3).
LOADER_SCALES = True
# Stream-K (SK): where whole tiles would leave much of the SMs' last round idle, every program takes an equal share
# of all tiles' K slots instead (`_share`), a tile split between two programs joined through a workspace
# (`_stream_k_fixup`). (least idle share of the last round, most rounds of tiles) where it is used: `stream_k`.
# Runs 116 / 119 (ops, H100): it pays only with few, badly balanced rounds — at 512 rows (160 tiles, 1.21 rounds)
# 13B q/k/v/o 46.7 -> 42.0 µs, 13B down (5120 x 13824) 108.7 -> 88.0; at 1024 (2.42 rounds) q/k/v/o +2-3 % but 13B
# down -6 %; elsewhere it lost 1-47 %: under the card's power cap a partly idle last round runs at a higher clock
# (run 163), so balance buys little, and stream-K order spreads the programs over the whole output (70B down: its
# weights re-read from DRAM; benchmarks/GPU_NOTES.md).
# The program with a tile's first slots waits for the one with its last slots (a higher program id, which hands them
# over first thing): it assumes every program gets an SM in time — one per SM, as the grid is sized, with no other
# kernel holding SMs indefinitely.
STREAM_K: tuple[float, float] | None = (0.5, 1.5)
# The loader lets the next kernel launched as a programmatic dependent (the next op's quantization kernel, QUANT_PDL)
# be placed once it has requested its last K slots (`gdc_launch_dependents`), not only when the grid is done; that
# kernel still waits for the whole grid and its writes before touching memory (session 32, as the decode kernel's
# TRIGGER 2). Off: run 277 (H100, ops at 256 / 1024 rows, two alternated rounds) found no consistent gain — the
# persistent grid leaves no room for the next grid's programs — and a loss at 256 rows on the 4096-column layers (7B
# q/k/v/o 16.4-16.5 -> 17.4-17.6 µs, 7B gate/up 37.1-38.8 -> 38.9-39.2); at 1024 rows mixed within the rounds' spread
# (70B gate/up 379.5-388.2 -> 375.0-375.5, 70B down 370.4-375.8 -> 372.6-382.8); the two settings' scores tie. The chain
# test covers it on.
TRIGGER = False
_ROWS = gl.constexpr(ROWS) if gluon is not None else None
_SUB = gl.constexpr(SUB) if gluon is not None else None

if gluon is not None:
    try:

        @aggregate
        class _Args:
            """What every partition gets (see `gluon_prefill._Args`)."""

            x_desc: tma.tensor_descriptor
            w_desc: tma.tensor_descriptor
            s_desc: tma.tensor_descriptor
            x_smem: gl.shared_memory_descriptor
            w_smem: gl.shared_memory_descriptor
            s_smem: gl.shared_memory_descriptor
            ready: gl.shared_memory_descriptor
            empty: gl.shared_memory_descriptor
            sx_ptr: gl.tensor
            bias_ptr: gl.tensor
            out_ptr: gl.tensor
            scales_ptr: gl.tensor
            chan_ptr: gl.tensor
            ws_ptr: gl.tensor
            flag_ptr: gl.tensor
            M: gl.tensor
            N: gl.tensor
            Kp: gl.tensor
            stride_om: gl.tensor
            stride_sn: gl.tensor
            GROUP: gl.constexpr
            SX_MODE: gl.constexpr
            HAS_BIAS: gl.constexpr
            GROUP_M: gl.constexpr
            KSUB: gl.constexpr
            LAG: gl.constexpr
            SPG: gl.constexpr
            PF: gl.constexpr
            DS: gl.constexpr
            TL: gl.constexpr
            SK: gl.constexpr
            WIDE: gl.constexpr
            PDL: gl.constexpr
            CH: gl.constexpr
            TILED: gl.constexpr
            TRIGGER: gl.constexpr

            @gluon.constexpr_function
            def __init__(self, x_desc, w_desc, s_desc, x_smem, w_smem, s_smem, ready, empty, sx_ptr, bias_ptr, out_ptr,
                         scales_ptr, chan_ptr, ws_ptr, flag_ptr, M, N, Kp, stride_om, stride_sn, GROUP, SX_MODE, HAS_BIAS,
                         GROUP_M, KSUB, LAG, SPG, PF, DS, TL, SK, WIDE, PDL, CH, TILED, TRIGGER):
                self.x_desc = x_desc
                self.w_desc = w_desc
                self.s_desc = s_desc
                self.x_smem = x_smem
                self.w_smem = w_smem
                self.s_smem = s_smem
                self.ready = ready
                self.empty = empty
                self.sx_ptr = sx_ptr
                self.bias_ptr = bias_ptr
                self.out_ptr = out_ptr
                self.scales_ptr = scales_ptr
                self.chan_ptr = chan_ptr
                self.ws_ptr = ws_ptr
                self.flag_ptr = flag_ptr
                self.M = M
                self.N = N
                self.Kp = Kp
                self.stride_om = stride_om
                self.stride_sn = stride_sn
                self.GROUP = gl.constexpr(GROUP)
                self.SX_MODE = gl.constexpr(SX_MODE)
                self.HAS_BIAS = gl.constexpr(HAS_BIAS)
                self.GROUP_M = gl.constexpr(GROUP_M)
                self.KSUB = gl.constexpr(KSUB)
                self.LAG = gl.constexpr(LAG)
                self.SPG = gl.constexpr(SPG)
                self.PF = gl.constexpr(PF)
                self.DS = gl.constexpr(DS)
                self.TL = gl.constexpr(TL)
                self.SK = gl.constexpr(SK)
                self.WIDE = gl.constexpr(WIDE)
                self.PDL = gl.constexpr(PDL)
                self.CH = gl.constexpr(CH)
                self.TILED = gl.constexpr(TILED)
                self.TRIGGER = gl.constexpr(TRIGGER)

        @gluon.jit
        def _num_tiles(p):
            BLOCK_M: gl.constexpr = p.x_desc.block_type.shape[0]
            BLOCK_N: gl.constexpr = p.w_desc.block_type.shape[0]
            return ((p.M + BLOCK_M - 1) // BLOCK_M) * ((p.N + BLOCK_N - 1) // BLOCK_N)

        @gluon.jit
        def _slots(p):
            """Ring slots (KSUB K steps each) of one tile."""
            return p.Kp // _SUB // p.KSUB

        @gluon.jit
        def _share(p):
            """(SK) This program's share `[start, end)` of all tiles' slots, taken tile after tile."""
            work = _num_tiles(p) * _slots(p)
            pid = gl.program_id(0)
            return pid * work // gl.num_programs(0), (pid + 1) * work // gl.num_programs(0)

        @gluon.jit
        def _num_pieces(p):
            """Pieces of work of this program — a piece is a run of one tile's slots: every `num_programs`-th
            tile whole, or (SK) the tiles its share of the slots touches (at most the first and the last of
            them in part: a share is at least one tile long)."""
            if p.SK:
                start, end = _share(p)
                return (end - 1) // _slots(p) - start // _slots(p) + 1
            else:
                return (_num_tiles(p) - gl.program_id(0) + gl.num_programs(0) - 1) // gl.num_programs(0)

        @gluon.jit
        def _piece(p, q):
            """Piece `q` of this program: `(tile, first slot, end slot)`."""
            if p.SK:
                start, end = _share(p)
                t = start // _slots(p) + q
                return t, gl.maximum(start - t * _slots(p), 0), gl.minimum(end - t * _slots(p), _slots(p))
            else:
                return gl.program_id(0) + q * gl.num_programs(0), 0, _slots(p)

        @gluon.jit
        def _stream_k_fixup(p, WG: gl.constexpr, val, k_lo, k_hi):
            """(SK) Joins the two pieces of a tile split between programs: the tile's last slots, the first piece
            of program `pid` (run at its start), leave this warpgroup's partial sums `val` (int32, or fp32 as its
            bits) in the workspace and raise a flag; its first slots, the last piece of program `pid - 1`, wait
            for the flag (long raised, as a rule), add the partial and lower the flag again (the workspace is
            reused by the next launch) — then write the tile. Returns `val` (with the other half where joined)."""
            BLOCK_M: gl.constexpr = p.x_desc.block_type.shape[0]
            lay: gl.constexpr = val.type.layout
            rows = gl.arange(0, _ROWS, layout=gl.SliceLayout(1, lay))
            cols = gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, lay))
            offs = rows[:, None] * BLOCK_M + cols[None, :]
            pid = gl.program_id(0)
            if k_lo > 0:  # the tile's last slots: hand them over
                gl.store(p.ws_ptr + (pid * 2 + WG) * (_ROWS * BLOCK_M) + offs, val.to(gl.int32, bitcast=True))
                gl.thread_barrier()  # (this warpgroup's) every partial sum is written before the release
                gl.atomic_xchg(p.flag_ptr + pid * 2 + WG, 1, sem="release", scope="gpu")
            elif k_hi < _slots(p):  # the tile's first slots: take the rest from program pid + 1
                flag = p.flag_ptr + (pid + 1) * 2 + WG
                while gl.atomic_add(flag, 0, sem="acquire", scope="gpu") == 0:
                    pass
                rest = gl.load(p.ws_ptr + ((pid + 1) * 2 + WG) * (_ROWS * BLOCK_M) + offs, cache_modifier=".cg")
                val = val + rest.to(val.dtype, bitcast=True)
                gl.atomic_xchg(flag, 0, sem="relaxed", scope="gpu")
            return val

        @gluon.jit
        def _loader(p):
            """One warp: per ring slot KSUB K steps, each the activation tile, the packed weight tile and (unless DS)
            the step's scale row; TL 4: first the slot's group scales (`_load_scales`). PDL (launched as a programmatic
            dependent of the quantization kernel; DS, so no scale rows): the first slots' weights (and TL 4 scales, the
            layer's own) are requested before waiting for that kernel, their activations after."""
            STAGES: gl.constexpr = p.ready.shape[0]
            BLOCK_M: gl.constexpr = p.x_desc.block_type.shape[0]
            BLOCK_N: gl.constexpr = p.w_desc.block_type.shape[0]
            s_bytes: gl.constexpr = 0 if p.DS else p.s_desc.block_type.nbytes
            nbytes: gl.constexpr = p.KSUB * (p.x_desc.block_type.nbytes + p.w_desc.block_type.nbytes + s_bytes)
            it = 0
            if p.PDL:
                t, k_lo, k_hi = _piece(p, 0)
                off_m, off_n = _tile(t, p.M, p.N, BLOCK_M, BLOCK_N, p.GROUP_M)
                it = gl.where(_num_pieces(p) > 0, gl.minimum(k_hi - k_lo, STAGES), 0)  # (the ring's first pass)
                for i in range(0, it):
                    if p.TL == 4:
                        _load_scales(p, p.ready.index(i), i, k_lo + i, off_n)
                    mbarrier.expect(p.ready.index(i), nbytes)  # (the activations' bytes too: they follow below)
                    _load_step(p, p.ready.index(i), i, k_lo + i, off_m, off_n, True, False)
                gdc_wait()
                for i in range(0, it):
                    _load_step(p, p.ready.index(i), i, k_lo + i, off_m, off_n, False, True)
            for q in range(0, _num_pieces(p)):
                t, k_lo, k_hi = _piece(p, q)
                off_m, off_n = _tile(t, p.M, p.N, BLOCK_M, BLOCK_N, p.GROUP_M)
                if p.PDL:
                    if q == 0:
                        k_lo = k_lo + it  # (the slots issued above)
                for st in range(k_lo, k_hi):
                    slot = it % STAGES
                    mbarrier.wait(p.empty.index(slot), ((it // STAGES) & 1) ^ 1)  # first pass: released
                    bar = p.ready.index(slot)
                    if p.TL == 4:
                        _load_scales(p, bar, slot, st, off_n)
                    mbarrier.expect(bar, nbytes)
                    _load_step(p, bar, slot, st, off_m, off_n, True, True)
                    it += 1
            if p.TRIGGER:  # (the next kernel's programs placed under this grid's last slots: module TRIGGER)
                gdc_launch_dependents()

        @gluon.jit
        def _load_scales(p, bar, slot, st, off_n):
            """(TL 4) The group scales of the tile's slot `st` — per weight row one int32, the slot's two fp16 groups —
            copied (cp.async, 4 bytes a row; rows past N zero) into `s_smem[slot]`; `bar` (the slot's ready barrier)
            counts them in before they are requested and completes only once they have landed (so before its expect)."""
            BLOCK_N: gl.constexpr = p.w_desc.block_type.shape[0]
            rows = off_n + gl.arange(0, BLOCK_N, layout=gl.BlockedLayout([1], [32], [1], [0]))
            async_copy.async_copy_global_to_shared(p.s_smem.index(slot).reshape([BLOCK_N]),
                                                   p.scales_ptr + (rows * p.stride_sn + st), mask=rows < p.N)
            async_copy.mbarrier_arrive(bar)

        @gluon.jit
        def _loaded_scales(p, slot, blk: gl.constexpr, acc):
            """(TL 4) Row block `blk`'s group scales of ring slot `slot` from the loader's copy: the slot's first and
            second K step's (fp32, the row layout of `acc`)."""
            BLOCK_N: gl.constexpr = p.w_desc.block_type.shape[0]
            v = p.s_smem.index(slot).reshape([BLOCK_N]).slice(blk * _ROWS, _ROWS).load(gl.SliceLayout(1, acc.type.layout))
            lo = (v & 0xFFFF).to(gl.int16).to(gl.float16, bitcast=True).to(gl.float32)
            hi = (v >> 16).to(gl.int16).to(gl.float16, bitcast=True).to(gl.float32)
            return lo, hi

        @gluon.jit
        def _load_step(p, bar, slot, st, off_m, off_n, WEIGHTS: gl.constexpr, ACTS: gl.constexpr):
            """The TMA loads of ring slot `slot` for the tile's slot `st` (KSUB K steps) on mbarrier `bar`: the
            weight tiles and (unless DS) scale rows, and / or the activation tiles."""
            for u in gl.static_range(p.KSUB):
                k0 = (st * p.KSUB + u) * _SUB
                j = slot * p.KSUB + u
                if ACTS:
                    tma.async_copy_global_to_shared(p.x_desc, [off_m, k0], bar, p.x_smem.index(j))
                if WEIGHTS:
                    if p.TILED:  # (a probe: the weights' box-major copy, 128-byte boxes, rows padded to 256)
                        n_pad = (p.N + 255) // 256 * 256
                        tma.async_copy_global_to_shared(p.w_desc, [(k0 // 256) * n_pad + off_n, (k0 // 2) % 128], bar,
                                                        p.w_smem.index(j))
                    else:
                        tma.async_copy_global_to_shared(p.w_desc, [off_n, k0 // 2], bar, p.w_smem.index(j))
                    if not p.DS:
                        tma.async_copy_global_to_shared(p.s_desc, [k0 // p.GROUP, off_n], bar, p.s_smem.index(j))

        @gluon.jit
        def _weights(p, j, WG: gl.constexpr, a_l: gl.constexpr, g=None, r1=None):
            """The 64 x 128 int8 `code - 8` weights of row block `WG` (64 rows: the warpgroup's, or one of its two with
            WIDE) of the K step in buffer `j`, in the A operand layout:
            the packed bytes are loaded in the layout that the relabelling below turns into `a_l` (the A layout
            taken back through it), unpacked (low nibble: even column, high: odd) and relabelled to the
            activation buffer's order (per 128 columns the even ones, then the odd ones) — no data movement.
            TL (two-level scales): `(code - 8) * s2` with the rows' integers `s2 = g / s1` (`g`: the step's group
            scales, `r1`: 1 / the channel scales, fp32 in the accumulator's row layout): a multiply-add in the
            unpacking (`UNPACK_*_TL`), as many instructions as the plain `code - 8`."""
            z = gl.zeros([_ROWS, _SUB], gl.int8, a_l).reshape([_ROWS, 2, _SUB // 2]).permute((0, 2, 1))
            z_lo, z_hi = gl.split(z)
            pk = p.w_smem.index(j).slice(WG * _ROWS, _ROWS, dim=0).load(z_lo.type.layout)
            if p.TL:
                zrow: gl.constexpr = gl.SliceLayout(1, z_lo.type.layout)
                s2 = gl.convert_layout((g * r1 + 0.5).to(gl.int32), zrow)  # (an integer up to fp32 rounding)
                c = -2139062144 - s2 * 0x08080808  # the bytes 0x80 - 8 * s2 (0x80808080 as int32)
                lo = gl.inline_asm_elementwise(UNPACK_LO_TL, "=r,r,r,r,r,r,r,r,r,r", [pk, s2[:, None], c[:, None]],
                                               dtype=gl.int8, is_pure=True, pack=4)
                hi = gl.inline_asm_elementwise(UNPACK_HI_TL, "=r,r,r,r,r,r,r,r,r,r", [pk, s2[:, None], c[:, None]],
                                               dtype=gl.int8, is_pure=True, pack=4)
            else:
                lo = gl.inline_asm_elementwise(UNPACK_LO, "=r,r", [pk], dtype=gl.int8, is_pure=True, pack=4)
                hi = gl.inline_asm_elementwise(UNPACK_HI, "=r,r", [pk], dtype=gl.int8, is_pure=True, pack=4)
            return gl.convert_layout(gl.join(lo, hi).permute((0, 2, 1)).reshape([_ROWS, _SUB]), a_l)

        @gluon.constexpr_function
        def _mma_layout(block_m):
            """The accumulator layout: 64 weight rows x block_m tokens per warpgroup, int8 wgmma (K 32)."""
            return gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, block_m, 32])

        @gluon.jit
        def _row_scales(p, j, WG: gl.constexpr, acc, step=0, off_n=0):
            """This warpgroup's 64 group scales of the K step in buffer `j` (global K step `step` of the tile at
            weight row `off_n`), straight into the row layout of the accumulator `acc` (a 1-D view of the row):
            from the step's scale row in shared memory, or (DS) from the (N, groups) scales in global memory."""
            BLOCK_N: gl.constexpr = p.w_desc.block_type.shape[0]
            row_l: gl.constexpr = gl.SliceLayout(1, acc.type.layout)
            if p.DS:
                rows = off_n + WG * _ROWS + gl.arange(0, _ROWS, layout=row_l)
                ptrs = p.scales_ptr + rows.to(gl.int64) * p.stride_sn + step // (p.GROUP // _SUB)
                s = gl.load(ptrs, mask=rows < p.N, other=0.0).to(gl.float32)
            else:
                s = p.s_smem.index(j).reshape([BLOCK_N]).slice(WG * _ROWS, _ROWS).load(row_l)
            return s

        @gluon.jit
        def _slot_scales(p, blk: gl.constexpr, acc, st, off_n):
            """(DS) Row block `blk`'s group scales of ring slot `st` of the tile: its first and its last K step's."""
            lo = _row_scales(p, 0, blk, acc, st * p.KSUB, off_n)
            hi = lo
            if p.KSUB == 2:
                hi = _row_scales(p, 0, blk, acc, st * p.KSUB + 1, off_n)
            return lo, hi

        @gluon.jit
        def _channel_scales(p, WG: gl.constexpr, acc, off_n):
            """TL: this warpgroup's 64 channel scales (fp32, the row layout of `acc`; 1 past the last row)."""
            rows = off_n + WG * _ROWS + gl.arange(0, _ROWS, layout=gl.SliceLayout(1, acc.type.layout))
            return gl.load(p.chan_ptr + rows, mask=rows < p.N, other=1.0).to(gl.float32)

        @gluon.jit
        def _scale_rows(p, acc, part, j, WG: gl.constexpr):
            """acc + the int32 partial sums of the K step in buffer `j` times this warpgroup's group scales."""
            return acc + _as_fp32(part, True) * _row_scales(p, j, WG, acc)[:, None]

        @gluon.jit
        def _mma_step(p, j, WG: gl.constexpr, part, use_acc):
            """Issue (asynchronously) the wgmma of the K step in buffer `j`: this warpgroup's weights, unpacked into
            registers, against the activation tile, into `part` (added to it if `use_acc`, else overwriting it)."""
            a_l: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=_mma_layout(p.x_desc.block_type.shape[0]), k_width=4)
            return _mma_with(p, _weights(p, j, WG, a_l), j, part, use_acc)

        @gluon.jit
        def _mma_with(p, a, j, part, use_acc):
            """The wgmma of the K step in buffer `j` with the weights `a` already in registers (see `_mma_step`)."""
            return warpgroup_mma(a, p.x_smem.index(j).permute((1, 0)), part, use_acc=use_acc, is_async=True)

        @gluon.jit
        def _lagged_slot(p, WG: gl.constexpr, it, acc, carry, spare, FIRST: gl.constexpr):
            """The K steps of ring slot `it % STAGES`, each step's scaling under the next step's wgmma (the
            schedule of `gluon_prefill._lagged_slot`: only complete partial sums cross the runtime loop). Unless
            FIRST, `carry` is the previous slot's last step, and that slot is released once it is scaled."""
            STAGES: gl.constexpr = p.ready.shape[0]
            slot = it % STAGES
            mbarrier.wait(p.ready.index(slot), (it // STAGES) & 1)
            for u in gl.static_range(p.KSUB):
                j = slot * p.KSUB + u
                d = _mma_step(p, j, WG, spare, False)
                if u > 0:
                    acc = _scale_rows(p, acc, carry, j - 1, WG)
                elif not FIRST:
                    prev = (it - 1) % STAGES
                    acc = _scale_rows(p, acc, carry, prev * p.KSUB + p.KSUB - 1, WG)
                    mbarrier.arrive(p.empty.index(prev), count=1)  # (after the scale row's loads, see gluon_prefill)
                spare = carry
                carry = warpgroup_mma_wait(num_outstanding=0, deps=(d,))
            return acc, carry, spare

        @gluon.jit
        def _consumer(p, WG: gl.constexpr):
            """One warpgroup: weight rows [WG * 64, WG * 64 + 64) of every tile, all BLOCK_M activation rows.
            Per step: its weights unpacked into registers, wgmma against the activation tile into int32 partial
            sums; per group (SPG steps: 1, or 2 for groups of 256 with two steps per slot) the sums scaled by
            the rows' group scales (read while the group's last wgmma runs) into the fp32 accumulator — right
            after that wgmma, or (LAG, one step a slot) under the next one's; per channel (SPG = 0) one int32
            sum over all of K, scaled once (CH: a slot's second wgmma issued on the first's unwaited sums, one wait
            per slot). A slot is released once its scale rows are read and its wgmmas are done."""
            STAGES: gl.constexpr = p.ready.shape[0]
            BLOCK_M: gl.constexpr = p.x_desc.block_type.shape[0]
            BLOCK_N: gl.constexpr = p.w_desc.block_type.shape[0]
            mma: gl.constexpr = _mma_layout(BLOCK_M)
            it = 0
            for q in range(0, _num_pieces(p)):
                t, k_lo, k_hi = _piece(p, q)
                off_m, off_n = _tile(t, p.M, p.N, BLOCK_M, BLOCK_N, p.GROUP_M)
                acc = gl.zeros([_ROWS, BLOCK_M], gl.float32, mma)
                part = gl.zeros([_ROWS, BLOCK_M], gl.int32, mma)
                if p.LAG:
                    spare = gl.zeros([_ROWS, BLOCK_M], gl.int32, mma)
                    acc, part, spare = _lagged_slot(p, WG, it, acc, part, spare, True)
                    it += 1
                    for _ in range(1, p.Kp // _SUB // p.KSUB):
                        acc, part, spare = _lagged_slot(p, WG, it, acc, part, spare, False)
                        it += 1
                    last = (it - 1) % STAGES
                    acc = _scale_rows(p, acc, part, last * p.KSUB + p.KSUB - 1, WG)
                    mbarrier.arrive(p.empty.index(last), count=1)
                else:
                    s = gl.zeros([_ROWS], gl.float32, gl.SliceLayout(1, mma))  # (per channel: the one scale row)
                    if p.TL:  # two-level: the channel scales (epilogue) and their reciprocals (the integers s2)
                        s = _channel_scales(p, WG, acc, off_n)
                        r1 = 1.0 / s
                    elif p.DS and p.SPG == 0:  # per channel: the tile's one scale per row, under its whole K loop
                        s = _row_scales(p, 0, WG, acc, 0, off_n)
                    a_l: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma, k_width=4)
                    if p.TL == 2:  # (TL 2: each slot's group scales requested one slot ahead) the first slot's
                        n_lo, n_hi = _slot_scales(p, WG, acc, k_lo, off_n)
                    for st in range(k_lo, k_hi):
                        slot = it % STAGES
                        if p.TL == 2:  # this slot's scales, loaded under the previous slot; the next slot's now
                            s_lo = n_lo
                            s_hi = n_hi
                            # (after the tile's last slot: its first, unused)
                            n_lo, n_hi = _slot_scales(p, WG, acc, (st + 1) % _slots(p), off_n)
                        elif p.DS and (p.SPG != 0 or p.TL) and p.TL != 4:  # the slot's scales (one or two groups), before its wait
                            s_lo = _row_scales(p, 0, WG, acc, st * p.KSUB, off_n)
                            s_hi = s_lo
                            if (p.SPG == 1 or p.TL) and p.KSUB == 2:
                                s_hi = _row_scales(p, 0, WG, acc, st * p.KSUB + 1, off_n)
                        mbarrier.wait(p.ready.index(slot), (it // STAGES) & 1)
                        if p.TL == 4:  # (the loader's copy, in shared memory)
                            s_lo, s_hi = _loaded_scales(p, slot, WG, acc)
                        if p.TL:
                            a = _weights(p, slot * p.KSUB, WG, a_l, s_lo, r1)
                        else:
                            a = _weights(p, slot * p.KSUB, WG, a_l)
                        for u in gl.static_range(p.KSUB):
                            j = slot * p.KSUB + u
                            if p.SPG == 0:
                                use_acc = st * p.KSUB + u > k_lo * p.KSUB  # (the piece's first step starts the sum)
                                last = u == p.KSUB - 1
                            else:
                                use_acc = u % p.SPG != 0
                                last = (u + 1) % p.SPG == 0
                            if u > 0 and not p.PF:  # (PF: this step's weights were unpacked under the previous wgmma)
                                if p.TL:
                                    a = _weights(p, j, WG, a_l, s_hi, r1)
                                else:
                                    a = _weights(p, j, WG, a_l)
                            d = _mma_with(p, a, j, part, use_acc)
                            if p.PF and u + 1 < p.KSUB:  # the next step's weights while this wgmma runs
                                if p.TL:
                                    a = _weights(p, j + 1, WG, a_l, s_hi, r1)
                                else:
                                    a = _weights(p, j + 1, WG, a_l)
                            # the group's scales, read while its last wgmma runs (DS: loaded above — a global load
                            # under the `last` branch of a warp-specialized partition fails to lower in Triton 3.6)
                            if p.DS:
                                if p.SPG != 0:
                                    if u == 0:
                                        s = s_lo
                                    else:
                                        s = s_hi
                            elif last:
                                s = _row_scales(p, j, WG, acc, st * p.KSUB + u, off_n)
                            if p.CH and u + 1 < p.KSUB:  # (the next step's wgmma chains on this one, unwaited)
                                part = d
                            else:
                                part = warpgroup_mma_wait(num_outstanding=0, deps=(d,))
                            if p.SPG > 0 and last:
                                acc = acc + _as_fp32(part, True) * s[:, None]
                        mbarrier.arrive(p.empty.index(slot), count=1)  # (after the scale row's loads, see gluon_prefill)
                        it += 1
                    if p.SPG == 0:  # (sums up to 2^31: a plain conversion, not `_as_fp32`'s 2^22 range)
                        if p.SK:
                            part = _stream_k_fixup(p, WG, part, k_lo, k_hi)
                        acc = part.to(gl.float32) * s[:, None]
                    elif p.SK:
                        acc = _stream_k_fixup(p, WG, acc, k_lo, k_hi)
                if k_lo == 0:  # (SK: a tile's last slots were handed over to the program with its first ones)
                    # the (tokens, output columns) tile: the accumulator transposed (a relabelling of its registers)
                    out_t = acc.permute((1, 0))
                    offs_m = off_m + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, out_t.type.layout))
                    offs_n = off_n + WG * _ROWS + gl.arange(0, _ROWS, layout=gl.SliceLayout(0, out_t.type.layout))
                    _epilogue(out_t, offs_m, offs_n, p.sx_ptr, p.bias_ptr, p.out_ptr, p.M, p.N, p.stride_om, p.SX_MODE,
                              p.HAS_BIAS)

        @gluon.jit
        def _wide_weights(p, j, WG: gl.constexpr, a_l: gl.constexpr, g0, g1, r0, r1):
            """(WIDE) Both row blocks' weights of the K step in buffer `j` (TL: times their integer group scales)."""
            if p.TL:
                return _weights(p, j, 2 * WG, a_l, g0, r0), _weights(p, j, 2 * WG + 1, a_l, g1, r1)
            else:
                return _weights(p, j, 2 * WG, a_l), _weights(p, j, 2 * WG + 1, a_l)

        @gluon.jit
        def _consumer_wide(p, WG: gl.constexpr):
            """WIDE (256-row weight tiles): one warpgroup, weight rows [WG * 128, WG * 128 + 128) as two 64-row blocks
            of all BLOCK_M activation rows — two wgmmas per K step against the same activation tile, so each activation
            byte brought from L2 serves twice the rows (a third fewer L2 bytes per multiply-add: 2-9 % faster, run 123).
            One int32 sum over K per output (two-level scales, TL, or per channel), scales read directly (DS); the
            schedule of `_consumer` otherwise (PF, TL 1 / 2 / 4, CH), no stream-K."""
            STAGES: gl.constexpr = p.ready.shape[0]
            BLOCK_M: gl.constexpr = p.x_desc.block_type.shape[0]
            BLOCK_N: gl.constexpr = p.w_desc.block_type.shape[0]
            mma: gl.constexpr = _mma_layout(BLOCK_M)
            a_l: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma, k_width=4)
            it = 0
            for q in range(0, _num_pieces(p)):
                t, k_lo, k_hi = _piece(p, q)
                off_m, off_n = _tile(t, p.M, p.N, BLOCK_M, BLOCK_N, p.GROUP_M)
                acc = gl.zeros([_ROWS, BLOCK_M], gl.float32, mma)  # (a layout donor)
                part0 = gl.zeros([_ROWS, BLOCK_M], gl.int32, mma)
                part1 = gl.zeros([_ROWS, BLOCK_M], gl.int32, mma)
                if p.TL:  # the channel scales (epilogue) and their reciprocals (the integers s2)
                    s0 = _channel_scales(p, 2 * WG, acc, off_n)
                    s1 = _channel_scales(p, 2 * WG + 1, acc, off_n)
                    r0 = 1.0 / s0
                    r1 = 1.0 / s1
                else:  # per channel: the tile's one scale per row
                    s0 = _row_scales(p, 0, 2 * WG, acc, 0, off_n)
                    s1 = _row_scales(p, 0, 2 * WG + 1, acc, 0, off_n)
                    r0 = s0
                    r1 = s1
                g0_lo = s0  # (per channel: unused)
                g1_lo = s1
                g0_hi = s0
                g1_hi = s1
                if p.TL == 2:  # the first slot's group scales
                    n0_lo, n0_hi = _slot_scales(p, 2 * WG, acc, k_lo, off_n)
                    n1_lo, n1_hi = _slot_scales(p, 2 * WG + 1, acc, k_lo, off_n)
                for st in range(k_lo, k_hi):
                    slot = it % STAGES
                    if p.TL == 2:  # this slot's scales, loaded under the previous slot; the next slot's now
                        g0_lo = n0_lo
                        g1_lo = n1_lo
                        g0_hi = n0_hi
                        g1_hi = n1_hi
                        nxt = (st + 1) % _slots(p)  # (after the tile's last slot: its first, unused)
                        n0_lo, n0_hi = _slot_scales(p, 2 * WG, acc, nxt, off_n)
                        n1_lo, n1_hi = _slot_scales(p, 2 * WG + 1, acc, nxt, off_n)
                    elif p.TL == 1:  # the slot's scales, before its wait
                        g0_lo, g0_hi = _slot_scales(p, 2 * WG, acc, st, off_n)
                        g1_lo, g1_hi = _slot_scales(p, 2 * WG + 1, acc, st, off_n)
                    mbarrier.wait(p.ready.index(slot), (it // STAGES) & 1)
                    if p.TL == 4:  # (the loader's copy, in shared memory)
                        g0_lo, g0_hi = _loaded_scales(p, slot, 2 * WG, acc)
                        g1_lo, g1_hi = _loaded_scales(p, slot, 2 * WG + 1, acc)
                    a0, a1 = _wide_weights(p, slot * p.KSUB, WG, a_l, g0_lo, g1_lo, r0, r1)
                    for u in gl.static_range(p.KSUB):
                        j = slot * p.KSUB + u
                        use_acc = st * p.KSUB + u > k_lo * p.KSUB
                        if u > 0 and not p.PF:
                            a0, a1 = _wide_weights(p, j, WG, a_l, g0_hi, g1_hi, r0, r1)
                        d0 = _mma_with(p, a0, j, part0, use_acc)
                        d1 = _mma_with(p, a1, j, part1, use_acc)
                        if p.PF and u + 1 < p.KSUB:  # the next step's weights while these wgmmas run
                            a0, a1 = _wide_weights(p, j + 1, WG, a_l, g0_hi, g1_hi, r0, r1)
                        if p.CH and u + 1 < p.KSUB:  # (the next step's wgmmas chain on these, unwaited)
                            part0 = d0
                            part1 = d1
                        else:
                            part0, part1 = warpgroup_mma_wait(num_outstanding=0, deps=(d0, d1))
                    mbarrier.arrive(p.empty.index(slot), count=1)
                    it += 1
                for h in gl.static_range(2):  # the two row blocks' (tokens, output columns) tiles
                    if h == 0:
                        out_t = (part0.to(gl.float32) * s0[:, None]).permute((1, 0))
                    else:
                        out_t = (part1.to(gl.float32) * s1[:, None]).permute((1, 0))
                    offs_m = off_m + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, out_t.type.layout))
                    offs_n = off_n + (2 * WG + h) * _ROWS + gl.arange(0, _ROWS, layout=gl.SliceLayout(0, out_t.type.layout))
                    _epilogue(out_t, offs_m, offs_n, p.sx_ptr, p.bias_ptr, p.out_ptr, p.M, p.N, p.stride_om, p.SX_MODE,
                              p.HAS_BIAS)

        @gluon.jit
        def _consumer_of(p, WG: gl.constexpr):
            """Consumer warpgroup WG's schedule: 64 weight rows, or (WIDE) 128. (PDL: the activation scales are read
            once the quantization kernel has finished.)"""
            if p.PDL:
                gdc_wait()
            if p.WIDE:
                _consumer_wide(p, WG)
            else:
                _consumer(p, WG)

        @gluon.jit
        def _consumer1(p):
            _consumer_of(p, 1)

        @gluon.jit(do_not_specialize=["stride_sn"])  # (per channel it is 1: a constexpr would not fit `_Args`)
        def _swap_kernel(
            x_desc,  # TMA descriptor of the (M, Kp) int8 activation buffer (permuted chunks), block (BLOCK_M, 128)
            w_desc,  # TMA descriptor of the (N, K // 2) packed int4 weights, block (2 * 64, 64) (WIDE: (4 * 64, 64))
            s_desc,  # TMA descriptor of the (groups, N) fp32 group scale rows, block (1, 2 * 64)
            sx_ptr,
            bias_ptr,
            out_ptr,  # (M, N) output dtype, row stride stride_om
            scales_ptr,  # (DS) the (N, groups) group scales as stored, row stride stride_sn
            chan_ptr,  # (TL) the (N,) fp16 channel scales of two-level scales
            ws_ptr,  # (SK) int32 workspace, 2 x 64 x BLOCK_M per program: the partial sums a program hands over
            flag_ptr,  # (SK) int32, 2 per program, zero between launches: partial sums handed over
            M,
            N,
            Kp,
            stride_om,
            stride_sn,
            GROUP: gl.constexpr,
            SX_MODE: gl.constexpr,
            HAS_BIAS: gl.constexpr,
            GROUP_M: gl.constexpr,
            STAGES: gl.constexpr,
            KSUB: gl.constexpr,
            LAG: gl.constexpr,
            SPG: gl.constexpr,  # K steps per group scaled at once, dividing KSUB (0: per channel, one int32 sum over K)
            PF: gl.constexpr,  # a slot's next K step's weights unpacked while the current step's wgmma runs
            DS: gl.constexpr,  # scales read from `scales_ptr` (by the consumers; TL 4: by the loader), no scale rows
            TL: gl.constexpr,  # two-level scales: codes times the integers scales / channel scales, one int32 sum (DS, SPG 0);
            # 1: each slot's group scales loaded before its wait; 2: one slot ahead; 4: copied into shared memory by the
            # loader (LOADER_SCALES; `scales_ptr` int32: a row's two groups of a slot each)
            SK: gl.constexpr,  # stream-K: each program an equal share of all tiles' K slots (see `stream_k`)
            WIDE: gl.constexpr,  # 256-row weight tiles, 128 rows per consumer warpgroup (`_consumer_wide`)
            CONSUMER_REGS: gl.constexpr,
            num_warps: gl.constexpr,
            PDL: gl.constexpr = False,  # launched as a programmatic dependent of the quantization kernel
            CH: gl.constexpr = False,  # a slot's wgmmas chained without waits between them (SPG 0, two K steps a slot)
            TILED: gl.constexpr = False,  # (a probe, `benchmarks/probe_tiled_weights.py`) w_desc over a box-major copy
            TRIGGER: gl.constexpr = False,  # the loader lets the next kernel be placed after its last requests (TRIGGER)
        ):
            """Persistent warp-specialized C^T = W X^T: (2 * 64) x BLOCK_M tiles (WIDE: (4 * 64) x BLOCK_M), two
            consumer warpgroups (the default partition and a worker) and a loader warp; whole tiles per program or
            (SK) an equal share of all tiles' K slots."""
            gl.static_assert(not (DS and LAG), "DIRECT_SCALES: not with the lagged schedule")
            gl.static_assert(not DS or KSUB <= 2, "DIRECT_SCALES: at most two K steps a slot")
            gl.static_assert(not TL or (DS and SPG == 0 and not LAG), "two-level scales: DS, SPG 0, no lag")
            gl.static_assert(not (SK and LAG), "stream-K: not with the lagged schedule")
            gl.static_assert(not CH or (SPG == 0 and not LAG), "CH: one int32 sum over K, no lag")
            gl.static_assert(not WIDE or (SPG == 0 and DS and not SK and not LAG), "WIDE: one int32 sum (TL / per channel), DS")
            gl.static_assert(w_desc.block_type.shape[0] == (4 if WIDE else 2) * _ROWS, "weight tile rows")
            x_smem = gl.allocate_shared_memory(x_desc.dtype, [STAGES * KSUB] + x_desc.block_type.shape, x_desc.layout)
            w_smem = gl.allocate_shared_memory(w_desc.dtype, [STAGES * KSUB] + w_desc.block_type.shape, w_desc.layout)
            if TL == 4:  # the loader's copies of the group scales: one int32 per weight row and slot
                gl.static_assert(KSUB == 2 and GROUP == 128, "TL 4: groups of 128, two K steps a slot")
                s_smem = gl.allocate_shared_memory(gl.int32, [STAGES, 1, w_desc.block_type.shape[0]],
                                                   gl.SwizzledSharedLayout(1, 1, 1, order=[1, 0]))
            else:
                s_smem = gl.allocate_shared_memory(s_desc.dtype, [STAGES * KSUB] + s_desc.block_type.shape, s_desc.layout)
            ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
            empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
            for i in gl.static_range(STAGES):
                mbarrier.init(ready.index(i), count=1)
                mbarrier.init(empty.index(i), count=2)  # one arrival per consumer warpgroup
            p = _Args(x_desc, w_desc, s_desc, x_smem, w_smem, s_smem, ready, empty, sx_ptr, bias_ptr, out_ptr, scales_ptr,
                      chan_ptr, ws_ptr, flag_ptr, M, N, Kp, stride_om, stride_sn, GROUP, SX_MODE, HAS_BIAS, GROUP_M, KSUB, LAG,
                      SPG, PF, DS, TL, SK, WIDE, PDL, CH, TILED, TRIGGER)
            gl.warp_specialize([(_consumer_of, (p, 0)), (_consumer1, (p,)), (_loader, (p,))], [4, 1], [CONSUMER_REGS, 24])
    except Exception:  # pragma: no cover - a Gluon API this code does not know
        gluon = None


@functools.cache
def _packed_layout():
    """Shared layout of a packed (128, 64)-byte weight tile (64-byte swizzle: conflict-free ldmatrix rows)."""
    return gl.NVMMASharedLayout(swizzle_byte_width=64, element_bitwidth=8, rank=2)


def supported(int8: bool, qweight: torch.Tensor, zeros, k: int, group_size: int) -> bool:
    """Whether `swap_gemm` takes these operands (see the module docstring): `int8` activations (whose
    buffer is then exactly K wide: K is a multiple of 128)."""
    return (
        gluon is not None
        and int8
        and zeros is None
        and k % SUB == 0
        and group_size % SUB == 0
        and qweight.stride(1) == 1
        and (qweight.stride(0) % 16) == 0
        and qweight.data_ptr() % 16 == 0
    )


def plan(kp: int, group_size: int, m: int, two_level: bool = False) -> dict:
    """The kernel's schedule constants for an (m, kp) activation buffer and `group_size` (a multiple of 128,
    or >= kp per channel), from the module settings: KSUB K steps a slot (K_PER_SLOT where the step count
    divides), SPG steps per scaled group (GROUP_SUMS: a whole group where a slot's steps cover it exactly —
    exact integer group sums, as the reference — or all of K per channel (0); else every step, 1), LAG, PF and
    DS (up to DIRECT_SCALES rows, not with the lag). `two_level` (groups with two-level scales, TL): one int32 sum
    over K whatever the group size (SPG 0), the group scales read directly (DS) to multiply the codes (TL 4: copied by
    the loader with LOADER_SCALES, groups of 128 and two K steps a slot; else 2: one slot ahead from TL_AHEAD columns
    on; else 1 before the slot's wait); CH: CHAIN_STEPS with two-level scales where they are not requested a slot
    ahead (TL 1 / 4) and a slot has two K steps."""
    ksub = K_PER_SLOT if (kp // SUB) % K_PER_SLOT == 0 else 1
    if two_level and group_size < kp:
        tl = 4 if LOADER_SCALES and ksub == 2 and group_size == SUB else 2 if kp >= TL_AHEAD else 1
        return {"KSUB": ksub, "SPG": 0, "LAG": False, "PF": PREFETCH_WEIGHTS and ksub > 1, "DS": True, "TL": tl,
                "CH": CHAIN_STEPS and ksub > 1 and tl != 2}
    g_steps = min(group_size, kp) // SUB
    spg = (0 if group_size >= kp else g_steps if ksub % g_steps == 0 else 1) if GROUP_SUMS else 1
    # group sums go through `_as_fp32` (exact below 2^22): |int8 x [-8, 7]| <= 1016 a column
    assert spg == 0 or spg * SUB * 1016 < 1 << 22, "groups too long for the fast int32 -> fp32 conversion"
    lag = LAG_SCALING and ksub == 1 and spg == 1  # (two steps a slot with the lag serialize every wgmma at 128 tokens)
    ds = m <= DIRECT_SCALES and not lag and ksub <= 2
    return {"KSUB": ksub, "SPG": spg, "LAG": lag, "PF": PREFETCH_WEIGHTS and ksub > 1, "DS": ds, "TL": False, "CH": False}


def stream_k(tiles: int, sms: int) -> bool:
    """Whether `tiles` output tiles run as stream-K over `sms` SMs (STREAM_K; more tiles than SMs, so that a
    program's share is at least one tile and a tile is split between two programs at most)."""
    if not STREAM_K or tiles <= sms:
        return False
    idle, max_rounds = STREAM_K
    rounds = tiles / sms
    return rounds <= max_rounds and math.ceil(rounds) - rounds >= idle


def _no_rows(index: int) -> tuple:
    """A (1, 2 * ROWS) fp32 stand-in for the scale rows where the kernel reads the scales directly (DS), and its TMA
    descriptor (an argument, never loaded from). Kept per GPU, made outside CUDA-graph pools (`fptq.kernels.scratch`:
    a kept block in a cudagraph tree's pool fails its checks); while a graph is captured before any launch made it,
    one for that call (the graph's own)."""
    kept = _NO_ROWS.get(index)
    if kept is None:
        zeros = scratch.kept_zeros("swap_no_rows", 2 * ROWS, torch.device("cuda", index))
        if zeros is None:
            rows = torch.zeros(1, 2 * ROWS, dtype=torch.float32, device=torch.device("cuda", index))
            return rows, scale_desc(rows, 2 * ROWS, 2 * ROWS)
        rows = zeros[: 2 * ROWS].view(torch.float32).view(1, 2 * ROWS)
        kept = _NO_ROWS[index] = (rows, scale_desc(rows, 2 * ROWS, 2 * ROWS))
    return kept


_NO_ROWS: dict[int, tuple] = {}


def _settings() -> tuple:
    """The module settings `plan`, `stream_k`, `swap_gemm` and `SwapLaunch` read (a key of `_schedule`, and through
    `triton_w4a8._settings` of the kept plans: tests and probes change them)."""
    return (K_PER_SLOT, GROUP_SUMS, LAG_SCALING, PREFETCH_WEIGHTS, CHAIN_STEPS, DIRECT_SCALES, TL_AHEAD,
            LOADER_SCALES, STREAM_K, USE_TWO_LEVEL, TRIGGER)


@functools.lru_cache(maxsize=1024)
def _schedule(m: int, kp: int, n: int, group_size: int, two_level: bool, block_m: int, block_n: int, max_stages: int,
              smem: int, sms: int, settings: tuple) -> tuple:
    """`swap_gemm`'s launch constants for an (m, kp) activation buffer and n weight rows — (plan, wide, weight rows per
    tile, ring slots, programs, stream-K) — computed once per shape (`settings`: `_settings()`, a key only)."""
    sched = plan(kp, group_size, m, two_level)
    wide = block_n == 4 * ROWS and sched["SPG"] == 0  # (one int32 sum over K: never the lagged schedule)
    if wide:
        sched["DS"] = True  # (per channel above DIRECT_SCALES rows too: one load of the scales per tile)
    elif block_n != 2 * ROWS:  # 256 rows asked for, per-group sums: 128-row tiles with as many ring slots as fit
        max_stages = 1 << 30
    rows_n = 4 * ROWS if wide else 2 * ROWS
    per_stage = sched["KSUB"] * (block_m * SUB + rows_n * SUB // 2 + 2 * ROWS * 4)  # activation tiles, packed weights, scale rows
    stages = max(2, min(max_stages, (smem - (8 << 10)) // per_stage))
    tiles = -(-m // block_m) * -(-n // rows_n)
    programs = min(tiles, sms)
    sk = stream_k(tiles, programs) and not wide and not sched["LAG"]
    return types.MappingProxyType(sched), wide, rows_n, stages, programs, sk  # (read-only: the cache shares it)


def swap_gemm(a, qweight, scales, sx, sx_mode, bias, out, group_size: int, block_m: int, max_stages: int, group_m: int,
              channel_scales=None, block_n: int = 2 * ROWS) -> None:
    """`out = a @ unpack(qweight)^T` with group, activation scales and bias (the semantics of
    `triton_prefill._gemm_kernel`), by `_swap_kernel`. `a`: the (M, K) int8 activation buffer of
    `quantize_activation_triton`; `qweight`: QuantLinear's (N, K // 2) packed symmetric int4 weights; `scales`:
    its (N, groups) group scales as stored (read by the kernel with DIRECT_SCALES, else copied into fp32 scale
    rows, `gluon_prefill.scale_rows`); `max_stages`: ring slots at most (fewer where the GPU's shared memory is
    smaller); `channel_scales`: the (N,) fp16 channel scales of two-level scales, or None (TL, see `plan`); `block_n`:
    weight rows per tile, 128 or 256 (WIDE: one int32 sum over K per output only — two-level scales or per channel —
    else 128)."""
    SwapLaunch(a, qweight, scales, sx_mode, bias, group_size, block_m, max_stages, group_m, channel_scales,
               block_n).run(a, sx, out)


class SwapLaunch:
    """`swap_gemm`'s host decisions for an (M, Kp) int8 activation buffer like `a` and one layer: the schedule, the
    weight and scale descriptors, the constexprs; `run(a, sx, out)` launches on a call's buffers. `keepable`: nothing
    in it depends on the values of `scales` (the kernel reads the layer's own scales: DS), so the launch may be kept
    across calls (`triton_w4a8`'s launch plans, which set `kept`); otherwise the fp32 scale rows made here are this
    call's. `pdl`: launched as a programmatic dependent of the kernel before (the quantization kernel, which triggers
    it early): the loader requests its first slots' weights before waiting for that kernel (not with stream-K or scale
    rows: then another kernel runs in between)."""

    __slots__ = ("programs", "sk", "x_desc", "w_desc", "s_desc", "rows", "scales", "held", "bias", "chan", "constexprs",
                 "ints", "key", "keepable", "kept", "options")

    def __init__(self, a, qweight, scales, sx_mode, bias, group_size: int, block_m: int, max_stages: int, group_m: int,
                 channel_scales=None, block_n: int = 2 * ROWS, pdl: bool = False):
        m, kp = a.shape
        n = qweight.shape[0]
        two_level = channel_scales is not None and USE_TWO_LEVEL
        sms = gluon_prefill._sm_count(a.device.index)  # (the module's: tests patch it)
        sched, wide, rows_n, stages, programs, sk = _schedule(m, kp, n, group_size, two_level, block_m, block_n,
                                                              max_stages, _shared_memory(a), sms, _settings())
        self.x_desc = tma_desc(a, (block_m, SUB), gl.int8)
        self.w_desc = TensorDescriptor.from_tensor(qweight, [rows_n, SUB // 2], _packed_layout())
        layer_scales = scales
        if sched["DS"]:
            scales = scales if scales.stride(1) == 1 else scales.contiguous()
            rows, self.s_desc = _no_rows(a.device.index)
        else:
            rows = gluon_prefill.scale_rows(scales, torch.float32)
            self.s_desc = scale_desc(rows, n, 2 * ROWS)
            scales = rows  # (not read; nor its stride, passed as 0)
        self.keepable = bool(sched["DS"]) and scales is layer_scales  # (nothing of the scales' values held)
        self.held = layer_scales  # (a kept launch keeps the layer's tensor alive: plans key on its id, not the view's)
        if sched["TL"] == 4:  # (the loader copies a slot's two fp16 groups of a row as one int32, 4-byte aligned)
            if scales.dtype != torch.float16:
                raise ValueError(f"two-level group scales must be fp16, got {scales.dtype}")
            if scales.stride(0) % 2 or scales.storage_offset() % 2 or scales.data_ptr() % 4:
                scales = scales.clone(memory_format=torch.contiguous_format)  # (a fresh, aligned copy)
                self.keepable = False
            scales = scales.view(torch.int32)
        self.kept = False  # set by a plan that keeps this launch: its descriptors are encoded once
        self.programs, self.sk, self.rows = programs, sk, rows
        self.scales, self.bias = scales, (bias if bias is not None else rows)
        self.chan = channel_scales if sched["TL"] else rows
        self.constexprs = dict(GROUP=min(group_size, kp), SX_MODE=sx_mode, HAS_BIAS=bias is not None, GROUP_M=group_m,
                               STAGES=stages, **sched, SK=sk, WIDE=wide, CONSUMER_REGS=232)
        # PDL only where the quantization kernel is the one right before: not with stream-K (a memset of its flags runs
        # between; run 151: ops 3-5 % slower with PDL), nor with scale rows or a copy of the scales (made by a copy
        # kernel in between, which the loader would read before the wait)
        pdl = pdl and not sk and bool(sched["DS"]) and scales.data_ptr() == layer_scales.data_ptr()
        self.constexprs["PDL"] = pdl
        if TRIGGER:
            self.constexprs["TRIGGER"] = True
        self.options = {"num_warps": 4, "maxnreg": 168, **({"launch_pdl": True} if pdl else {})}
        self.ints = (m, n, kp)
        self.key = None

    def run(self, a, sx, out, same_key: bool = False) -> None:
        """Launch on the activation buffer `a` (the planned shape; a fresh one where the launch is kept), its scales
        `sx` (or None), the output `out`. `same_key`: the buffers' alignment and `out`'s row stride are the previous
        run's (fresh buffers)."""
        rows = self.rows
        x_desc = launch.rebased(self.x_desc, a)  # (the planned descriptor on this call's buffer; none kept with it)
        # (SK) the workspace of the handed-over partial sums (2 x 64 x 128 int32 per program) and its flags, zeroed per
        # call (one small memset against a 40-90 µs op: no state shared between launches or streams)
        ws = flags = rows
        if self.sk:
            ws = torch.empty(self.programs * 2 * ROWS * 128 + 2 * self.programs, dtype=torch.int32, device=a.device)
            flags = ws[self.programs * 2 * ROWS * 128:].zero_()
        sx = sx if sx is not None else rows
        scales = self.scales
        args = (x_desc, self.w_desc, self.s_desc, sx, self.bias, out, scales, self.chan, ws, flags, *self.ints,
                out.stride(0), scales.stride(0) if self.constexprs["DS"] else 0)
        # what Triton specializes on: the constexprs, the descriptors' dtypes / shapes / strides, the integers, the
        # pointers' types and alignment
        key = self.key if same_key else None
        if key is None:
            key = (tuple(self.constexprs.values()), *map(launch.descriptor_key, args[:3]), args[10:], sx.dtype,
                   self.bias.dtype, out.dtype, scales.dtype, self.chan.dtype, ws.dtype,
                   launch.alignment(sx, self.bias, out, scales, self.chan, ws, flags, rows, a, self.w_desc.base))
            if same_key:
                self.key = key
        launch.launch(_swap_kernel, (self.programs,), key, args, self.constexprs, self.options,
                      kept=(1, 2) if self.kept else ())  # (the weight and scale descriptors: this object's)

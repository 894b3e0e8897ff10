"""Prefill GEMM (large M, int8 / fp8 operands) for Hopper in Gluon, warp-specialized.

(For int8 activations with symmetric weights and groups of 128 or more — FPTQ's default format — the
installed prefill kernel is `gluon_swap`, which reads the packed weights without this kernel's unpack
pass; this one serves fp8 activations, zero points and groups of 64.)

The unpacked-weight GEMM of `triton_prefill` needs, per group of K columns, an exact partial sum
(int32) scaled by its group scale into an fp32 accumulator: three ALU operations per output
element and step against 128 MACs of int8 MMA, about three quarters of the tensor cores' time
on a Hopper SM. In one partition every schedule tried (runs 20-25, benchmarks/GPU_NOTES.md) left
the warps alternating between MMA and scaling, in lockstep through the per-step barrier that
guards the shared-memory ring; the kernels reached ~0.9x of cuBLAS fp16.

Here the work is split by role, so that no CTA-wide barrier ties the two halves of a tile together:
- a loader warp issues the TMA loads of a ring of STAGES slots, each holding KSUB (2) K steps: per
  step the two 64-row halves of the activation tile, the weight tile and the step's row of group
  scales, all on the slot's mbarrier;
- two consumer warpgroups each own 64 rows of the 128-row tile: wait for a slot, per step issue
  their wgmma and scale the previous step's partial sums while it runs (LAG_SCALING; fp32 scale rows),
  then release the slot once its last partial sums are scaled (an "empty" mbarrier that both must
  arrive at before the loader refills it);
- the kernel is persistent (one CTA per SM walks the tiles in grouped order), so the loader fills
  the ring for the next tile while the consumers store the last one;
- optionally (FUSED_UNPACK, off by default) a fourth partition expands the packed int4 weights into
  the int8 operand tile in shared memory, so no separate unpack pass runs before the kernel.
Register budget: each consumer holds its fp32 accumulator and two int32 partial sums (the step being
scaled and the one in the tensor cores: 3 x 64 registers at 128 columns) plus a row of scales;
`setmaxnreg` gives them the registers the loader warp does not need. Measured (benchmarks/GPU_NOTES.md,
runs 47-75): bit-identical to the Triton kernel; at M = 4096 1.08-1.22x cuBLAS fp16 with int8 operands,
1.22-1.35x with fp8 (the Triton kernel 0.86-0.94x); tensor pipe ~45 % busy, the consumers' time in the
group scaling and the shared-memory pipe (wgmma operand reads, TMA writes, scale rows). Releasing a slot only
after its scale rows are used needs no proxy fence (Triton puts a partition barrier before the
single-thread arrive, which orders the shared-memory loads before it); the fence it replaced cost
3-13 %. Two K steps per slot halve those barrier round trips (+9-11 %); the lagged scaling took
0-11 % more (run 65). A tensor-core hand-off between the consumers (ping-pong), a consumer carrying an
in-flight wgmma across its loop (ptxas then serializes every wgmma) and column halves pipelined inside a
consumer (run 64) measured slower or did not compile cleanly.
"""

import functools  # (no `from __future__ import annotations`: the aggregate below reads its annotations as types)

import torch

try:
    import triton
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import (
        fence_async_shared,
        mbarrier,
        tma,
        warpgroup_mma,
        warpgroup_mma_wait,
    )
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor
    from triton.language.core import _aggregate as aggregate
except Exception:  # pragma: no cover - no Triton, or an older / changed Gluon
    gluon = None

HALF_M = 64  # rows per consumer warpgroup (one wgmma M)
# Symmetric int4 weights with int8 activations can be expanded inside the kernel (a fourth partition)
# instead of by a separate pass over the weights before it (`triton_prefill.unpack_weights`), up to
# FUSED_MAX_M rows. Off by default: with two K steps per slot the pass + kernel measured faster at every
# M from 1024 on but one shape (run 60: M = 1024 4096² 67.5 vs 75.6 µs, 70B gate/up 771 vs 739; at
# M = 2048-4096 the fused kernel is 10-20 % slower, a fourth warpgroup competing for issue slots).
FUSED_UNPACK = False
FUSED_MAX_M = 1024
# K steps per ring slot (unpacked weights): one "ready" wait and one release per K_PER_SLOT steps.
K_PER_SLOT = 2
# Each step's group scaling under the next step's MMA of the same warpgroup (`_ws_consumer_lagged`; needs
# the fp32 scale rows of `ws_rows`: with fp16 rows the conversions spill registers and it ran 2x slower, run 65).
LAG_SCALING = True
_HALF_M = gl.constexpr(HALF_M) if gluon is not None else None

if gluon is not None:
    try:  # (on its own: the decode kernels need only this of the module)

        @gluon.jit
        def gdc_wait():
            """`griddepcontrol.wait`: under programmatic dependent launch, wait until the kernel before (the
            quantization kernel) has finished and its writes are visible to this grid (at once otherwise)."""
            gl.inline_asm_elementwise("griddepcontrol.wait; // dummy $0", "=r", [], dtype=gl.int32, is_pure=False, pack=1)

        @gluon.jit
        def gdc_launch_dependents():
            """`griddepcontrol.launch_dependents`: the kernel launched after this one as a programmatic dependent may
            start once every program of this grid has passed here (or exited). It only lets that kernel's programs
            be placed early: their `gdc_wait` still waits for this whole grid and its writes."""
            gl.inline_asm_elementwise("griddepcontrol.launch_dependents; // dummy $0", "=r", [], dtype=gl.int32,
                                      is_pure=False, pack=1)

    except Exception:  # pragma: no cover - a Gluon API this code does not know
        gluon = None

if gluon is not None:
    try:

        @aggregate
        class _Args:
            """What every partition gets, as one aggregate: the TMA descriptors, the shared-memory ring and
            its barriers, the epilogue's pointers and sizes, and the compile-time settings as constexpr
            fields (plain constexpr arguments of `warp_specialize` become captured values, which Triton
            3.6 fails to lower in some combinations)."""

            a_desc: tma.tensor_descriptor
            b_desc: tma.tensor_descriptor
            s_desc: tma.tensor_descriptor
            a_smem: gl.shared_memory_descriptor
            b_smem: gl.shared_memory_descriptor
            s_smem: gl.shared_memory_descriptor
            p_smem: gl.shared_memory_descriptor
            ready: gl.shared_memory_descriptor
            empty: gl.shared_memory_descriptor
            bready: gl.shared_memory_descriptor
            sx_ptr: gl.tensor
            bias_ptr: gl.tensor
            out_ptr: gl.tensor
            M: gl.tensor
            N: gl.tensor
            Kp: gl.tensor
            stride_om: gl.tensor
            GROUP: gl.constexpr
            SX_MODE: gl.constexpr
            HAS_BIAS: gl.constexpr
            GROUP_M: gl.constexpr
            INT_PER_CHANNEL: gl.constexpr
            FUSED: gl.constexpr
            KSUB: gl.constexpr
            LAG: gl.constexpr

            @gluon.constexpr_function
            def __init__(
                self,
                a_desc,
                b_desc,
                s_desc,
                a_smem,
                b_smem,
                s_smem,
                p_smem,
                ready,
                empty,
                bready,
                sx_ptr,
                bias_ptr,
                out_ptr,
                M,
                N,
                Kp,
                stride_om,
                GROUP,
                SX_MODE,
                HAS_BIAS,
                GROUP_M,
                INT_PER_CHANNEL,
                FUSED,
                KSUB,
                LAG,
            ):
                self.a_desc = a_desc
                self.b_desc = b_desc
                self.s_desc = s_desc
                self.a_smem = a_smem
                self.b_smem = b_smem
                self.s_smem = s_smem
                self.p_smem = p_smem
                self.ready = ready
                self.empty = empty
                self.bready = bready
                self.sx_ptr = sx_ptr
                self.bias_ptr = bias_ptr
                self.out_ptr = out_ptr
                self.M = M
                self.N = N
                self.Kp = Kp
                self.stride_om = stride_om
                self.GROUP = gl.constexpr(GROUP)
                self.SX_MODE = gl.constexpr(SX_MODE)
                self.HAS_BIAS = gl.constexpr(HAS_BIAS)
                self.GROUP_M = gl.constexpr(GROUP_M)
                self.INT_PER_CHANNEL = gl.constexpr(INT_PER_CHANNEL)
                self.FUSED = gl.constexpr(FUSED)
                self.KSUB = gl.constexpr(KSUB)
                self.LAG = gl.constexpr(LAG)

        @gluon.jit
        def _tile(t, M, N, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, GROUP_M: gl.constexpr):
            """Offsets of tile `t` in grouped order (GROUP_M row tiles share their weight columns in L2)."""
            num_pid_m = (M + BLOCK_M - 1) // BLOCK_M
            num_pid_n = (N + BLOCK_N - 1) // BLOCK_N
            num_in_group = GROUP_M * num_pid_n
            first_m = (t // num_in_group) * GROUP_M
            group_rows = gl.minimum(num_pid_m - first_m, GROUP_M)
            off_m = (first_m + ((t % num_in_group) % group_rows)) * BLOCK_M
            off_n = ((t % num_in_group) // group_rows) * BLOCK_N
            return off_m, off_n

        @gluon.jit
        def _num_tiles(p):
            """128 x BLOCK_N output tiles of the launch (every partition walks the same ones)."""
            BLOCK_N: gl.constexpr = p.b_desc.block_type.shape[0]
            return ((p.M + 2 * _HALF_M - 1) // (2 * _HALF_M)) * ((p.N + BLOCK_N - 1) // BLOCK_N)

        @gluon.jit
        def _ws_loader(p):
            """One warp: TMA loads of every K step of every tile of this CTA into the ring, a slot at a
            time once both consumers have released it."""
            STAGES: gl.constexpr = p.ready.shape[0]
            BLOCK_N: gl.constexpr = p.b_desc.block_type.shape[0]
            SUB: gl.constexpr = p.a_desc.block_type.shape[1]
            nbytes: gl.constexpr = p.KSUB * (2 * p.a_desc.block_type.nbytes + p.b_desc.block_type.nbytes + p.s_desc.block_type.nbytes)
            it = 0
            for t in range(gl.program_id(0), _num_tiles(p), gl.num_programs(0)):
                off_m, off_n = _tile(t, p.M, p.N, 2 * _HALF_M, BLOCK_N, p.GROUP_M)
                for st in range(0, p.Kp // SUB // p.KSUB):
                    slot = it % STAGES
                    # the empty barriers start "released" (phase 1 complete): the first pass does not wait
                    mbarrier.wait(p.empty.index(slot), ((it // STAGES) & 1) ^ 1)
                    bar = p.ready.index(slot)
                    mbarrier.expect(bar, nbytes)
                    for u in gl.static_range(p.KSUB):  # the slot's K steps
                        step = st * p.KSUB + u
                        j = slot * p.KSUB + u
                        tma.async_copy_global_to_shared(p.a_desc, [off_m, step * SUB], bar, p.a_smem.index(2 * j))
                        tma.async_copy_global_to_shared(p.a_desc, [off_m + _HALF_M, step * SUB], bar, p.a_smem.index(2 * j + 1))
                        if p.FUSED:  # the packed int4 bytes: the unpack partition expands them into b_smem
                            tma.async_copy_global_to_shared(p.b_desc, [off_n, step * (SUB // 2)], bar, p.p_smem.index(j))
                        else:
                            tma.async_copy_global_to_shared(p.b_desc, [off_n, step * SUB], bar, p.b_smem.index(j))
                        tma.async_copy_global_to_shared(p.s_desc, [(step * SUB) // p.GROUP, off_n], bar, p.s_smem.index(j))
                    it += 1

        @gluon.jit
        def _ws_consumer(p, WG: gl.constexpr):
            """One consumer warpgroup: rows [WG * 64, WG * 64 + 64) of every tile."""
            if p.LAG and not p.INT_PER_CHANNEL:
                _ws_consumer_lagged(p, WG)
            else:
                _ws_consumer_plain(p, WG)

        @gluon.jit
        def _store_tile(p, acc, off_m, off_n):
            """Activation scale, bias and the store of a consumer's (64, BLOCK_N) accumulator at (off_m, off_n)."""
            layout: gl.constexpr = acc.type.layout
            offs_m = off_m + gl.arange(0, acc.shape[0], layout=gl.SliceLayout(1, layout))
            offs_n = off_n + gl.arange(0, acc.shape[1], layout=gl.SliceLayout(0, layout))
            _epilogue(acc, offs_m, offs_n, p.sx_ptr, p.bias_ptr, p.out_ptr, p.M, p.N, p.stride_om, p.SX_MODE, p.HAS_BIAS)

        @gluon.jit
        def _wait_slot(p, slot, phase):
            """Until the slot's TMA loads landed (fused: and its weights were unpacked)."""
            mbarrier.wait(p.ready.index(slot), phase)
            if p.FUSED:
                mbarrier.wait(p.bready.index(slot), phase)

        @gluon.jit
        def _scales(p, j, like):
            """Row `j` of group scales, `(1, BLOCK_N)` in the layout of `like` (an accumulator). (Rows permuted so
            that each thread's columns are contiguous, loaded as 16-byte vectors, ran 50 % slower, run 76.)"""
            return p.s_smem.index(j).load(like.type.layout)

        @gluon.jit
        def _scale_step(p, acc, part, j):
            """acc + the partial sums of the K step in buffer `j` times its row of group scales."""
            s = _scales(p, j, acc)
            return acc + _as_fp32(part, p.a_desc.dtype == gl.int8) * s.to(gl.float32)

        @gluon.jit
        def _lagged_slot(p, WG: gl.constexpr, it, acc, carry, spare, FIRST: gl.constexpr):
            """The K steps of ring slot `it % STAGES`, the scaling one step behind the MMA: issue step u's wgmma
            (into the dead register set `spare`), scale step u - 1's partial sums (`carry`, complete) while it
            runs, then wait for it. Only complete partial sums cross the runtime loop (an in-flight wgmma
            carried around it makes ptxas serialize every wgmma of the kernel, C7514). Unless FIRST (the tile's
            first slot), `carry` is the previous slot's last step, and that slot is released once it is scaled."""
            STAGES: gl.constexpr = p.ready.shape[0]
            slot = it % STAGES
            _wait_slot(p, slot, (it // STAGES) & 1)
            for u in gl.static_range(p.KSUB):
                j = slot * p.KSUB + u
                d = warpgroup_mma(p.a_smem.index(2 * j + WG), p.b_smem.index(j).permute((1, 0)), spare, use_acc=False, is_async=True)
                if u > 0:
                    acc = _scale_step(p, acc, carry, j - 1)
                elif not FIRST:
                    prev = (it - 1) % STAGES
                    acc = _scale_step(p, acc, carry, prev * p.KSUB + p.KSUB - 1)
                    mbarrier.arrive(p.empty.index(prev), count=1)  # see `_ws_consumer_plain` (no proxy fence)
                spare = carry
                carry = warpgroup_mma_wait(num_outstanding=0, deps=(d,))
            return acc, carry, spare

        @gluon.jit
        def _ws_consumer_lagged(p, WG: gl.constexpr):
            """`_ws_consumer_plain` (group scaling) with each step's scaling under the next step's MMA of the
            same warpgroup (`_lagged_slot`), not only under the other warpgroup's."""
            STAGES: gl.constexpr = p.ready.shape[0]
            BLOCK_N: gl.constexpr = p.b_desc.block_type.shape[0]
            SUB: gl.constexpr = p.a_desc.block_type.shape[1]
            mma: gl.constexpr = gl.NVMMADistributedLayout(
                version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BLOCK_N, 256 // p.a_desc.dtype.primitive_bitwidth]
            )
            part_ty: gl.constexpr = gl.int32 if p.a_desc.dtype == gl.int8 else gl.float32
            it = 0
            for t in range(gl.program_id(0), _num_tiles(p), gl.num_programs(0)):
                off_m, off_n = _tile(t, p.M, p.N, 2 * _HALF_M, BLOCK_N, p.GROUP_M)
                acc = gl.zeros([_HALF_M, BLOCK_N], gl.float32, mma)
                carry = gl.zeros([_HALF_M, BLOCK_N], part_ty, mma)
                spare = gl.zeros([_HALF_M, BLOCK_N], part_ty, mma)
                acc, carry, spare = _lagged_slot(p, WG, it, acc, carry, spare, True)
                it += 1
                for _ in range(1, p.Kp // SUB // p.KSUB):
                    acc, carry, spare = _lagged_slot(p, WG, it, acc, carry, spare, False)
                    it += 1
                last = (it - 1) % STAGES
                acc = _scale_step(p, acc, carry, last * p.KSUB + p.KSUB - 1)
                mbarrier.arrive(p.empty.index(last), count=1)
                _store_tile(p, acc, off_m + WG * _HALF_M, off_n)

        @gluon.jit
        def _ws_consumer_plain(p, WG: gl.constexpr):
            """One warpgroup: rows [WG * 64, WG * 64 + 64) of every tile. Per step: wgmma of its activation
            half against the weight tile, group scaling into the fp32 accumulator; per slot, its release."""
            STAGES: gl.constexpr = p.ready.shape[0]
            BLOCK_N: gl.constexpr = p.b_desc.block_type.shape[0]
            SUB: gl.constexpr = p.a_desc.block_type.shape[1]
            IS_INT: gl.constexpr = p.a_desc.dtype == gl.int8
            mma: gl.constexpr = gl.NVMMADistributedLayout(
                version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BLOCK_N, 256 // p.a_desc.dtype.primitive_bitwidth]
            )
            it = 0
            for t in range(gl.program_id(0), _num_tiles(p), gl.num_programs(0)):
                off_m, off_n = _tile(t, p.M, p.N, 2 * _HALF_M, BLOCK_N, p.GROUP_M)
                acc = gl.zeros([_HALF_M, BLOCK_N], gl.float32, mma)
                part = gl.zeros([_HALF_M, BLOCK_N], gl.int32 if IS_INT else gl.float32, mma)
                s_cur = gl.zeros([1, BLOCK_N], p.s_smem.dtype, mma)
                for st in range(0, p.Kp // SUB // p.KSUB):
                    slot = it % STAGES
                    mbarrier.wait(p.ready.index(slot), (it // STAGES) & 1)
                    if p.FUSED:  # and for the unpacked weights
                        mbarrier.wait(p.bready.index(slot), (it // STAGES) & 1)
                    for u in gl.static_range(p.KSUB):  # the slot's K steps
                        j = slot * p.KSUB + u
                        a_half = p.a_smem.index(2 * j + WG)
                        b_t = p.b_smem.index(j).permute((1, 0))
                        if p.INT_PER_CHANNEL:  # one int32 sum over all of K, scaled once after the loop
                            part = warpgroup_mma(a_half, b_t, part, use_acc=st * p.KSUB + u > 0)
                            s_cur = _scales(p, j, part)
                        else:
                            d = warpgroup_mma(a_half, b_t, part, use_acc=False, is_async=True)
                            s_cur = _scales(p, j, acc)  # while the MMA runs
                            part = warpgroup_mma_wait(num_outstanding=0, deps=(d,))
                            acc = acc + _as_fp32(part, IS_INT) * s_cur.to(gl.float32)
                    # Released after the scaling: the partition barrier Triton puts before the single-thread arrive
                    # orders this warpgroup's shared-memory loads of the scale rows before it, so the loader's TMA
                    # refill needs no proxy fence here (a `fence.proxy.async` before an earlier release put a
                    # MEMBAR.ALL.CTA in every step and cost 3-13 %, run 49). Both consumers must arrive.
                    mbarrier.arrive(p.empty.index(slot), count=1)
                    it += 1
                if p.INT_PER_CHANNEL:
                    acc = part.to(gl.float32) * s_cur.to(gl.float32)
                _store_tile(p, acc, off_m + WG * _HALF_M, off_n)

        @gluon.jit
        def _ws_consumer1(p):
            _ws_consumer(p, 1)

        @gluon.jit
        def _ws_unpacker(p):
            """One warpgroup (fused mode): per K step, the packed int4 tile that TMA brought (BLOCK_N x SUB/2
            bytes) expanded into the int8 `code - 8` operand tile of the consumers' wgmma, low nibbles (the
            step's even columns) into its first SUB/2 columns and high nibbles into the rest, matching the
            activation buffer's permuted order. The slot's B tile is free again once the loader could refill
            the slot (the loader waits for both consumers first), so the "ready" barrier is the only wait."""
            STAGES: gl.constexpr = p.ready.shape[0]
            HALF: gl.constexpr = p.b_desc.block_type.shape[1]
            p_l: gl.constexpr = gl.BlockedLayout([1, 16], [32 * 16 // HALF, HALF // 16], [4, 1], [1, 0])
            it = 0
            for _t in range(gl.program_id(0), _num_tiles(p), gl.num_programs(0)):
                for _ in range(0, p.Kp // (2 * HALF) // p.KSUB):
                    slot = it % STAGES
                    mbarrier.wait(p.ready.index(slot), (it // STAGES) & 1)
                    for u in gl.static_range(p.KSUB):
                        j = slot * p.KSUB + u
                        wb = p.p_smem.index(j).load(p_l)
                        b = p.b_smem.index(j)
                        b.slice(0, HALF, dim=1).store(
                            gl.inline_asm_elementwise(UNPACK_LO, "=r,r", [wb], dtype=gl.int8, is_pure=True, pack=4)
                        )
                        b.slice(HALF, HALF, dim=1).store(
                            gl.inline_asm_elementwise(UNPACK_HI, "=r,r", [wb], dtype=gl.int8, is_pure=True, pack=4)
                        )
                    fence_async_shared()  # generic stores before the consumers' wgmma (async proxy) reads
                    mbarrier.arrive(p.bready.index(slot), count=1)
                    it += 1

        @gluon.jit
        def _gemm_ws_kernel(
            a_desc,  # TMA descriptor of the (M, Kp) activation buffer, block (64, SUB)
            b_desc,  # TMA descriptor of the (N, Kp) unpacked weights, block (BLOCK_N, SUB); FUSED: of the packed
            # (N, K // 2) uint8 weights, block (BLOCK_N, SUB // 2)
            s_desc,  # TMA descriptor of the (groups, N) group scale rows (`scale_rows`), block (1, BLOCK_N)
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
            INT_PER_CHANNEL: gl.constexpr,  # int8 operands, one weight scale per column: no per-step scaling
            FUSED: gl.constexpr,  # b_desc: the packed int4 weights (symmetric, int8 operands), unpacked in the kernel
            KSUB: gl.constexpr,  # K steps per ring slot: fewer barrier round trips per MMA
            LAG: gl.constexpr,  # group scaling one step behind the MMA (`_ws_consumer_lagged`)
            STAGES: gl.constexpr,  # ring slots
            CONSUMER_REGS: gl.constexpr,
            UNPACK_REGS: gl.constexpr,
            num_warps: gl.constexpr,
        ):
            """Persistent warp-specialized GEMM: 128 x BLOCK_N tiles, the default partition (4 warps) and
            a worker warpgroup consume the two row halves, a worker warp loads (FUSED: and a worker
            warpgroup unpacks)."""
            SUB: gl.constexpr = a_desc.block_type.shape[1]
            BLOCK_N: gl.constexpr = b_desc.block_type.shape[0]
            a_smem = gl.allocate_shared_memory(a_desc.dtype, [2 * STAGES * KSUB, _HALF_M, SUB], a_desc.layout)
            s_smem = gl.allocate_shared_memory(s_desc.dtype, [STAGES * KSUB] + s_desc.block_type.shape, s_desc.layout)
            ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
            empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
            if FUSED:  # packed tiles by TMA, int8 tiles written by the unpack partition
                p_smem = gl.allocate_shared_memory(b_desc.dtype, [STAGES * KSUB] + b_desc.block_type.shape, b_desc.layout)
                b_smem = gl.allocate_shared_memory(
                    gl.int8,
                    [STAGES * KSUB, BLOCK_N, SUB],
                    gl.NVMMASharedLayout(swizzle_byte_width=128 if SUB == 128 else 64, element_bitwidth=8, rank=2),
                )
                bready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
            else:
                b_smem = gl.allocate_shared_memory(b_desc.dtype, [STAGES * KSUB] + b_desc.block_type.shape, b_desc.layout)
                p_smem = b_smem  # unused
                bready = ready  # unused
            for i in gl.static_range(STAGES):
                mbarrier.init(ready.index(i), count=1)
                mbarrier.init(empty.index(i), count=2)  # one arrival per consumer warpgroup
                if FUSED:
                    mbarrier.init(bready.index(i), count=1)
            p = _Args(
                a_desc,
                b_desc,
                s_desc,
                a_smem,
                b_smem,
                s_smem,
                p_smem,
                ready,
                empty,
                bready,
                sx_ptr,
                bias_ptr,
                out_ptr,
                M,
                N,
                Kp,
                stride_om,
                GROUP,
                SX_MODE,
                HAS_BIAS,
                GROUP_M,
                INT_PER_CHANNEL,
                FUSED,
                KSUB,
                LAG,
            )
            if FUSED:
                gl.warp_specialize(
                    [(_ws_consumer, (p, 0)), (_ws_consumer1, (p,)), (_ws_unpacker, (p,)), (_ws_loader, (p,))],
                    [4, 4, 1],
                    [CONSUMER_REGS, UNPACK_REGS, 24],
                )
            else:
                gl.warp_specialize([(_ws_consumer, (p, 0)), (_ws_consumer1, (p,)), (_ws_loader, (p,))], [4, 1], [CONSUMER_REGS, 24])
    except Exception:  # pragma: no cover - a Gluon API this code does not know
        gluon = None


@functools.cache
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


_PACKED_LAYOUT = gl.NVMMASharedLayout(swizzle_byte_width=0, element_bitwidth=8, rank=2) if gluon is not None else None


@functools.cache
def _smem_layout(block: tuple, dtype):
    """NVMMA shared layout of a TMA block (cached: built on every launch otherwise)."""
    return gl.NVMMASharedLayout.get_default_for(list(block), dtype)


def tma_desc(t: torch.Tensor, block: tuple, dtype) -> "TensorDescriptor":
    """Host TMA descriptor of `t` in `block`s with the default NVMMA (swizzled) shared layout."""
    return TensorDescriptor.from_tensor(t, list(block), _smem_layout(block, dtype))


def scale_desc(rows: torch.Tensor, n: int, block_n: int) -> "TensorDescriptor":
    """Host TMA descriptor of `scale_rows` output (its first n columns, or whole `block_n` blocks of permuted
    `ws_rows`), one (1, block_n) row per load."""
    s_gl = {torch.float16: gl.float16, torch.bfloat16: gl.bfloat16, torch.float32: gl.float32}[rows.dtype]
    return TensorDescriptor(rows, [rows.shape[0], n], [rows.stride(0), 1], [1, block_n], _smem_layout((1, block_n), s_gl))


def fused_ok(a: torch.Tensor, qweight: torch.Tensor, zeros, k: int) -> bool:
    """Whether `ws_gemm(fused=True)` takes these operands: at most FUSED_MAX_M rows of int8 activations,
    symmetric weights (no zero points) whose packed rows TMA can address (K / 2 bytes, a multiple of 16)."""
    return (
        FUSED_UNPACK
        and a.shape[0] <= FUSED_MAX_M
        and a.dtype == torch.int8
        and zeros is None
        and k % 32 == 0
        and qweight.stride(1) == 1
        and qweight.stride(0) % 16 == 0
        and qweight.data_ptr() % 16 == 0
    )


def scale_rows(scales: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The `(N, groups)` group scales as `(groups, N)` rows (padded to 16 bytes, as TMA needs), in their
    stored type (or `dtype`), which the kernel's loader brings into shared memory one row per K step.
    Made on every call (one small copy kernel): a copy kept on the scales tensor went stale or crashed with CUDA-graph
    replays after an in-place change, torch.compile's CUDA-graph pools, inference tensors (no version
    counter) and deep copies (review of session 7)."""
    groups, n = scales.shape[1], scales.shape[0]
    dtype = dtype or scales.dtype
    per16 = 16 // dtype.itemsize
    rows = torch.empty(groups, -(-n // per16) * per16, dtype=dtype, device=scales.device)
    rows[:, :n] = scales.t()
    return rows


def lagged(slots: int) -> bool:
    """Whether `ws_gemm` with `slots` ring slots takes the lagged consumer (LAG_SCALING): it holds a slot until
    the next one has landed, so with a single slot it would wait for itself (review of session 8)."""
    return LAG_SCALING and slots >= 2


def ws_rows(scales: torch.Tensor) -> torch.Tensor:
    """The scale rows `ws_gemm` reads: `scale_rows` in fp32 (no conversion per element and step in the
    kernel: 64 of ~580 instructions per ring slot and consumer thread)."""
    return scale_rows(scales, torch.float32)


def ws_gemm(
    a,
    b,
    rows,
    sx,
    sx_mode,
    bias,
    out,
    group_size,
    sub,
    block_n: int,
    stages: int,
    group_m: int,
    fused: bool = False,
) -> None:
    """`out = a @ b^T` with group, activation scales and bias (the semantics of
    `triton_prefill._gemm_kernel`) by `_gemm_ws_kernel`; int8 or float8 e4m3 operands, Hopper only.
    `rows`: the group scales of `b`'s columns as `(groups, N)` rows (`scale_rows`, or a column slice of it).
    `fused`: `b` is the packed `(N, K // 2)` uint8 weight itself (symmetric, int8 activations, K a multiple
    of 32), expanded inside the kernel; else the unpacked `(N, Kp)` operand of `unpack_weights`.
    `stages`: K steps the ring holds (grouped K_PER_SLOT to a slot where the steps divide evenly)."""
    m, kp = a.shape
    n = b.shape[0]
    dt = gl.int8 if a.dtype == torch.int8 else gl.float8e4nv
    a_desc = tma_desc(a, (HALF_M, sub), dt)
    b_desc = TensorDescriptor.from_tensor(b, [block_n, sub // 2], _PACKED_LAYOUT) if fused else tma_desc(b, (block_n, sub), dt)
    s_desc = scale_desc(rows, n, block_n)
    ksub = K_PER_SLOT if (kp // sub) % K_PER_SLOT == 0 and stages >= 2 * K_PER_SLOT else 1
    tiles = triton.cdiv(m, 2 * HALF_M) * triton.cdiv(n, block_n)
    grid = (min(tiles, _sm_count(a.device.index)),)
    _gemm_ws_kernel[grid](
        a_desc,
        b_desc,
        s_desc,
        sx if sx is not None else rows,
        bias if bias is not None else rows,
        out,
        m,
        n,
        kp,
        out.stride(0),
        GROUP=group_size,
        SX_MODE=sx_mode,
        HAS_BIAS=bias is not None,
        GROUP_M=group_m,
        INT_PER_CHANNEL=a.dtype == torch.int8 and rows.shape[0] == 1,
        FUSED=fused,
        KSUB=ksub,
        LAG=lagged(stages // ksub),
        STAGES=stages // ksub,
        # registers per thread: 3 warpgroups (2 consumers, the loader's) at 168, or 4 with the unpack one at 128;
        # the consumers get what the others leave
        CONSUMER_REGS=208 if fused else 232,
        UNPACK_REGS=72,
        num_warps=4,
        maxnreg=128 if fused else 168,
    )


# `triton_prefill`'s helpers, read by the kernels above when they compile: imported last, so that this module is whole
# when `triton_prefill` (which imports this module and `gluon_swap` at its end) runs first from here and `gluon_swap`
# takes its names from this one (any import order of the kernel modules works)
try:
    from fptq.kernels.triton_prefill import UNPACK_HI, UNPACK_LO, _as_fp32, _epilogue  # noqa: E402, F401
except Exception:  # pragma: no cover - no Triton
    gluon = None

"""Offline compile check (no GPU) of the building blocks of a "swap A/B" prefill GEMM for Hopper: the int4
weights as the *register* operand of an int8 wgmma (C^T = W X^T), unpacked inside the kernel — no unpack pass
before it, half the weight bytes through shared memory — checked in session 8, not yet a kernel:

- int8 wgmma with A in registers lowers (`wgmma.mma_async.m64n128k32.s32.s8.s8` with 4 A registers);
- a packed (64 x 64 bytes) weight tile in shared memory, loaded in the layout the A operand needs taken back
  through the relabelling below, comes in by two `ldmatrix` per thread; the LOP3 unpack (`UNPACK_LO / _HI`)
  and a join / reshape / permute relabel it into the A dot-operand layout with no data movement (no
  `ld.shared` / `st.shared` beyond the tile's own), given a packing in which the byte at position 16 b + j
  of a row holds k = 32 b + j (low nibble) and 32 b + 16 + j (high nibble). QuantLinear's packing (k = 2 q,
  2 q + 1) also relabels without movement, but loads as 16 two-byte `ld.shared` per thread instead.

    PYTHONPATH=src python benchmarks/compile_swap_ab.py     # prints the shared-memory instruction counts
"""

import os
import re
import sys

os.environ.pop("TRITON_INTERPRET", None)
sys.path.insert(0, os.path.dirname(__file__))
import compile_sm90 as c
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import warpgroup_mma

from fptq.kernels.triton_prefill import UNPACK_HI, UNPACK_LO


@gluon.jit
def _relabel(lo, hi):
    # lo / hi: [64, 64] int8, position q = 16 b + j (b: k32 block, j < 16) -> k = 32 b + 16 h + j
    x = gl.join(lo, hi).reshape([64, 4, 16, 2]).permute((0, 1, 3, 2)).reshape([64, 128])
    return x

@gluon.jit
def k(p_ptr, x_ptr, out_ptr, num_warps: gl.constexpr):
    mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 128, 32])
    a_l: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma, k_width=4)
    # the packed layout: the dot layout taken back through the relabelling
    z = gl.zeros([64, 128], gl.int8, a_l).reshape([64, 4, 2, 16]).permute((0, 1, 3, 2)).reshape([64, 64, 2])
    zl, zh = gl.split(z)
    p_l: gl.constexpr = zl.type.layout
    blk: gl.constexpr = gl.BlockedLayout([1, 16], [4, 8], [4, 1], [1, 0])
    ps = gl.allocate_shared_memory(gl.uint8, [64, 64], gl.SwizzledSharedLayout(1, 1, 1, [1, 0]))
    pr = gl.arange(0, 64, layout=gl.SliceLayout(1, blk))
    pc = gl.arange(0, 64, layout=gl.SliceLayout(0, blk))
    ps.store(gl.load(p_ptr + pr[:, None] * 64 + pc[None, :]))
    pk = ps.load(p_l)
    lo = gl.inline_asm_elementwise(UNPACK_LO, "=r,r", [pk], dtype=gl.int8, is_pure=True, pack=4)
    hi = gl.inline_asm_elementwise(UNPACK_HI, "=r,r", [pk], dtype=gl.int8, is_pure=True, pack=4)
    a = gl.convert_layout(_relabel(lo, hi), a_l)
    xs = gl.allocate_shared_memory(gl.int8, [128, 128], gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=8, rank=2))
    xr = gl.arange(0, 128, layout=gl.SliceLayout(1, blk))
    xk = gl.arange(0, 128, layout=gl.SliceLayout(0, blk))
    xs.store(gl.load(x_ptr + xr[:, None] * 128 + xk[None, :]))
    acc = warpgroup_mma(a, xs.permute((1, 0)), gl.zeros([64, 128], gl.int32, mma), use_acc=False)
    orow = gl.arange(0, 64, layout=gl.SliceLayout(1, mma))
    ocol = gl.arange(0, 128, layout=gl.SliceLayout(0, mma))
    gl.store(out_ptr + orow[:, None] * 128 + ocol[None, :], acc)


def main() -> None:
    kk = c.compile_variant(k, {"p_ptr": "*u8", "x_ptr": "*i8", "out_ptr": "*i32"}, {"num_warps": 4}, 4, 1)
    ptx = kk.asm["ptx"]
    print("wgmma:", sorted(set(re.findall(r"wgmma\.mma_async[^ ]*", ptx))))
    print("ld.shared", len(re.findall(r"ld\.shared", ptx)), "st.shared", len(re.findall(r"st\.shared", ptx)),
          "ldmatrix", ptx.count("ldmatrix"), "(expected: 0 / 12 (the test's own tile stores) / 2)")


if __name__ == "__main__":
    main()

"""Runs 62 / 72 / 85: the activation-quantization kernel alone at prefill sizes (M = 2048 / 4096 rows, CUDA
graphs) by warps per program and one-pass limit (a row held in registers is padded to a power of two of
128-column chunks: K = 11008 becomes 16384); `--fma`: with the fma-corrected division (`QUANT_FMA_DIV`, run
72) and one row with `div.rn`; `--words`: fp16 rows read as int32 words of an even / odd pair
(`QUANT_WORDS`, run 85) against element loads, at both one-pass limits and 4 / 8 warps, K up to 28672.

    PYTHONPATH=src python3 benchmarks/probe_quant_large.py [--fma | --words | --shapes M:K,...]

`--shapes`: the installed settings only, at those shapes, each against its byte floor (session 20).
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import time_graph  # noqa: E402
from probe_quant import quant_only  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402


def at_shapes(spec: str) -> None:
    """The installed settings at the (M, K) shapes of `spec` ("M:K,..."), each against its byte floor (the fp16 rows
    read once, the int8 codes written once, at 3.35 TB/s)."""
    for pair in spec.split(","):
        m, k = map(int, pair.split(":"))
        us = quant_only(m, k)
        floor = m * k * 3 / 3.35e6
        cast = cast_only(m, k)
        print(f"M={m} K={k}: {us:.1f} us, byte floor {floor:.1f} us (x{us / floor:.2f}); a cast of the same bytes "
              f"{cast:.1f} us (x{us / cast:.2f})", flush=True)


def cast_only(m, k):
    """The same bytes moved by an elementwise kernel (fp16 rows in, int8 out: `x.to(torch.int8)`): what a
    memory-bound kernel of this size takes on the card, launch and tail included (session 26)."""
    def make(copies):
        xs = [torch.randn(m, k, device="cuda", dtype=torch.float16) for _ in range(copies)]
        return [lambda x=x: x.to(torch.int8) for x in xs]

    return time_graph(make, m * k * 3)


def passes() -> None:
    """Session 26: rows whose one-pass tile is padded to a power of two (K = 5120 held as 8192 columns, 11008 as
    16384) against two passes over unpadded blocks (ONE_PASS_MAX_K below K; PASS_BLOCK_K columns a block), codes
    compared with the installed setting's."""
    saved = tw.ONE_PASS_MAX_K, tw.PASS_BLOCK_K
    shapes = ((1024, 4096), (1024, 5120), (4096, 5120), (1024, 11008), (4096, 11008), (1024, 13824))
    xs = {mk: torch.randn(*mk, device="cuda", dtype=torch.float16) for mk in shapes}
    ref = {mk: tw.quantize_activation_triton(x, 128, "dynamic") for mk, x in xs.items()}
    for one_pass, block in (saved, (2048, 1024), (2048, 512), (2048, 2048), saved):
        tw.ONE_PASS_MAX_K, tw.PASS_BLOCK_K = one_pass, block
        same = all(all(torch.equal(a, b) for a, b in zip(tw.quantize_activation_triton(x, 128, "dynamic"), ref[mk]))
                   for mk, x in xs.items())
        row = {f"M={m} K={k}": quant_only(m, k) for m, k in shapes}
        print(f"one-pass <= {one_pass} block {block} ({'same codes' if same else 'DIFFERENT'}): "
              + "; ".join(f"{key} {us:.1f}us" for key, us in row.items()), flush=True)
    tw.ONE_PASS_MAX_K, tw.PASS_BLOCK_K = saved


def main() -> None:
    print("GPU", torch.cuda.get_device_name(), flush=True)
    if "--shapes" in sys.argv:
        return at_shapes(sys.argv[sys.argv.index("--shapes") + 1])
    if "--passes" in sys.argv:
        return passes()
    defaults = tw.QUANT_WARPS, tw.ONE_PASS_MAX_K, tw.QUANT_FMA_DIV, tw.QUANT_WORDS
    shapes = ((4096, 4096), (4096, 11008), (2048, 4096), (2048, 11008))
    if "--words" in sys.argv:
        shapes += ((2048, 28672), (1, 4096), (1, 11008), (16, 4096))  # (and decode sizes: several programs a row)
        settings = [(None, 16384, True, w) for w in (False, True)]  # element loads first, then words (the default)
        settings += [(w, op, True, True) for w, op in ((4, 16384), (8, 16384), (None, 4096), (8, 4096))]
    else:
        settings = [(w, op, True, False) for w, op in ((None, 16384), (4, 16384), (8, 16384), (None, 4096), (4, 4096), (8, 4096))]
        settings += [(None, 16384, False, False)]  # run 62's default: div.rn per element
        if "--fma" not in sys.argv:
            settings = [(w, op, False, False) for w, op, _, _ in settings]
    for warps, one_pass, fma, words in settings:
        tw.QUANT_WARPS, tw.ONE_PASS_MAX_K, tw.QUANT_FMA_DIV, tw.QUANT_WORDS = warps, one_pass, fma, words
        row = {f"M={m} K={k}": quant_only(m, k) for m, k in shapes}
        print(f"warps {warps} one-pass <= {one_pass} fma-div {fma} words {words}: "
              + "; ".join(f"{key} {us:.1f}us" for key, us in row.items()), flush=True)
    tw.QUANT_WARPS, tw.ONE_PASS_MAX_K, tw.QUANT_FMA_DIV, tw.QUANT_WORDS = defaults


if __name__ == "__main__":
    main()

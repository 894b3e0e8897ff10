"""Runs 62 / 72: the activation-quantization kernel alone at prefill sizes (M = 2048 / 4096 rows, CUDA graphs)
by warps per program and one-pass limit (a row held in registers is padded to a power of two of
128-column chunks: K = 11008 becomes 16384); `--fma`: with the fma-corrected division (`QUANT_FMA_DIV`,
run 72) and one row with `div.rn`.

    PYTHONPATH=src python3 benchmarks/probe_quant_large.py [--fma]
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from probe_quant import quant_only  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402


def main() -> None:
    print("GPU", torch.cuda.get_device_name(), flush=True)
    defaults = tw.QUANT_WARPS, tw.ONE_PASS_MAX_K, tw.QUANT_FMA_DIV
    settings = [(w, op, True) for w, op in ((None, 16384), (4, 16384), (8, 16384), (None, 4096), (4, 4096), (8, 4096))]
    settings += [(None, 16384, False)]  # run 62's default: div.rn per element
    for warps, one_pass, fma in settings if "--fma" in sys.argv else [(w, op, False) for w, op, _ in settings]:
        tw.QUANT_WARPS, tw.ONE_PASS_MAX_K, tw.QUANT_FMA_DIV = warps, one_pass, fma
        row = {f"M={m} K={k}": quant_only(m, k) for m, k in ((4096, 4096), (4096, 11008), (2048, 4096), (2048, 11008))}
        print(f"warps {warps} one-pass <= {one_pass} fma-div {fma}: " + "; ".join(f"{key} {us:.1f}us" for key, us in row.items()),
              flush=True)
    tw.QUANT_WARPS, tw.ONE_PASS_MAX_K, tw.QUANT_FMA_DIV = defaults


if __name__ == "__main__":
    main()

"""Run 62: the activation-quantization kernel alone at prefill sizes (M = 2048 / 4096 rows, CUDA graphs)
by warps per program and one-pass limit (a row held in registers is padded to a power of two of
128-column chunks: K = 11008 becomes 16384).

    PYTHONPATH=src python3 benchmarks/probe_quant_large.py
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
    defaults = tw.QUANT_WARPS, tw.ONE_PASS_MAX_K
    for warps, one_pass in ((None, 16384), (4, 16384), (8, 16384), (16, 16384), (None, 4096), (4, 4096), (8, 4096),
                            (None, 2048), (4, 2048)):
        tw.QUANT_WARPS, tw.ONE_PASS_MAX_K = warps, one_pass
        row = {f"M={m} K={k}": quant_only(m, k) for m, k in ((4096, 4096), (4096, 11008), (2048, 4096), (2048, 11008))}
        print(f"warps {warps} one-pass <= {one_pass}: " + "; ".join(f"{key} {us:.1f}us" for key, us in row.items()),
              flush=True)
    tw.QUANT_WARPS, tw.ONE_PASS_MAX_K = defaults


if __name__ == "__main__":
    main()

"""Int4 packing: two 4-bit codes per byte.

Layout (the `QuantLinear.qweight` format):

- codes: `uint8` tensor of shape `(N, K)` holding unsigned values in `[0, 15]`
  (the stored code is `q + zero`; symmetric weights use the implicit zero 8).
- packed: `uint8` tensor of shape `(N, K // 2)`; byte `packed[n, i]` holds column `2*i` in its
  low nibble (bits 0-3) and column `2*i + 1` in its high nibble (bits 4-7).

Row-major along K keeps a weight row contiguous, which is what a K-major GEMM reads, and
adjacent columns share a byte so one byte load feeds two consecutive K positions.
"""

from __future__ import annotations

import torch

__all__ = ["pack_int4", "unpack_int4"]


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Pack `(..., K)` codes in `[0, 15]` into `(..., K // 2)` bytes (low nibble = even column)."""
    if codes.shape[-1] % 2:
        raise ValueError(f"int4 packing needs an even last dimension, got {codes.shape[-1]}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > 15):
        raise ValueError("int4 codes must lie in [0, 15]")
    codes = codes.to(torch.uint8)
    low, high = codes[..., 0::2], codes[..., 1::2]
    return low | (high << 4)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of `pack_int4`: `(..., K // 2)` bytes into `(..., K)` codes in `[0, 15]` (uint8)."""
    if packed.dtype != torch.uint8:
        raise ValueError(f"packed int4 weights must be uint8, got {packed.dtype}")
    low = packed & 0x0F
    high = packed >> 4
    return torch.stack((low, high), dim=-1).flatten(-2)  # (..., K // 2, 2) -> (..., K)

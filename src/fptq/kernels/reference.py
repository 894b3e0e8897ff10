"""CPU reference kernel: the numbers an integer W4A8 (or W8A8 / W4A16) kernel produces.

Semantics, which every backend must reproduce up to accumulation order:

1. Activations (`act_mode` "static" or "dynamic") become int8 codes
   `x_q = clamp(round(x / s_x), -127, 127)`, with `s_x` the calibrated per-tensor scale or the
   per-token `max|x_t| / 127`. With `act_mode` "dynamic_fp8" (W4A8-FP8) they become float8
   e4m3 values `x_q = e4m3(clamp(x / s_x, -448, 448))` (round to nearest even) with the
   per-token `s_x = max|x_t| / 448`. With `act_mode` "none" the activation stays in floating point.
2. Weights are codes minus zero point, `w_int = code - zero` (in `[-15, 15]` for int4,
   `[-255, 255]` for int8 asymmetric; symmetric int4 gives `[-8, 7]`).
3. For each weight group g: an exact integer partial sum `P_g = sum_{k in g} x_q[k] * w_int[k]`
   (int32 in a real kernel), scaled in fp32 by the group's weight scale:
   `acc = sum_g P_g * s_w[n, g]`.
4. Epilogue: `y = acc * s_x (+ bias)`, cast to the input dtype.

The integer partial sums are computed with a float matmul whose operands are small integers:
every product and partial sum is an integer below 2**24 in magnitude (float32) or 2**53
(float64), so the float matmul is exact and equals the int32 accumulation of a real kernel.
For e4m3 activations the float64 sums are exact too (products of 4-bit significands and
integers); a fp8 tensor core accumulates them in fp32.
"""

from __future__ import annotations

import torch

from fptq.packing import unpack_int4
from fptq.primitives import INT8_MAX, fp8_scale, per_token_scale, quantize_activation, to_fp8

__all__ = ["quant_linear_reference", "integer_weight", "scaled_weight", "activation_scale", "activation_codes"]

# Bound on the number of (group, row, column) partial sums held at once, to keep memory flat.
_CHUNK_ELEMENTS = 1 << 25


def integer_weight(qweight: torch.Tensor, zeros: torch.Tensor | None, bits: int, group_size: int) -> torch.Tensor:
    """`code - zero` as an `(N, K)` float32 tensor of integers."""
    codes = unpack_int4(qweight) if bits == 4 else qweight
    n, k = codes.shape
    codes = codes.float().reshape(n, k // group_size, group_size)  # (N, groups, G)
    zero = zeros.float()[..., None] if zeros is not None else float(2 ** (bits - 1))
    return (codes - zero).reshape(n, k)


def scaled_weight(w_int: torch.Tensor, scales: torch.Tensor, group_size: int) -> torch.Tensor:
    """`(code - zero) * scale` as an `(N, K)` float32 tensor, from `integer_weight`'s output."""
    n, k = w_int.shape
    return (w_int.reshape(n, k // group_size, group_size) * scales.float()[..., None]).reshape(n, k)


def activation_scale(x2: torch.Tensor, act_mode: str, act_scale: torch.Tensor | None) -> torch.Tensor:
    """The scale of `(M, K)` activations: `(1, 1)` static or `(M, 1)` per token (int8 or e4m3)."""
    if act_mode == "static":
        if act_scale is None:
            raise ValueError("act_mode 'static' needs act_scale")
        return act_scale.float().reshape(1, 1)
    if act_mode == "dynamic":
        return per_token_scale(x2)
    if act_mode == "dynamic_fp8":
        return fp8_scale(x2.float().abs().amax(dim=-1, keepdim=True))
    raise ValueError(f"unknown act_mode {act_mode!r}")


def activation_codes(x2: torch.Tensor, act_mode: str, s_x: torch.Tensor) -> torch.Tensor:
    """The quantized activations as float32: int8 codes, or e4m3 values for "dynamic_fp8"."""
    if act_mode == "dynamic_fp8":
        return to_fp8(x2, s_x).float()
    return quantize_activation(x2, s_x)


def quant_linear_reference(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None = None,
    *,
    bits: int = 4,
    group_size: int,
    act_mode: str = "dynamic",
    act_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    channel_scales: torch.Tensor | None = None,  # (two-level scales: `scales` are complete, nothing to read)
) -> torch.Tensor:
    """`y = x @ W^T (+ bias)` through quantized weights (and int8 activations unless "none").

    x:        (..., K) float
    qweight:  uint8 (N, K // 2) packed int4 (see `fptq.packing`) or uint8 (N, K) for 8 bits
    scales:   fp16 (N, K // group_size)
    zeros:    uint8 (N, K // group_size) or None for symmetric weights
    act_scale: fp32 scalar for act_mode "static"
    returns   (..., N) in x.dtype
    """
    k = x.shape[-1]
    n, groups = scales.shape
    if groups * group_size != k:
        raise ValueError(f"weight expects K={groups * group_size}, input has K={k}")
    w_int = integer_weight(qweight, zeros, bits, group_size)  # (N, K)
    x2 = x.reshape(-1, k)
    if act_mode == "none":
        y = x2.float() @ scaled_weight(w_int, scales, group_size).t()
        if bias is not None:
            y = y + bias.float()
        return y.to(x.dtype).reshape(*x.shape[:-1], n)

    s_x = activation_scale(x2, act_mode, act_scale)  # (1, 1) or (M, 1)
    x_q = activation_codes(x2, act_mode, s_x)  # (M, K) integers in [-127, 127] (or e4m3 values)

    max_w = float(w_int.abs().max()) if w_int.numel() else 0.0
    small = act_mode != "dynamic_fp8" and group_size * INT8_MAX * max_w < 2**24
    exact = torch.float32 if small else torch.float64
    xg = x_q.to(exact).reshape(-1, groups, group_size).transpose(0, 1)  # (groups, M, G)
    wg = w_int.to(exact).reshape(n, groups, group_size).permute(1, 2, 0)  # (groups, G, N)
    s_w = scales.float().t()[:, None, :]  # (groups, 1, N)
    m = x_q.shape[0]
    rows = max(1, _CHUNK_ELEMENTS // max(1, groups * n))
    acc = torch.empty(m, n, dtype=torch.float32, device=x.device)
    for start in range(0, m, rows):
        partial = torch.bmm(xg[:, start : start + rows], wg)  # (groups, rows, N): exact integer sums
        acc[start : start + rows] = (partial.float() * s_w).sum(dim=0)
    y = acc * s_x
    if bias is not None:
        y = y + bias.float()
    return y.to(x.dtype).reshape(*x.shape[:-1], n)

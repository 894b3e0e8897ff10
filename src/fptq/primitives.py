"""Quantization primitives shared by every method: qparams, quantize, dequantize.

Conventions (used by QuantLinear, the kernels and every method):

- Weights are quantized along the input dimension K in groups of `group_size` consecutive
  columns (`group_size == K` means per output channel). Stored codes are unsigned,
  `code = clamp(round(w / scale) + zero, 0, 2**bits - 1)`, and `w ≈ (code - zero) * scale`.
  Symmetric weights have the implicit zero `2**(bits-1)` (8 for int4) and
  `scale = max|w| / (2**(bits-1) - 1)`; asymmetric ones store a zero point per group.
- Scales are stored in fp16, and codes are computed with the fp16-rounded scale so that the
  stored (code, scale) pair is exactly what a kernel multiplies.
- Activations are symmetric int8 in `[-127, 127]`: `x_q = clamp(round(x / s), -127, 127)` with
  a per-tensor static `s` (from calibration) or a per-token dynamic `s = max|x_t| / 127`; or
  float8 e4m3 `e4m3(clamp(x / s, ±448))` with `s = max|x| / 448` (`to_fp8`, `fp8_scale`).
- Rounding is round-half-to-even (`torch.round`, `rint` in a kernel).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "INT8_MAX",
    "QuantizedWeight",
    "quantize_weight",
    "dequantize_weight",
    "fake_quantize_weight",
    "quantize_activation",
    "per_token_scale",
    "static_scale",
    "FP8_DTYPE",
    "FP8_MAX",
    "fp8_scale",
    "to_fp8",
]

INT8_MAX = 127
FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448


@dataclass(frozen=True)
class QuantizedWeight:
    """Codes and quantization parameters of one `(N, K)` weight.

    codes:  uint8 `(N, K)`, values in `[0, 2**bits - 1]`
    scales: fp16 `(N, K // group_size)`
    zeros:  uint8 `(N, K // group_size)` or None (symmetric: implicit `2**(bits-1)`)
    """

    codes: torch.Tensor
    scales: torch.Tensor
    zeros: torch.Tensor | None
    bits: int
    group_size: int

    @property
    def zero_point(self) -> torch.Tensor | int:
        return self.zeros if self.zeros is not None else 2 ** (self.bits - 1)


def _grouped(w: torch.Tensor, group_size: int) -> torch.Tensor:
    n, k = w.shape
    if group_size <= 0 or k % group_size:
        raise ValueError(f"group size {group_size} does not divide the input size {k}")
    return w.reshape(n, k // group_size, group_size)  # (N, groups, G)


def quantize_weight(
    w: torch.Tensor, bits: int = 4, group_size: int = 128, symmetric: bool = True
) -> QuantizedWeight:
    """Round-to-nearest group-wise quantization of an `(N, K)` weight (group_size -1: per channel)."""
    if group_size == -1:
        group_size = w.shape[1]
    wg = _grouped(w.detach().float(), group_size)
    qmax = 2**bits - 1
    if symmetric:
        half = 2 ** (bits - 1)
        scale = wg.abs().amax(dim=-1) / (half - 1)
        zero = torch.full_like(scale, half)
    else:
        hi = wg.amax(dim=-1).clamp(min=0)
        lo = wg.amin(dim=-1).clamp(max=0)
        scale = (hi - lo) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale)).to(torch.float16)
    scale = scale.clamp(min=torch.finfo(torch.float16).tiny)  # fp16 underflow would divide by 0
    s = scale.float()
    if not symmetric:
        zero = torch.clamp(torch.round(-lo / s), 0, qmax)
    codes = torch.clamp(torch.round(wg / s[..., None]) + zero[..., None], 0, qmax)
    return QuantizedWeight(
        codes=codes.reshape(w.shape).to(torch.uint8),
        scales=scale,
        zeros=None if symmetric else zero.to(torch.uint8),
        bits=bits,
        group_size=group_size,
    )


def dequantize_weight(qw: QuantizedWeight, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`(code - zero) * scale` as an `(N, K)` tensor of `dtype` (computed in fp32)."""
    n, k = qw.codes.shape
    codes = qw.codes.float().reshape(n, k // qw.group_size, qw.group_size)
    zero = qw.zero_point
    zero = zero.float()[..., None] if isinstance(zero, torch.Tensor) else float(zero)
    w = (codes - zero) * qw.scales.float()[..., None]
    return w.reshape(n, k).to(dtype)


def fake_quantize_weight(
    w: torch.Tensor, bits: int = 4, group_size: int = 128, symmetric: bool = True
) -> torch.Tensor:
    """Quantize then dequantize, in `w`'s dtype (what the model computes with)."""
    return dequantize_weight(quantize_weight(w, bits, group_size, symmetric), w.dtype)


def static_scale(max_abs: float | torch.Tensor) -> torch.Tensor:
    """Per-tensor int8 scale from a calibrated `max|X|` (fp32 scalar)."""
    m = torch.as_tensor(max_abs, dtype=torch.float32)
    return torch.where(m > 0, m / INT8_MAX, torch.ones_like(m))


def per_token_scale(x: torch.Tensor) -> torch.Tensor:
    """Dynamic int8 scale per row of `x` (`(..., K)` -> `(..., 1)` fp32); all-zero rows get 1."""
    m = torch.linalg.vector_norm(x.detach().float(), ord=float("inf"), dim=-1, keepdim=True)  # max|x|, one pass
    return torch.where(m > 0, _div_exact(m, INT8_MAX), torch.ones_like(m))


def _div_exact(m: torch.Tensor, d: float) -> torch.Tensor:
    """`m / d` correctly rounded on every device, as the kernels compute it (`div_rn`): PyTorch's CUDA kernel
    multiplies by the reciprocal of a Python-number divisor, which can be an ulp off (a tensor divisor is
    divided)."""
    return m / torch.full_like(m, d)


def quantize_activation(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 codes of `x` (returned as fp32 integers in `[-127, 127]`)."""
    return torch.div(x.float(), scale).round_().clamp_(-INT8_MAX, INT8_MAX)


def fp8_scale(max_abs: float | torch.Tensor) -> torch.Tensor:
    """float8 e4m3 scale `max|x| / 448` (elementwise over a tensor of maxima); zero maxima get 1."""
    m = torch.as_tensor(max_abs, dtype=torch.float32)
    return torch.where(m > 0, _div_exact(m, FP8_MAX), torch.ones_like(m))


def to_fp8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """`e4m3(clamp(x / scale, ±448))`, rounded to nearest even (as a hardware conversion)."""
    return (x.float() / scale.float()).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)

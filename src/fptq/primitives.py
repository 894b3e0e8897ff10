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
- Two-level scales (`scale_format="two-level"`, symmetric int4 groups): every group scale is an
  integer multiple `s2` in `[1, 16]` of a per-channel scale `s1` (fp16 with at most 7 significant
  bits, so `s1 * s2` is exact in fp16). The stored group scales are the ordinary fp16 scales
  (`s1 * s2`), so every kernel and exporter reads them as usual; `channel_scales` (`s1`) lets a
  kernel multiply the codes by the integers `s2` before an int8 MMA (`(code - 8) * s2` lies in
  `[-128, 112]`) and keep one int32 sum over all of K per output, scaled once by `s1`.
  Each group takes the `s2` with the least squared error (clipping included).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "INT8_MAX",
    "INT_SCALE_MAX",
    "SCALE_FORMATS",
    "QuantizedWeight",
    "quantize_weight",
    "two_level_channel_scales",
    "int_group_scales",
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
INT_SCALE_MAX = 16  # two-level scales: (code - 8) * s2 must fit int8, 8 * 16 = 128
SCALE_FORMATS = ("fp16", "two-level")
FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448


@dataclass(frozen=True)
class QuantizedWeight:
    """Codes and quantization parameters of one `(N, K)` weight.

    codes:  uint8 `(N, K)`, values in `[0, 2**bits - 1]`
    scales: fp16 `(N, K // group_size)`
    zeros:  uint8 `(N, K // group_size)` or None (symmetric: implicit `2**(bits-1)`)
    channel_scales: fp16 `(N,)` for two-level scales (each of the row's `scales` is an integer
            multiple in `[1, INT_SCALE_MAX]` of it), else None
    """

    codes: torch.Tensor
    scales: torch.Tensor
    zeros: torch.Tensor | None
    bits: int
    group_size: int
    channel_scales: torch.Tensor | None = None

    @property
    def zero_point(self) -> torch.Tensor | int:
        return self.zeros if self.zeros is not None else 2 ** (self.bits - 1)


def _grouped(w: torch.Tensor, group_size: int) -> torch.Tensor:
    n, k = w.shape
    if group_size <= 0 or k % group_size:
        raise ValueError(f"group size {group_size} does not divide the input size {k}")
    return w.reshape(n, k // group_size, group_size)  # (N, groups, G)


def quantize_weight(
    w: torch.Tensor,
    bits: int = 4,
    group_size: int = 128,
    symmetric: bool = True,
    scale_format: str = "fp16",
    channel_scales: torch.Tensor | None = None,
) -> QuantizedWeight:
    """Round-to-nearest group-wise quantization of an `(N, K)` weight (group_size -1: per channel).

    `scale_format="two-level"`: group scales that are integer multiples of a per-channel scale (see the
    module docstring), from `channel_scales` where given (GPTQ quantizes a row's groups one at a time)."""
    if group_size == -1:
        group_size = w.shape[1]
    wg = _grouped(w.detach().float(), group_size)
    if scale_format == "two-level":
        return _quantize_two_level(wg, bits, symmetric, channel_scales)
    if scale_format != "fp16":
        raise ValueError(f"scale format must be one of {SCALE_FORMATS}, got {scale_format!r}")
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


def two_level_channel_scales(w: torch.Tensor, group_size: int, bits: int = 4) -> torch.Tensor:
    """The per-channel scales `s1` (fp16 `(N,)`) of an `(N, K)` weight's two-level quantization: the largest
    group scale `max|w_g| / (2**(bits-1) - 1)` over `INT_SCALE_MAX`, rounded up to 7 significant bits (so
    that `s1 * s2` is exact in fp16 for every `s2 <= 16`); an all-zero row gets 1."""
    wg = _grouped(w.detach().float(), group_size)
    s1 = wg.abs().amax(dim=-1).amax(dim=-1) / ((2 ** (bits - 1) - 1) * INT_SCALE_MAX)
    mant, exp = torch.frexp(s1)  # s1 = mant * 2**exp, mant in [0.5, 1)
    s1 = torch.ldexp(torch.ceil(mant * 128) / 128, exp)
    s1 = torch.where(s1 > 0, s1, torch.ones_like(s1)).to(torch.float16)
    return s1.clamp(min=2.0**-24)  # (an fp16 subnormal keeps at most 7 significant bits too)


def _quantize_two_level(wg: torch.Tensor, bits: int, symmetric: bool, channel_scales: torch.Tensor | None) -> QuantizedWeight:
    """Two-level RTN of grouped weights `(N, groups, G)`: per group the integer `s2` in `[1, INT_SCALE_MAX]` whose
    scale `s1 * s2` gives the least squared error (ties: the smaller `s2`)."""
    if bits != 4 or not symmetric:
        raise ValueError("two-level scales are for symmetric 4-bit weights")
    n, groups, g = wg.shape
    s1 = channel_scales if channel_scales is not None else two_level_channel_scales(wg.reshape(n, -1), g, bits)
    s1 = s1.to(device=wg.device, dtype=torch.float16).float()[:, None]  # (N, 1)
    best_err = torch.full((n, groups), float("inf"), device=wg.device)
    best = torch.ones(n, groups, device=wg.device)
    for s2 in range(1, INT_SCALE_MAX + 1):
        s = (s1 * s2)[..., None]  # (N, 1, 1): exact in fp16 (s1 has at most 7 significant bits)
        err = (torch.clamp(torch.round(wg / s), -8, 7).mul_(s).sub_(wg)).square_().sum(dim=-1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, torch.full_like(best, s2), best)
    scale = (s1 * best).to(torch.float16)
    codes = torch.clamp(torch.round(wg / scale.float()[..., None]) + 8, 0, 15)
    return QuantizedWeight(
        codes=codes.reshape(n, -1).to(torch.uint8),
        scales=scale,
        zeros=None,
        bits=bits,
        group_size=g,
        channel_scales=s1[:, 0].to(torch.float16),
    )


def int_group_scales(scales: torch.Tensor, channel_scales: torch.Tensor) -> torch.Tensor:
    """The integers `s2 = scales / s1` of two-level scales (fp32 `(N, groups)`); raises if they are not
    integers in `[1, INT_SCALE_MAX]` (scales that are not two-level)."""
    ratio = scales.float() / channel_scales.float()[:, None]
    s2 = torch.round(ratio)
    if not bool(((s2 == ratio) & (s2 >= 1) & (s2 <= INT_SCALE_MAX)).all()):
        raise ValueError(f"group scales are not integer multiples in [1, {INT_SCALE_MAX}] of the channel scales")
    return s2


def dequantize_weight(qw: QuantizedWeight, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`(code - zero) * scale` as an `(N, K)` tensor of `dtype` (computed in fp32)."""
    n, k = qw.codes.shape
    codes = qw.codes.float().reshape(n, k // qw.group_size, qw.group_size)
    zero = qw.zero_point
    zero = zero.float()[..., None] if isinstance(zero, torch.Tensor) else float(zero)
    w = (codes - zero) * qw.scales.float()[..., None]
    return w.reshape(n, k).to(dtype)


def fake_quantize_weight(
    w: torch.Tensor, bits: int = 4, group_size: int = 128, symmetric: bool = True, scale_format: str = "fp16"
) -> torch.Tensor:
    """Quantize then dequantize, in `w`'s dtype (what the model computes with)."""
    return dequantize_weight(quantize_weight(w, bits, group_size, symmetric, scale_format), w.dtype)


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

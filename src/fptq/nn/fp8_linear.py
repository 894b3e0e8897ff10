"""`Fp8Linear`: W8A8 in float8 e4m3 with per-tensor scales (the format Hopper GPUs multiply).

Storage (buffers, saved in `model.safetensors` with their dtypes):

- `weight`: float8_e4m3fn `(N, K)`, `W ≈ weight · weight_scale`.
- `weight_scale`: fp32 scalar, `max|W| / 448` (448 = the largest finite e4m3 value).
- `input_scale`: fp32 scalar, the calibrated per-tensor `max|X| / 448` (static activations).
- `bias`: optional, in the model's compute dtype.

Forward (the torch reference, runnable on CPU): `x_fp8 = e4m3(clamp(x / input_scale, ±448))`
(the cast rounds to nearest even, like a hardware conversion), then
`y = (x_fp8 @ weight^T) · input_scale · weight_scale (+ bias)` with fp32 accumulation, which is
what `torch._scaled_mm` computes on a GPU.
"""

from __future__ import annotations

import torch
from torch import nn

from fptq.primitives import FP8_DTYPE, FP8_MAX, fp8_scale, to_fp8

__all__ = ["Fp8Linear", "FP8_MAX", "to_fp8"]

_FIXED_DTYPE = ("weight", "weight_scale", "input_scale")


class Fp8Linear(nn.Module):
    fixed_dtype_buffers = _FIXED_DTYPE

    def __init__(self, in_features: int, out_features: int, *, bias: bool = False,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=FP8_DTYPE, device=device))
        self.register_buffer("weight_scale", torch.ones((), dtype=torch.float32, device=device))
        self.register_buffer("input_scale", torch.ones((), dtype=torch.float32, device=device))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device), requires_grad=False) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, input_max_abs: float) -> Fp8Linear:
        w = linear.weight.detach()
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, dtype=w.dtype, device=w.device)
        layer.weight_scale.copy_(fp8_scale(w.float().abs().max()))
        layer.weight.copy_(to_fp8(w, layer.weight_scale))
        layer.input_scale.copy_(fp8_scale(input_max_abs))
        if linear.bias is not None:
            layer.bias.data.copy_(linear.bias.detach())
        return layer

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return (self.weight.float() * self.weight_scale).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = to_fp8(x, self.input_scale).float()  # (..., K), values on the e4m3 grid
        y = (xq @ self.weight.float().t()) * (self.input_scale * self.weight_scale)
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(x.dtype)

    def _apply(self, fn, recurse=True):
        # model.to(dtype) must move, never cast, the fp8 weight and the fp32 scales
        fixed = {name: self._buffers.pop(name) for name in _FIXED_DTYPE}
        super()._apply(fn, recurse)
        device = fn(torch.empty(0, device=fixed["weight"].device)).device
        for name, buf in fixed.items():
            self._buffers[name] = buf.to(device)
        return self

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, w=fp8e4m3, act=fp8 static"

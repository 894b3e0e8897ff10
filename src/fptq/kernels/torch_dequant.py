"""A fast portable backend: dequantize the weight once, then one dense matmul.

Same quantization semantics as `fptq.kernels.reference` (the same int8 activation codes, the
same weights `(code - zero) * scale`), but the group scales are applied to the weight once
instead of to each group's integer partial sum, so results differ from the reference only by
float32 rounding order (relative differences around 1e-7). This is the CPU path used for
evaluation; the reference stays the definition that tests compare every backend against.

The dequantized float32 weight is cached per `qweight` tensor (weakly, and invalidated when
`qweight` or `scales` is modified in place).
"""

from __future__ import annotations

import weakref

import torch

from fptq.kernels.reference import activation_codes, activation_scale, integer_weight, scaled_weight

__all__ = ["quant_linear_torch", "clear_cache"]

# id(qweight) -> (weakref to qweight, validity key, dequantized weight). Tensors compare
# elementwise, so they cannot be WeakKeyDictionary keys; a finalizer drops dead entries.
_CACHE: dict[int, tuple] = {}


def clear_cache() -> None:
    _CACHE.clear()


def _dequantized(qweight, scales, zeros, bits, group_size, dtype) -> torch.Tensor:
    key = (qweight._version, scales._version, scales.data_ptr(), None if zeros is None else zeros._version, dtype)
    hit = _CACHE.get(id(qweight))
    if hit is not None and hit[0]() is qweight and hit[1] == key:
        return hit[2]
    w = scaled_weight(integer_weight(qweight, zeros, bits, group_size), scales, group_size).to(dtype)
    if id(qweight) not in _CACHE:
        weakref.finalize(qweight, _CACHE.pop, id(qweight), None)
    _CACHE[id(qweight)] = (weakref.ref(qweight), key, w)
    return w


def quant_linear_torch(
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
    k = x.shape[-1]
    compute = torch.float32 if x.device.type == "cpu" else x.dtype
    w = _dequantized(qweight, scales, zeros, bits, group_size, compute)
    x2 = x.reshape(-1, k)
    if act_mode == "none":
        y = x2.to(compute) @ w.t()
    else:
        s_x = activation_scale(x2, act_mode, act_scale)
        y = (activation_codes(x2, act_mode, s_x).to(compute) @ w.t()).float().mul_(s_x)
    if bias is not None:
        y = y + bias.to(y.dtype)
    return y.to(x.dtype).reshape(*x.shape[:-1], w.shape[0])

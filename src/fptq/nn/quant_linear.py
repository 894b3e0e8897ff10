"""`QuantLinear`: a drop-in replacement of `nn.Linear` with quantized weights.

Storage (buffers, all saved in `model.safetensors`):

- `qweight`: uint8. 4-bit weights are packed two per byte, shape `(N, K // 2)`: column `2i` in
  the low nibble, column `2i + 1` in the high nibble (see `fptq.packing`). 8-bit weights are
  one code per byte, shape `(N, K)`. Codes are unsigned: `w ≈ (code - zero) * scale`.
- `scales`: fp16 `(N, K // group_size)`, one per output row and group of `group_size`
  consecutive input columns (`group_size == K`: per output channel).
- `zeros`: uint8 `(N, K // group_size)` for asymmetric weights; absent for symmetric ones,
  whose zero point is `2**(bits - 1)` (8 for int4).
- `channel_scales`: fp16 `(N,)`, only with two-level scales (`scale_format="two-level"`): every
  `scales[n, g]` is an integer multiple in `[1, 16]` of `channel_scales[n]` (`fptq.primitives`).
  `scales` stay complete: a kernel that does not read `channel_scales` computes the same result.
- `act_scale`: fp32 scalar, the calibrated per-tensor int8 scale, present only when
  `act_mode == "static"`.
- `bias`: optional, in the model's compute dtype.

`act_mode` is the activation spec: "static" (per-tensor int8 with `act_scale`), "dynamic"
(per-token int8, scale computed on the fly), "dynamic_fp8" (per-token float8 e4m3, W4A8-FP8:
Hopper's fp8 tensor cores) or "none" (weight-only, W4A16). The forward pass
goes through `fptq.kernels.quant_linear`, which picks the Triton kernel on CUDA and the CPU
reference elsewhere; the layer keeps what the kernel decided on the host per call signature (its
`LaunchPlans`: eager decode is host bound), emptied when the layer moves and in its copies.
`scales` and `act_scale` keep their dtypes under `model.to(dtype)`.

An inference-time layer may also compute its own input (`set_prologue`, `fptq.kernels.prologue`: the RMSNorm
before it, or SiLU * up from the fused gate / up output); `fptq.fuse_prologues` sets these, and such a model is not
saved (the stored format has no prologues).
"""

from __future__ import annotations

import torch
from torch import nn

from fptq import kernels
from fptq.kernels.prologue import PROLOGUES, Prologue
from fptq.packing import pack_int4
from fptq.primitives import SCALE_FORMATS, QuantizedWeight, dequantize_weight, quantize_weight

__all__ = ["QuantLinear", "ACT_MODES"]

ACT_MODES = ("static", "dynamic", "dynamic_fp8", "none")
# Buffers whose dtype is part of the format: model.to(dtype) moves them but never casts them.
_FIXED_DTYPE = ("qweight", "scales", "zeros", "channel_scales", "act_scale")


class QuantLinear(nn.Module):
    fixed_dtype_buffers = _FIXED_DTYPE  # read by fptq.export.native (never cast on save)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bits: int = 4,
        group_size: int = 128,
        symmetric: bool = True,
        scale_format: str = "fp16",
        act_mode: str = "static",
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"QuantLinear supports 4- and 8-bit weights, got {bits}")
        if act_mode not in ACT_MODES:
            raise ValueError(f"act_mode must be one of {ACT_MODES}, got {act_mode!r}")
        if group_size == -1:
            group_size = in_features
        if in_features % group_size or (bits == 4 and in_features % 2):
            raise ValueError(f"group size {group_size} does not divide in_features {in_features}")
        if scale_format not in SCALE_FORMATS or (scale_format == "two-level" and (bits != 4 or not symmetric)):
            raise ValueError(f"scale_format must be one of {SCALE_FORMATS} (two-level: symmetric 4-bit), got {scale_format!r}")
        self.scale_format = scale_format
        self.in_features, self.out_features = in_features, out_features
        self.bits, self.group_size, self.symmetric, self.act_mode = bits, group_size, symmetric, act_mode
        groups = in_features // group_size
        packed_k = in_features // 2 if bits == 4 else in_features
        self.register_buffer("qweight", torch.zeros(out_features, packed_k, dtype=torch.uint8, device=device))
        self.register_buffer("scales", torch.ones(out_features, groups, dtype=torch.float16, device=device))
        zeros = None if symmetric else torch.zeros(out_features, groups, dtype=torch.uint8, device=device)
        self.register_buffer("zeros", zeros)
        two_level = scale_format == "two-level"
        channel = torch.ones(out_features, dtype=torch.float16, device=device) if two_level else None
        self.register_buffer("channel_scales", channel)
        act_scale = torch.ones((), dtype=torch.float32, device=device) if act_mode == "static" else None
        self.register_buffer("act_scale", act_scale)
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device), requires_grad=False) if bias else None
        self._plans = kernels.LaunchPlans()  # the kernel backend's host decisions per call signature (eager calls)
        self.prologue: Prologue | None = None  # (`set_prologue`; its weight is the buffer `prologue_weight`)
        self.register_buffer("prologue_weight", None, persistent=False)

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        *,
        bits: int = 4,
        group_size: int = 128,
        symmetric: bool = True,
        scale_format: str = "fp16",
        act_mode: str = "static",
        act_scale: float | torch.Tensor | None = None,
        quantized: QuantizedWeight | None = None,
    ) -> QuantLinear:
        """Quantize `linear.weight` round-to-nearest, or take `quantized` codes (e.g. from GPTQ)."""
        weight = linear.weight.detach()
        layer = cls(
            linear.in_features,
            linear.out_features,
            bits=bits,
            group_size=group_size,
            symmetric=symmetric,
            scale_format=scale_format,
            act_mode=act_mode,
            bias=linear.bias is not None,
            dtype=weight.dtype,
            device=weight.device,
        )
        qw = quantized if quantized is not None else quantize_weight(weight, bits, layer.group_size, symmetric, scale_format)
        if (qw.channel_scales is not None) != (scale_format == "two-level"):
            raise ValueError(f"the given quantized weight does not have {scale_format} scales")
        layer.qweight.copy_(pack_int4(qw.codes) if bits == 4 else qw.codes)
        layer.scales.copy_(qw.scales)
        if qw.channel_scales is not None:
            layer.channel_scales.copy_(qw.channel_scales)
        if qw.zeros is not None:
            layer.zeros.copy_(qw.zeros)
        if act_mode == "static":
            if act_scale is None:
                raise ValueError("a static activation spec needs act_scale")
            layer.act_scale.copy_(torch.as_tensor(act_scale, dtype=torch.float32))
        if linear.bias is not None:
            layer.bias.data.copy_(linear.bias.detach())
        return layer

    def quantized_weight(self) -> QuantizedWeight:
        from fptq.packing import unpack_int4

        codes = unpack_int4(self.qweight) if self.bits == 4 else self.qweight
        return QuantizedWeight(codes, self.scales, self.zeros, self.bits, self.group_size, self.channel_scales)

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The `(N, K)` weight this layer multiplies by, `(code - zero) * scale`."""
        return dequantize_weight(self.quantized_weight(), dtype)

    def set_prologue(self, kind: str | None, weight: torch.Tensor | None = None, eps: float = 0.0) -> None:
        """Compute this layer's input from what it is called with (`fptq.kernels.prologue`): "rmsnorm" with the
        norm's `weight` (kept as the buffer `prologue_weight`, moved and cast with the model) and `eps`; "silu_glu"
        (called with the fused `[gate, up]` output, 2 `in_features` columns); None: no prologue."""
        if kind is not None and kind not in PROLOGUES:
            raise ValueError(f"unknown prologue {kind!r}; known: {', '.join(PROLOGUES)}")
        if kind == "rmsnorm" and (weight is None or weight.shape != (self.in_features,)):
            raise ValueError(f"an rmsnorm prologue needs the norm's weight of {self.in_features} values")
        self.prologue_weight = weight.detach() if kind == "rmsnorm" else None
        self.prologue = None if kind is None else Prologue(kind, self.prologue_weight, float(eps))
        self._plans.clear()

    def _prologue(self, weight: torch.Tensor | None) -> Prologue | None:
        """The prologue on the layer's current `prologue_weight` buffer (the kept one unless the buffer was
        replaced)."""
        p = self.__dict__.get("prologue")  # (None in a layer unpickled from before prologues)
        if p is not None and p.weight is not weight:
            p = self.prologue = p._replace(weight=weight)
        return p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():  # (attribute reads, which Dynamo follows; it never sees the plans)
            p = self.prologue  # (built here from the buffer: Dynamo traces the tensor as the module's buffer)
            return self._linear(x, self.qweight, self.scales, self.zeros, self.act_scale, self.channel_scales, self.bias,
                                prologue=None if p is None else Prologue(p.kind, self.prologue_weight, p.eps))
        # eager: the tensors straight from the module's dicts — nn.Module's `__getattr__` costs ~0.6 µs a name, a fifth
        # of an eager call's host time on the CUDA path (benchmarks/probe_host_cpu.py); a layer unpickled from before
        # the launch plans has none
        b = self._buffers
        bias = self._parameters.get("bias", self.__dict__.get("bias"))
        return self._linear(x, b["qweight"], b["scales"], b["zeros"], b["act_scale"], b["channel_scales"], bias,
                            self.__dict__.get("_plans"), self._prologue(b.get("prologue_weight")))

    def _linear(self, x, qweight, scales, zeros, act_scale, channel_scales, bias, plans=None,
                prologue=None) -> torch.Tensor:
        return kernels.quant_linear(x, qweight, scales, zeros, bits=self.bits, group_size=self.group_size,
                                    act_mode=self.act_mode, act_scale=act_scale, bias=bias,
                                    channel_scales=channel_scales, plans=plans, prologue=prologue)

    def _apply(self, fn, recurse=True):
        self.__dict__.setdefault("_plans", kernels.LaunchPlans()).clear()
        fixed = {name: self._buffers.pop(name) for name in _FIXED_DTYPE if name in self._buffers}
        super()._apply(fn, recurse)
        device = fn(torch.empty(0, device=self.qweight_device(fixed))).device
        for name, buf in fixed.items():
            self._buffers[name] = buf.to(device) if buf is not None else None
        return self

    @staticmethod
    def qweight_device(fixed: dict) -> torch.device:
        qweight = fixed.get("qweight")
        return qweight.device if qweight is not None else torch.device("cpu")

    def extra_repr(self) -> str:
        zero = "sym" if self.symmetric else "asym"
        two_level = " two-level" if self.scale_format == "two-level" else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"w=int{self.bits} g{self.group_size} {zero}{two_level}, act={self.act_mode}"
            + (f", prologue={self.prologue.kind}" if self.__dict__.get("prologue") is not None else "")
        )

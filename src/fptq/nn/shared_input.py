"""Linears that read one input, run as one GEMM (an inference-time transform).

q/k/v read the same normalized hidden states, and so do gate/up (`fptq.models.arch` declares
these groups for the calibration engine). Quantized separately, each member quantizes that
input again and streams its own weights in its own launches: at decode, 5 of a LLaMA block's
7 activation quantizations and GEMM launches are repeats. `fuse_shared_inputs(model)` concatenates
each group's `QuantLinear`s (or plain `nn.Linear`s) along the output dimension into one layer and puts a
`SharedInputLinear` in each member's place: the first member of a call runs the fused layer and
returns its slice, the others return theirs from the same result.

Exact by construction: every output column of the fused layer is computed from the same codes,
scales and activation spec as before (FPTQ gives the members of a group one activation spec and
one static scale; groups whose members differ are left alone), so only the kernel's
accumulation order can differ. The stored format is unchanged: fuse after loading, never
before saving (`save_quantized` refuses a fused model).

A member returns a cached slice only for the very tensor object the fused layer last ran on,
and the cache is dropped once every member has taken its slice; anything else (a different
input, members called alone or out of order) runs the fused layer again, so results never go
stale. (An in-place change of that tensor between two members' calls is not detected; the
decoders never do that: the input is a norm's fresh output, or with the norm inside the layer
(`fptq.fuse_prologues`) the residual stream, which the block only replaces.) Works eagerly, under CUDA-graph
capture and under torch.compile (no graph break).
"""

from __future__ import annotations

import torch
from torch import nn

from fptq.nn.quant_linear import QuantLinear

__all__ = ["SharedInputLinear", "fuse_shared_inputs", "is_fused"]


class _SharedInput:
    """The fused layer and the last result of one group (a plain object shared by the members)."""

    def __init__(self, fused: nn.Module, sizes: list[int]) -> None:
        self.fused = fused
        self.sizes = sizes
        self.x: torch.Tensor | None = None
        self.outs: tuple[torch.Tensor, ...] = ()
        self.taken = 0

    def output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        if self.x is None or self.x is not x or self.taken >> index & 1:
            self.outs = self.fused(x).split(self.sizes, dim=-1)
            self.x, self.taken = x, 0
        self.taken |= 1 << index
        out = self.outs[index]
        if self.taken == (1 << len(self.sizes)) - 1:  # every member has its slice: drop the refs
            self.x, self.outs, self.taken = None, (), 0
        return out


class SharedInputLinear(nn.Module):
    """One member of a fused group: output columns `[start, start + out_features)` of the fused
    layer. The group's first member owns the fused layer (as its `fused` submodule, so
    that `.to()`, `.half()` and `named_modules()` see it exactly once)."""

    def __init__(self, shared: _SharedInput, index: int) -> None:
        super().__init__()
        self.index = index
        self.in_features = shared.fused.in_features
        self.out_features = shared.sizes[index]
        self._shared = shared
        if index == 0:
            self.fused = shared.fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._shared.output(self.index, x)

    def extra_repr(self) -> str:
        start = sum(self._shared.sizes[: self.index])
        return f"columns {start}:{start + self.out_features} of a fused {self._shared.fused.out_features}-column layer"


def submodule_or_none(block: nn.Module, path: str) -> nn.Module | None:
    """`block.get_submodule(path)`, or None where a fused model no longer has the path (`mlp.gate_proj` of an MLP that
    `fptq.fuse_prologues` turned into a `GatedMLP`)."""
    try:
        return block.get_submodule(path)
    except AttributeError:
        return None


def _format(m: nn.Module) -> tuple | None:
    """What must agree for layers to be fused (None: not a fusable layer type)."""
    if type(m) not in (QuantLinear, nn.Linear):
        return None
    bias = None if m.bias is None else m.bias.dtype
    if type(m) is QuantLinear:
        return ("quant", m.in_features, m.bits, m.group_size, m.symmetric, m.scale_format, m.act_mode, m.qweight.device, bias)
    return ("dense", m.in_features, m.weight.dtype, m.weight.device, bias)


def _fusable(layers: list[nn.Module]) -> bool:
    first = _format(layers[0])
    if len(layers) < 2 or first is None or any(_format(m) != first for m in layers):
        return False
    if first[0] == "quant" and layers[0].act_mode == "static":
        return all(torch.equal(m.act_scale, layers[0].act_scale) for m in layers)
    return True


def _concatenate(layers: list[nn.Module]) -> nn.Module:
    first = layers[0]
    if type(first) is nn.Linear:  # a 16-bit model (the benchmarks' fused fp16 baseline)
        fused = nn.Linear(first.in_features, sum(m.out_features for m in layers), bias=first.bias is not None,
                          device="meta")
        fused.weight = nn.Parameter(torch.cat([m.weight.detach() for m in layers]), requires_grad=False)
        if first.bias is not None:
            fused.bias = nn.Parameter(torch.cat([m.bias.detach() for m in layers]), requires_grad=False)
        return fused
    fused = QuantLinear(
        first.in_features,
        sum(m.out_features for m in layers),
        bits=first.bits,
        group_size=first.group_size,
        symmetric=first.symmetric,
        scale_format=first.scale_format,
        act_mode=first.act_mode,
        bias=first.bias is not None,
        dtype=first.bias.dtype if first.bias is not None else torch.float32,
        device="meta",
    )
    fused.qweight = torch.cat([m.qweight for m in layers])
    fused.scales = torch.cat([m.scales for m in layers])
    if first.zeros is not None:
        fused.zeros = torch.cat([m.zeros for m in layers])
    if first.channel_scales is not None:
        fused.channel_scales = torch.cat([m.channel_scales for m in layers])
    if first.act_mode == "static":
        fused.act_scale = first.act_scale.clone()
    if first.bias is not None:
        fused.bias = nn.Parameter(torch.cat([m.bias.detach() for m in layers]), requires_grad=False)
    return fused


def is_fused(model: nn.Module) -> bool:
    """Whether `model` has layers fused for inference (`fuse_shared_inputs`, `fptq.fuse_prologues`)."""
    return any(isinstance(m, SharedInputLinear) or getattr(m, "prologue", None) is not None for m in model.modules())


@torch.no_grad()
def fuse_shared_inputs(model: nn.Module) -> int:
    """Fuse every group of linears that read one input (per `fptq.models.arch`) into one GEMM;
    returns how many groups were fused. Groups of `QuantLinear`s with one format and activation
    spec are fused, and so are groups of plain `nn.Linear`s (16-bit models); mixed or differing
    groups are left alone. Inference only; idempotent."""
    from fptq.methods.fptq import replace_linear
    from fptq.models.arch import get_arch

    arch = get_arch(model)
    fused_groups = 0
    for block in model.get_submodule(arch.blocks):
        for group in arch.groups:
            layers = [submodule_or_none(block, path) for path in group.linears]
            if None in layers:  # (a group `fptq.fuse_prologues` took into a GatedMLP: fused already)
                continue
            if not _fusable(layers):
                continue
            shared = _SharedInput(_concatenate(layers), [m.out_features for m in layers])
            for index, path in enumerate(group.linears):
                replace_linear(block, path, SharedInputLinear(shared, index))
            fused_groups += 1
    return fused_groups

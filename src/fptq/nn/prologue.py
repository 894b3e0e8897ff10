"""Move the small kernels before a quantized linear into the linear (an inference-time transform).

At one token a LLaMA block runs, besides its four GEMMs, two RMSNorm kernels and a SiLU * up kernel whose
only reader is the next GEMM; each is a launch and a gap in the CUDA graph of a few microseconds, against
~15 µs for a W4A8 GEMM of the LLaMA-2-7B shape. `fuse_prologues(model)` gives those linears a prologue
(`fptq.kernels.prologue`) and takes the kernels out of the model:

- a group that reads a norm (`fptq.models.arch`: q/k/v after `input_layernorm`, gate/up after
  `post_attention_layernorm`) and is one layer (fused by `fuse_shared_inputs`): the layer applies the RMSNorm
  itself and the norm becomes `nn.Identity`;
- the gated MLP (`ArchSpec.gated_mlp`) whose gate/up are one fused layer: it becomes a `GatedMLP` that hands the
  fused `[gate, up]` output to `down_proj`, which applies SiLU * up itself.

Exact by construction where the prologue runs in torch ops (the same ops as the modules it replaces: every
backend but the Triton one, and the Triton one at more than one row); the Triton kernel's one-token launch computes
it in the kernel (the fp32 rsqrt / exp may differ by an ulp). A norm or activation that does not compute exactly
what the prologue does (checked on a random input) is left alone. Inference only; the model is not saved
afterwards (`save_quantized` refuses it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fptq.kernels.prologue import Prologue, apply_prologue
from fptq.nn.quant_linear import QuantLinear
from fptq.nn.shared_input import SharedInputLinear

__all__ = ["GatedMLP", "fuse_prologues"]


class GatedMLP(nn.Module):
    """`down_proj(silu(gate) * up)` with gate and up one fused layer (`gate_up`) and SiLU * up inside `down_proj`
    (its "silu_glu" prologue)."""

    def __init__(self, gate_up: nn.Module, down_proj: QuantLinear) -> None:
        super().__init__()
        self.gate_up = gate_up
        self.down_proj = down_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.gate_up(x))


def _probe(like: torch.Tensor, width: int) -> torch.Tensor:
    """Random rows of `width` values on `like`'s device, in its dtype (spread past the norms' and SiLU's
    interesting ranges)."""
    g = torch.Generator().manual_seed(0)
    return (torch.randn(3, width, generator=g) * 3).to(device=like.device, dtype=like.dtype)


def _rmsnorm(norm: nn.Module, k: int) -> Prologue | None:
    """The prologue that computes exactly what `norm` does on rows of `k` values (None if none does)."""
    weight = getattr(norm, "weight", None)
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
    if not isinstance(weight, torch.Tensor) or weight.shape != (k,) or not isinstance(eps, float):
        return None
    prologue = Prologue("rmsnorm", weight.detach(), eps)
    x = _probe(weight, k)
    return prologue if torch.equal(norm(x), apply_prologue(x, prologue)) else None


def _submodule(block: nn.Module, path: str) -> nn.Module | None:
    try:
        return block.get_submodule(path)
    except AttributeError:  # (a path that a fused model no longer has: mlp.gate_proj of a GatedMLP)
        return None


def _one_layer(block: nn.Module, paths: tuple[str, ...]) -> QuantLinear | None:
    """The one `QuantLinear` that computes the linears at `paths` (a fused group, or a single linear)."""
    layers = [_submodule(block, p) for p in paths]
    if len(layers) == 1 and type(layers[0]) is QuantLinear:
        return layers[0]
    if all(type(m) is SharedInputLinear for m in layers):
        shared = layers[0]._shared
        if all(m._shared is shared for m in layers) and len(shared.sizes) == len(layers):
            return shared.fused if type(shared.fused) is QuantLinear else None
    return None


def _gated(mlp: nn.Module) -> tuple[QuantLinear, QuantLinear] | None:
    """(the fused gate/up layer, down_proj) of a SiLU-gated MLP whose gate/up are one layer, gate first."""
    gate, up, down = (getattr(mlp, name, None) for name in ("gate_proj", "up_proj", "down_proj"))
    act = getattr(mlp, "act_fn", None)
    if type(gate) is not SharedInputLinear or type(up) is not SharedInputLinear or type(down) is not QuantLinear:
        return None
    shared = gate._shared
    if (up._shared is not shared or (gate.index, up.index) != (0, 1) or shared.sizes != [down.in_features] * 2
            or type(shared.fused) is not QuantLinear or act is None):
        return None
    x = _probe(torch.empty(0, device=down.qweight.device), 64)
    return (shared.fused, down) if torch.equal(act(x), F.silu(x)) else None


@torch.no_grad()
def fuse_prologues(model: nn.Module) -> int:
    """Give the linears after each RMSNorm and SiLU * up a prologue that computes it, and take those modules out
    (see the module docstring); returns how many were moved. Run after `fuse_shared_inputs` (a norm read by
    three separate q/k/v layers stays). Inference only; idempotent."""
    from fptq.methods.fptq import replace_linear
    from fptq.models.arch import get_arch

    arch = get_arch(model)
    moved = 0
    for block in model.get_submodule(arch.blocks):
        for group in arch.groups:
            if group.prev_kind != "norm":
                continue
            layer = _one_layer(block, group.linears)
            norm = _submodule(block, group.prev)
            prologue = None
            if layer is not None and norm is not None and layer.prologue is None:
                prologue = _rmsnorm(norm, layer.in_features)
            if prologue is not None:
                layer.set_prologue("rmsnorm", prologue.weight, prologue.eps)
                replace_linear(block, group.prev, nn.Identity())
                moved += 1
        if arch.gated_mlp is None:
            continue
        mlp = _submodule(block, arch.gated_mlp)
        gated = _gated(mlp) if mlp is not None else None
        if gated is not None and gated[1].prologue is None:
            gated[1].set_prologue("silu_glu")
            replace_linear(block, arch.gated_mlp, GatedMLP(*gated))
            moved += 1
    return moved

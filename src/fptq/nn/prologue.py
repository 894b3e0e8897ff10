"""Move the RMSNorms and SiLU * up before quantized linears into the linears (an inference-time transform).

Eagerly a LLaMA block's RMSNorm is eight small kernels whose only reader is the next GEMM (q/k/v after
`input_layernorm`, gate/up after `post_attention_layernorm`, each fused into one layer by `fuse_shared_inputs`), and
eager decode is host bound. `fuse_prologues(model)` gives each such layer a prologue (`fptq.kernels.prologue`) and
puts `nn.Identity` in the norm's place: the Triton backend normalizes the rows inside launches it makes anyway (one
token: the decode kernel as it reads the row; more rows: the activation quantization kernel before each row's
absmax); everywhere else (other backends, torch.compile, which fuses the traced norm with the residual add as it
fused the module) the prologue is the module's own torch ops. A gated MLP whose gate / up are one fused layer becomes
a `GatedMLP`: it hands the fused `[gate, up]` output to down_proj, whose "silu_glu" prologue computes SiLU * up in
the quantization kernel (the eager `act_fn(gate) * up` is two kernels; the module is kept only where it computes
exactly what the MLP did on a random row).

Exact by construction where the prologue runs in torch ops: the same ops as the module (the CPU reference); the
kernels round to 16 bits where the module does, but sum the squares, divide by K and take the rsqrt in their own fp32
order and instructions (a few ulps of the scale, which can move a code; bit-exact in the probes of runs 193-195 and
in 5 of the 6 multi-row cases of runs 199-200); SiLU * up uses libdevice's exp, as torch's kernel, and a division
that gives torch's value for every 16-bit gate value (`triton_w4a8.SILU_DIV`, checked exhaustively on the GPU). A norm
that does not compute exactly what the prologue does (checked on a random input), or that the architecture names
before more than one group, is left alone. Layers with int8 activations (dynamic or static) normalize inside the
kernels and compute SiLU * up there (rows past `triton_w4a8.SILU_MAX_K` columns in two passes); W4A16 and fp8 layers
run the prologues' torch ops. The replaced MLP's `gate_proj` / `up_proj` paths are gone from the module tree (the
fused layer is `mlp.gate_up`).
Inference only; the model is not saved afterwards (`save_quantized` refuses it).
"""

from __future__ import annotations

import torch
from torch import nn

from fptq.kernels.prologue import Prologue, apply_prologue
from fptq.nn.quant_linear import QuantLinear
from fptq.nn.shared_input import SharedInputLinear, submodule_or_none

__all__ = ["GatedMLP", "fuse_prologues"]


class GatedMLP(nn.Module):
    """A gated MLP, `down_proj(silu(gate) * up)`, whose gate and up are one fused layer (`gate_up`, its output
    `[gate, up]`) and whose SiLU * up `down_proj` computes itself (its "silu_glu" prologue)."""

    def __init__(self, gate_up: QuantLinear, down_proj: QuantLinear) -> None:
        super().__init__()
        self.gate_up = gate_up
        self.down_proj = down_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.gate_up(x))


def _rmsnorm(norm: nn.Module, k: int) -> Prologue | None:
    """The prologue that computes exactly what `norm` does on rows of `k` values (None if none does)."""
    weight = getattr(norm, "weight", None)
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
    if not isinstance(weight, torch.Tensor) or weight.shape != (k,) or not isinstance(eps, float):
        return None
    prologue = Prologue("rmsnorm", weight.detach(), eps)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3, k, generator=g) * 3).to(device=weight.device, dtype=weight.dtype)
    return prologue if torch.equal(norm(x), apply_prologue(x, prologue)) else None


def _one_layer(block: nn.Module, paths: tuple[str, ...]) -> QuantLinear | None:
    """The one `QuantLinear` that computes the linears at `paths` (a fused group, or a single linear)."""
    layers = [submodule_or_none(block, p) for p in paths]
    if len(layers) == 1 and type(layers[0]) is QuantLinear:
        return layers[0]
    if all(type(m) is SharedInputLinear for m in layers):
        shared = layers[0]._shared
        if all(m._shared is shared for m in layers) and len(shared.sizes) == len(layers):
            return shared.fused if type(shared.fused) is QuantLinear else None
    return None


def _gated(mlp: nn.Module) -> GatedMLP | None:
    """The `GatedMLP` that computes exactly what `mlp` does (checked on a random row), for an MLP whose gate / up are
    one fused `QuantLinear` (`fuse_shared_inputs`, gate first) and whose down_proj is a `QuantLinear`; else None."""
    gate, up, down = (getattr(mlp, name, None) for name in ("gate_proj", "up_proj", "down_proj"))
    if type(gate) is not SharedInputLinear or type(up) is not SharedInputLinear or type(down) is not QuantLinear:
        return None
    shared = gate._shared
    if (up._shared is not shared or (gate.index, up.index) != (0, 1) or shared.sizes != [down.in_features] * 2
            or type(shared.fused) is not QuantLinear or down.prologue is not None
            or shared.fused.qweight.device != down.qweight.device):
        return None
    gated = GatedMLP(shared.fused, down)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(1, shared.fused.in_features, generator=g) * 3).to(down.qweight.device)  # (fp32: any model)
    try:
        want = mlp(x)
        down.set_prologue("silu_glu")
        if torch.equal(gated(x), want):
            return gated
    except Exception:  # noqa: BLE001 - an MLP the probe cannot run (hooks, devices): left as it is
        pass
    down.set_prologue(None)
    return None


@torch.no_grad()
def fuse_prologues(model: nn.Module) -> int:
    """Move each RMSNorm read by one quantized layer into that layer, and each gated MLP's SiLU * up into its
    down_proj (see the module docstring); returns how many were moved. Run after `fuse_shared_inputs` (a norm read by
    three separate q/k/v layers stays, and so does an MLP whose gate / up are two layers). Inference only;
    idempotent."""
    from fptq.methods.fptq import replace_linear
    from fptq.models.arch import get_arch

    arch = get_arch(model)
    # (a norm is moved only where one group reads it: `arch` names each group's norm for the equalization folds;
    # the decoder forwards of its architectures feed each norm's output to that group alone)
    norms = [g.prev for g in arch.groups if g.prev_kind == "norm" and g.prev is not None]
    moved = 0
    for block in model.get_submodule(arch.blocks):
        for group in arch.groups:
            if group.prev_kind != "norm" or group.prev is None or norms.count(group.prev) != 1:
                continue
            layer, norm = _one_layer(block, group.linears), submodule_or_none(block, group.prev)
            if layer is None or layer.prologue is not None or norm is None or isinstance(norm, nn.Identity):
                continue
            prologue = _rmsnorm(norm, layer.in_features)
            if prologue is not None:
                layer.set_prologue("rmsnorm", prologue.weight, prologue.eps)
                replace_linear(block, group.prev, nn.Identity())
                moved += 1
        mlp = submodule_or_none(block, arch.gated_mlp) if arch.gated_mlp else None
        gated = _gated(mlp) if mlp is not None else None
        if gated is not None:
            replace_linear(block, arch.gated_mlp, gated)
            moved += 1
    return moved

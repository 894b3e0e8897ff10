"""Prologues: what a layer computes from its input before the quantized matmul.

In a LLaMA block q/k/v (fused) read `input_layernorm`'s output and gate/up read `post_attention_layernorm`'s. Run
eagerly, an RMSNorm is eight small kernels (casts, square, mean, rsqrt, products), each a launch of a few
microseconds of host time, and eager decode is host bound; so is the gated MLP's `silu(gate) * up` (two kernels)
before down_proj. The kernels read each whole input row anyway (for the per-token scale: the one-token GEMM, or the
activation quantization kernel at more rows), so they can compute the row themselves:
`fptq.nn.prologue.fuse_prologues` moves the norms and SiLU * up into the layers that read them.

A `Prologue` names the function; `apply_prologue` is its definition in torch ops, the same ops and roundings as the
transformers modules it replaces, and what every backend runs where it has no fused path (and what a compiled model
traces, which Inductor fuses with the residual add before it, as it fused the module):

- "rmsnorm": `weight * (x.float() * rsqrt(mean(x.float()^2) + eps)).to(x.dtype)` (LlamaRMSNorm, Qwen2RMSNorm,
  MistralRMSNorm); `weight` the norm's, `eps` its epsilon;
- "silu_glu": the input holds `[gate, up]` (2 K columns: the fused gate / up layer's output) and the layer reads
  `silu(gate) * up` (the gated MLP's `act_fn(gate_proj(x)) * up_proj(x)` with SiLU), no weight.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["Prologue", "PROLOGUES", "apply_prologue", "input_features", "layer_features"]

PROLOGUES = ("rmsnorm", "silu_glu")


class Prologue(NamedTuple):
    kind: str  # one of PROLOGUES
    weight: torch.Tensor | None = None  # rmsnorm: the norm's weight (K,)
    eps: float = 0.0  # rmsnorm: the norm's epsilon


def input_features(prologue: Prologue | None, k: int) -> int:
    """Columns of the input that a layer of `k` input features is called with under this prologue."""
    return 2 * k if prologue is not None and prologue.kind == "silu_glu" else k


def layer_features(prologue: Prologue | None, width: int) -> int:
    """Input features of the layer that is called with `width` columns under this prologue (`input_features`'s
    inverse)."""
    return width // 2 if prologue is not None and prologue.kind == "silu_glu" else width


def apply_prologue(x: torch.Tensor, prologue: Prologue | None) -> torch.Tensor:
    """The layer's input computed from `x` (the definition; see the module docstring)."""
    if prologue is None:
        return x
    if prologue.kind == "rmsnorm":
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + prologue.eps)
        return prologue.weight * h.to(x.dtype)
    if prologue.kind == "silu_glu":
        gate, up = x.chunk(2, dim=-1)
        return F.silu(gate) * up
    raise ValueError(f"unknown prologue {prologue.kind!r}; known: {', '.join(PROLOGUES)}")

"""Prologues: what a layer computes from its input before the quantized matmul.

At decode a LLaMA block's linears read tensors made by small kernels of their own: q/k/v (fused) read
`input_layernorm`'s output, gate/up read `post_attention_layernorm`'s, down reads `silu(gate) * up`. A
one-token GEMM reads its whole input row anyway (for the per-token scale), so it can compute that input
itself, and the small kernel, its launch and its gap in the CUDA graph go away
(`fptq.nn.prologue.fuse_prologues` moves them into the layers).

A `Prologue` names the function; `apply_prologue` is its definition in torch ops, the same ops and
roundings as the transformers modules it replaces (16-bit inputs; fp32 inside, rounded to the input dtype
where they round), and what every backend without a fused path runs before the layer:

- "rmsnorm": `weight * (x.float() * rsqrt(mean(x.float()^2) + eps)).to(x.dtype)` (LlamaRMSNorm, Qwen2RMSNorm,
  MistralRMSNorm); `weight` the norm's, `eps` its epsilon;
- "silu_glu": the input holds `[gate, up]` (2 K columns) and the layer reads `silu(gate) * up` (LlamaMLP's
  `act_fn(gate_proj(x)) * up_proj(x)` with SiLU, on the fused gate/up output).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["Prologue", "PROLOGUES", "apply_prologue", "prologue_code"]

PROLOGUES = ("rmsnorm", "silu_glu")


class Prologue(NamedTuple):
    kind: str  # one of PROLOGUES
    weight: torch.Tensor | None = None  # rmsnorm: the norm's weight (K,)
    eps: float = 0.0  # rmsnorm: the norm's epsilon


def prologue_code(prologue: Prologue | None) -> int:
    """The kernels' constexpr for a prologue: 0 none, 1 rmsnorm, 2 silu_glu."""
    return 0 if prologue is None else PROLOGUES.index(prologue.kind) + 1


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


def input_features(prologue: Prologue | None, k: int) -> int:
    """Columns of the input that a layer of `k` input features reads with this prologue."""
    return 2 * k if prologue is not None and prologue.kind == "silu_glu" else k

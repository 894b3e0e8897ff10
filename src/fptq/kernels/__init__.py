"""Kernel interface behind `QuantLinear`.

Every backend implements `quant_linear(x, qweight, scales, zeros, *, bits, group_size, act_mode,
act_scale, bias) -> y` with the semantics documented in `fptq.kernels.reference`, which is the CPU
reference; layers with two-level scales (`fptq.primitives`) also pass the keyword `channel_scales`,
which never changes the result (`scales` are complete): a backend may ignore it or use it to sum whole
rows in int32. Registered backends: "reference" (exact group-wise integer semantics, the
definition), "torch" (dequantize once + one dense matmul; same codes, float32 rounding order
differs; the default on CPU) and "triton" (CUDA kernels, when Triton and a GPU are present).
A caller that runs one layer many times (`QuantLinear`) may pass that layer's `LaunchPlans` as `plans`: a
backend that declares `takes_plans` keeps there what it decided on the host for a call signature (paths, launch
constants, descriptors) and skips those decisions on later calls of the same signature; eager decode is host bound.
A layer may also have a `prologue` (`fptq.kernels.prologue`: the RMSNorm before it, or SiLU * up of the fused gate
/ up output, whose rows then have 2 K columns): the layer then computes `apply_prologue(x, prologue)` first; a
backend that declares `takes_prologue` gets it (the Triton one fuses it into its launches where it can: the one-token
GEMM for the norm, the activation quantization at more rows), for the others it is applied here, in torch ops.
`quant_linear` below picks a backend: the fastest registered one that supports
the input's device and the layer's format, or the one named by `FPTQ_KERNEL` (e.g.
`FPTQ_KERNEL=reference` to force the reference on a GPU).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from fptq.kernels.prologue import Prologue, apply_prologue
from fptq.kernels.reference import quant_linear_reference
from fptq.kernels.torch_dequant import quant_linear_torch

__all__ = ["Backend", "LaunchPlans", "register_backend", "backends", "select_backend", "quant_linear"]


@dataclass(frozen=True)
class Backend:
    name: str
    fn: Callable[..., torch.Tensor]
    # supports(x, bits, group_size, act_mode) -> bool
    supports: Callable[[torch.Tensor, int, int, str], bool]
    priority: int = 0
    takes_plans: bool = False  # fn accepts `plans` (a `LaunchPlans`)
    takes_prologue: bool = False  # fn accepts `prologue` (a `Prologue`)


class LaunchPlans(dict):
    """A layer's launch plans, by call signature (see the module docstring): a plain dict whose copies are empty
    (a copied layer has tensors of its own) and which holds at most MAX entries (cleared when full: a plan keeps
    the layer's tensors alive, and replaced buffers make new signatures)."""

    MAX = 16

    def __copy__(self) -> LaunchPlans:
        return LaunchPlans()

    def __deepcopy__(self, memo) -> LaunchPlans:
        return LaunchPlans()

    def __reduce__(self):
        return LaunchPlans, ()

    def keep(self, signature, plan) -> None:
        if len(self) >= self.MAX:
            self.clear()
        self[signature] = plan


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    _BACKENDS[backend.name] = backend


def backends() -> dict[str, Backend]:
    _load_optional_backends()
    return dict(_BACKENDS)


def _load_optional_backends() -> None:
    if "triton" in _BACKENDS or not torch.cuda.is_available():
        return
    try:
        from fptq.kernels import triton_w4a8  # noqa: F401  (registers itself)
    except ImportError:
        pass


def select_backend(x: torch.Tensor, bits: int, group_size: int, act_mode: str) -> Backend:
    forced = os.environ.get("FPTQ_KERNEL")
    available = backends()
    if forced:
        if forced not in available:
            raise ValueError(f"FPTQ_KERNEL={forced} is not a registered kernel backend: {sorted(available)}")
        return available[forced]
    # A plain loop (no `max(key=...)`), which torch.compile traces without a graph break.
    best = None
    for backend in available.values():
        if backend.supports(x, bits, group_size, act_mode) and (best is None or backend.priority > best.priority):
            best = backend
    return best


def quant_linear(
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
    channel_scales: torch.Tensor | None = None,
    plans: LaunchPlans | None = None,
    prologue: Prologue | None = None,
) -> torch.Tensor:
    backend = select_backend(x, bits, group_size, act_mode)
    extra = {} if channel_scales is None else {"channel_scales": channel_scales}  # (backends without it: fp16 scales)
    if plans is not None and backend.takes_plans:
        extra["plans"] = plans
    if prologue is not None:
        if backend.takes_prologue:
            extra["prologue"] = prologue
        else:
            x = apply_prologue(x, prologue)
    return backend.fn(
        x, qweight, scales, zeros, bits=bits, group_size=group_size, act_mode=act_mode, act_scale=act_scale, bias=bias,
        **extra,
    )


register_backend(
    Backend("reference", quant_linear_reference, supports=lambda x, bits, group_size, act_mode: True, priority=0)
)
register_backend(
    Backend("torch", quant_linear_torch, supports=lambda x, bits, group_size, act_mode: True, priority=5)
)

"""Observers: what the engine collects from a linear layer's input during calibration."""

from __future__ import annotations

import torch

from fptq.errors import CalibrationError

__all__ = ["ChannelAbsMax", "check_finite"]


def check_finite(x: torch.Tensor, where: str) -> None:
    if not torch.isfinite(x).all():
        raise CalibrationError(
            f"non-finite activations (inf or nan) at the input of {where} during calibration; "
            "the model overflows in this dtype (try --dtype float32) or its weights are corrupted"
        )


class ChannelAbsMax:
    """Running `max |X_j|` per input channel j over every token seen (FPTQ's statistic)."""

    def __init__(self) -> None:
        self.max_abs: torch.Tensor | None = None
        self.tokens = 0

    def update(self, x: torch.Tensor) -> None:
        x = x.detach()
        m = x.abs().reshape(-1, x.shape[-1]).amax(dim=0).float().cpu()  # (K,)
        self.max_abs = m if self.max_abs is None else torch.maximum(self.max_abs, m)
        self.tokens += x.numel() // x.shape[-1]

    @property
    def tensor_max(self) -> float:
        return float(self.max_abs.max())

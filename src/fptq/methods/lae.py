"""Logarithmic Activation Equalization (FPTQ, arXiv 2308.15987, §3.3, Eq. 4), pure math.

Per input channel j with calibrated range `m_j = max|X_j|`:

    s_j = m_j / log2(2 + m_j)            (Eq. 4)
    X̂ = X · diag(s)^-1,   Ŵ = W · diag(s)

so channel j's range becomes `log2(2 + m_j)` (15 -> ~4.1, 150 -> ~7.2, 1000 -> ~10). It uses
activations only, no weights.
"""

from __future__ import annotations

import torch

__all__ = ["lae_scales", "smoothquant_scales", "MIN_RANGE"]

# Channels whose calibrated range is (numerically) zero keep scale 1: dividing by ~0 would
# blow up the folded norm weight for a channel that carries nothing.
MIN_RANGE = 1e-5


def lae_scales(max_abs: torch.Tensor) -> torch.Tensor:
    """FPTQ Eq. 4: `s_j = max|X_j| / log2(2 + max|X_j|)` (float32, same shape as `max_abs`)."""
    m = max_abs.float()
    s = m / torch.log2(2.0 + m)
    return torch.where(m > MIN_RANGE, s, torch.ones_like(s))


def smoothquant_scales(max_abs: torch.Tensor, weight_max_abs: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """SmoothQuant (Xiao et al. 2023, Eq. 4): `s_j = max|X_j|^α / max|W_j|^(1-α)`."""
    m = max_abs.float().clamp(min=MIN_RANGE)
    w = weight_max_abs.float().clamp(min=MIN_RANGE)
    s = m.pow(alpha) / w.pow(1.0 - alpha)
    return torch.where(max_abs.float() > MIN_RANGE, s, torch.ones_like(s))

"""Observers: what the engine collects from a linear layer's input during calibration."""

from __future__ import annotations

import torch

from fptq.errors import CalibrationError

__all__ = ["ChannelAbsMax", "Hessian", "check_finite"]


def check_finite(x: torch.Tensor, where: str) -> None:
    if not torch.isfinite(x).all():
        # `fptq quantize` computes in float16 on a GPU and in float32 on the CPU
        if x.dtype in (torch.float16, torch.bfloat16):
            cause = (f"the model overflows in {str(x.dtype).removeprefix('torch.')} (try --device cpu, which computes "
                     "in float32) or its weights are corrupted")
        else:
            cause = f"this happens in {str(x.dtype).removeprefix('torch.')}, so the model's weights are likely corrupted"
        raise CalibrationError(f"non-finite activations (inf or nan) at the input of {where} during calibration; {cause}")


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


class Hessian:
    """`H = (2 / n) · Σ_t x_t x_tᵀ` over the n tokens seen (GPTQ, Frantar et al. 2023, §3:
    the Hessian of the layer-wise squared error `‖WX − ŴX‖²` with respect to a weight row).

    Each batch's `XᵀX` is a float32 GEMM (fast on CPU and GPU); the sum over batches is kept in
    float64 on the input's device. `matrix` is float32 `(K, K)`.
    """

    def __init__(self) -> None:
        self._h: torch.Tensor | None = None
        self.tokens = 0

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).float()  # (tokens, K)
        xtx = (x.t() @ x).double()  # (K, K)
        self._h = xtx if self._h is None else self._h.add_(xtx)
        self.tokens += x.shape[0]

    @property
    def matrix(self) -> torch.Tensor:
        if self._h is None:
            raise ValueError("no inputs were observed")
        return (self._h * (2.0 / self.tokens)).float()


class ChannelMeanAbs:
    """Running `mean |X_j|` per input channel j (AWQ's activation salience, Lin et al. 2024, §3.2),
    plus a deterministic sample of up to `keep_tokens` input rows (evenly strided per batch)."""

    def __init__(self, keep_tokens: int = 0, stride: int = 1) -> None:
        self._sum: torch.Tensor | None = None
        self.tokens = 0
        self.keep_tokens, self.stride = keep_tokens, max(1, stride)
        self.samples: list[torch.Tensor] = []
        self._kept = 0

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1])  # (tokens, K)
        s = x.abs().float().sum(dim=0).cpu()
        self._sum = s if self._sum is None else self._sum + s
        self.tokens += x.shape[0]
        if self._kept < self.keep_tokens:
            rows = x[:: self.stride][: self.keep_tokens - self._kept].float()
            self.samples.append(rows)
            self._kept += rows.shape[0]

    @property
    def mean_abs(self) -> torch.Tensor:
        return self._sum / max(self.tokens, 1)

    @property
    def sample(self) -> torch.Tensor:
        return torch.cat(self.samples)  # (kept tokens, K)

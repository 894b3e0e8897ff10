"""AWQ (Lin et al., "AWQ: Activation-aware Weight Quantization for LLM Compression and
Acceleration", MLSys 2024), pure math plus the engine adapter. Weight-only (W4A16).

1. Activation-aware scaling (§3.2). Scaling input channel j of a linear up by `s_j` (and its
   input down by `s_j`, folded into the preceding module) shrinks the relative rounding error
   of salient channels. The scale is searched per linear group:

       s = s_X^α / s_W^(1−α)  (normalised so that max(s)·min(s) = 1)           (Eq. 5)
       α* = argmin_α ‖f(W, X) − f(Q(W·diag(s))·diag(s)⁻¹, X)‖²

   with `s_X = mean|X_j|` over the calibration tokens, α on a grid of `awq_grid` points in
   [0, 1), the error measured on the first `SEARCH_TOKENS` calibration tokens, and `f` the
   "scope" module whose output is compared (the attention for q/k/v, the
   MLP for gate/up, the linear itself for o_proj and down_proj). The paper's Eq. 5 uses
   `s_X^α` alone (`s_W = 1`); the authors' released code also tries the weight term
   `s_W = mean_rows(|W| / max_group|W|)` ("duo scaling"). We search both forms and keep the
   lower loss, which can only lower the error the search measures.
2. Weight clipping (§3.3 / released code): per output row and weight group, the clipping
   threshold `r · max|w|` with `r ∈ {1, 0.95, …, 0.55}` that minimises the group's output
   error on a sample of calibration tokens. q_proj and k_proj are not clipped (their outputs
   feed the attention scores, where the released code found clipping harmful).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fptq.calib.engine import BlockContext
from fptq.calib.observers import ChannelMeanAbs
from fptq.config import QuantConfig
from fptq.methods.equalize import expand_from_prev, fold_scale, group_channel_map, reduce_to_prev
from fptq.methods.fptq import FPTQMethod
from fptq.primitives import fake_quantize_weight, quantize_weight

__all__ = ["AWQ_SCOPES", "AWQ_NO_CLIP", "awq_scales", "search_scale", "search_clip", "AWQMethod"]

# Per linear group (see fptq.models.arch): the module whose output the scale search compares.
# Groups not listed compare the concatenated outputs of their own linears.
AWQ_SCOPES = {"attn_in": "self_attn", "attn_out": "self_attn.o_proj", "mlp_in": "mlp", "mlp_out": "mlp.down_proj"}
# Linears whose weights are not clipped (their outputs form the attention scores).
AWQ_NO_CLIP = ("self_attn.q_proj", "self_attn.k_proj")
CLIP_TOKENS = 512  # calibration tokens sampled for the clipping search (the released code's n_sample_token)
# Calibration tokens (whole batches, at least one) on which each grid point of the scale search
# is scored: the search runs the scope ~40 times per group, which dominates AWQ's cost on a CPU.
SEARCH_TOKENS = 4096
CLIP_MAX_SHRINK = 0.5
_EPS = 1e-4


def weight_salience(weights: list[torch.Tensor], group_size: int) -> torch.Tensor:
    """`s_W`: per input channel, the mean over output rows of `|w| / max|w|` within each weight group."""
    w = torch.cat([x.detach().float() for x in weights], dim=0)  # (N, K)
    n, k = w.shape
    gs = k if group_size == -1 else group_size
    wg = w.abs().reshape(n, k // gs, gs)  # (N, groups, G)
    wg = wg / wg.amax(dim=-1, keepdim=True).clamp(min=1e-8)
    return wg.reshape(n, k).mean(dim=0)  # (K,)


def awq_scales(x_mean: torch.Tensor, w_mean: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """Eq. 5: `s = s_X^α` (or `s_X^α / s_W^(1−α)` with the weight term), normalised to
    `max(s)·min(s) = 1` so the fold neither grows nor shrinks the weights overall."""
    s = x_mean.float().clamp(min=_EPS).pow(alpha)
    if w_mean is not None:
        s = s / w_mean.float().clamp(min=_EPS).pow(1.0 - alpha)
    s = s.clamp(min=_EPS)
    return s / (s.max() * s.min()).sqrt()


def search_scale(
    x_mean: torch.Tensor, w_mean: torch.Tensor | None, loss: Callable[[torch.Tensor], float], grid: int = 20
) -> tuple[torch.Tensor, dict]:
    """Grid search of α in `[0, 1)` (both scale forms when `w_mean` is given): the lowest-loss scale.

    `loss(s)` is the scope's output error with the group's weights quantized under scale `s`.
    α = 0 gives `s = 1` (plain RTN), so the result is never worse than RTN on this loss.
    """
    best = (float("inf"), None, None)
    forms = [("x", None)] + ([("duo", w_mean)] if w_mean is not None else [])
    for form, wm in forms:
        for i in range(grid):
            alpha = i / grid
            if form == "duo" and i == 0:
                continue  # α = 0 with the weight term is a weight-only rescaling; RTN is already α = 0 of "x"
            s = awq_scales(x_mean, wm, alpha)
            value = loss(s)
            if value < best[0]:
                best = (value, s, dict(alpha=alpha, form=form, loss=value))
    return best[1], best[2]


@torch.no_grad()
def search_clip(
    w: torch.Tensor, x: torch.Tensor, *, bits: int = 4, group_size: int = 128, symmetric: bool = True,
    grid: int = 20, max_shrink: float = CLIP_MAX_SHRINK, scale_format: str = "fp16",
) -> torch.Tensor:
    """Per (output row, weight group) clipping threshold `r · max|w|` minimising the group's
    output error `‖x_g w_gᵀ − x_g Q(clip(w_g))ᵀ‖²` on the sampled tokens `x` `(T, K)`.
    Returns the clipped weight `(N, K)` (float32)."""
    n, k = w.shape
    gs = k if group_size == -1 else group_size
    wg = w.detach().float().reshape(n, k // gs, gs)  # (N, groups, G)
    xg = x.float().reshape(-1, k // gs, gs)  # (T, groups, G)
    ref = torch.einsum("tgk,ngk->tng", xg, wg)  # (T, N, groups)
    amax = wg.abs().amax(dim=-1, keepdim=True)  # (N, groups, 1)
    best_err = torch.full((n, k // gs), float("inf"))
    best_max = amax.clone()
    for i in range(int(max_shrink * grid)):
        max_val = amax * (1 - i / grid)
        clipped = torch.maximum(torch.minimum(wg, max_val), -max_val)
        q = fake_quantize_weight(clipped.reshape(n, k), bits, gs, symmetric, scale_format).reshape(n, k // gs, gs)
        err = (torch.einsum("tgk,ngk->tng", xg, q) - ref).pow(2).mean(dim=0)  # (N, groups)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_max = torch.where(better[..., None], max_val, best_max)
    return torch.maximum(torch.minimum(wg, best_max), -best_max).reshape(n, k)


def _scope_output(out) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


class _ScopeInputs:
    """Inputs (and keyword arguments) of one module over every calibration batch."""

    def __init__(self) -> None:
        self.args: list[torch.Tensor] = []
        self.kwargs: list[dict] = []

    def record(self, args: tuple, kwargs: dict) -> None:
        if args:
            self.args.append(args[0].detach())
            self.kwargs.append(dict(kwargs))
        else:
            kw = dict(kwargs)
            self.args.append(kw.pop("hidden_states").detach())
            self.kwargs.append(kw)

    def run(self, module: nn.Module, max_tokens: int | None = None) -> list[torch.Tensor]:
        outs, tokens = [], 0
        for x, kw in zip(self.args, self.kwargs):
            if max_tokens is not None and tokens >= max_tokens:
                break
            outs.append(_scope_output(module(x, **kw)))
            tokens += x.numel() // x.shape[-1]
        return outs


class AWQMethod(FPTQMethod):
    """AWQ W4A16 inside the engine: per-group scale search (folded exactly into the preceding
    module, like LAE), then clipping search, then group-wise RTN of the scaled, clipped weights."""

    def __init__(self, config: QuantConfig) -> None:
        super().__init__(config)

    def observers(self, ctx: BlockContext) -> dict[str, list]:
        tokens = sum(x.shape[0] * x.shape[1] for x in ctx.inputs)
        stride = max(1, tokens // CLIP_TOKENS)
        return {g.linears[0]: [ChannelMeanAbs(keep_tokens=CLIP_TOKENS, stride=stride)] for g in ctx.arch.groups}

    def _capture_scopes(self, ctx: BlockContext) -> dict[str, _ScopeInputs]:
        scopes = {group.name: _ScopeInputs() for group in ctx.arch.groups if group.name in AWQ_SCOPES}
        ctx.observe({AWQ_SCOPES[name]: cap.record for name, cap in scopes.items()})
        return scopes

    def _group_loss(self, ctx: BlockContext, group, scope: nn.Module, inputs: _ScopeInputs, channel_map):
        """`loss(s_prev)`: the scope's output MSE with the group quantized under the scale `s_prev`
        (on the preceding module's channels)."""
        cfg = self.config
        linears = [ctx.block.get_submodule(p) for p in group.linears]
        originals = [m.weight.data.clone() for m in linears]
        reference = inputs.run(scope, SEARCH_TOKENS)

        def loss(s_prev: torch.Tensor) -> float:
            s = expand_from_prev(s_prev, channel_map).to(originals[0].device, torch.float32)
            try:
                for m, w in zip(linears, originals):
                    # Q(W·diag(s))·diag(s)⁻¹ on X equals Q(W·diag(s)) on X·diag(s)⁻¹ (the folded model)
                    q = fake_quantize_weight(w.float() * s[None, :], cfg.w_bits, cfg.group_size, cfg.symmetric,
                                             cfg.scale_format)
                    m.weight.data = (q / s[None, :]).to(w.dtype)
                total, count = 0.0, 0
                for out, ref in zip(inputs.run(scope, SEARCH_TOKENS), reference):
                    total += float((out.float() - ref.float()).pow(2).sum())
                    count += ref.numel()
                return total / count
            finally:
                for m, w in zip(linears, originals):
                    m.weight.data = w

        return loss

    def process_block(self, ctx: BlockContext) -> list[dict]:
        cfg = self.config
        scopes = self._capture_scopes(ctx)
        s_in_of: dict[str, torch.Tensor] = {}
        self.search_log = []
        for group in ctx.arch.groups:
            if group.prev is None or group.name not in scopes:
                continue
            obs = ctx.observers[group.linears[0]][0]
            channel_map = group_channel_map(group, ctx.model_config)
            prev_channels = ctx.block.get_submodule(group.prev).weight.shape[0]
            weights = [ctx.block.get_submodule(p).weight for p in group.linears]
            x_prev = reduce_to_prev(obs.mean_abs, channel_map, prev_channels)
            w_prev = reduce_to_prev(weight_salience(weights, cfg.group_size), channel_map, prev_channels)
            scope = ctx.block.get_submodule(AWQ_SCOPES[group.name])
            loss = self._group_loss(ctx, group, scope, scopes[group.name], channel_map)
            s_prev, info = search_scale(x_prev, w_prev, loss, cfg.awq_grid)
            s_in_of[group.name] = fold_scale(ctx.block, group, s_prev, channel_map).cpu()
            self.search_log.append(dict(block=ctx.index, group=group.name, **info))
        quantized = {}
        for group in ctx.arch.groups:
            x = ctx.observers[group.linears[0]][0].sample  # (T, K), before the group's fold
            if group.name in s_in_of:
                x = x / s_in_of[group.name].to(x.device)[None, :]
            for path in group.linears:
                linear = ctx.block.get_submodule(path)
                w = linear.weight.detach()
                if cfg.awq_clip and path not in AWQ_NO_CLIP:
                    w = search_clip(w, x.to(w.device), bits=cfg.w_bits, group_size=cfg.group_size,
                                    symmetric=cfg.symmetric, scale_format=cfg.scale_format).to(w.dtype)
                quantized[path] = quantize_weight(w, cfg.w_bits, cfg.group_size, cfg.symmetric, cfg.scale_format)
        return self.quantize_weights(ctx, self.group_plans(ctx), quantized=quantized)

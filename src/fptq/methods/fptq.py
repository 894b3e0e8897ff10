"""FPTQ as an engine method: layer-wise strategy + LAE + group-wise int4 RTN weights.

For each linear group of a block (linears that share one input, see `fptq.models.arch`):

1. `m = max|X|` over the calibration tokens picks the strategy (`policy.choose_strategy`).
2. In the `[v0, v1)` band the group's input is equalized (LAE by default; SmoothQuant or
   nothing as ablations): the scale is folded exactly into the preceding norm or linear and
   into the consumers' input columns (`equalize.fold_scale`).
3. The static int8 scale is computed from the equalized activations: channel j's range after
   equalization is `m_j / s_j`, so no second calibration pass is needed.
4. Every linear of the group becomes a `QuantLinear` with int4 group-wise RTN weights (of the
   equalized weight) and the group's activation spec.

All folds happen before any weight is quantized, because the `o_proj` and `down_proj` folds
rescale `v_proj` and `up_proj`, which are quantized too.
"""

from __future__ import annotations

import torch

from fptq.calib.engine import BlockContext
from fptq.config import QuantConfig
from fptq.methods import policy
from fptq.methods.equalize import fold_scale, group_channel_map, reduce_to_prev
from fptq.methods.lae import lae_scales, smoothquant_scales
from fptq.nn.quant_linear import QuantLinear
from fptq.primitives import static_scale

__all__ = ["FPTQMethod", "replace_linear"]


def replace_linear(block: torch.nn.Module, path: str, new: torch.nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = block.get_submodule(parent_path) if parent_path else block
    setattr(parent, name, new)


class FPTQMethod:
    """The engine adapter for FPTQ and its RTN / ablation variants (all from one QuantConfig)."""

    def __init__(self, config: QuantConfig) -> None:
        self.config = config

    def observers(self, ctx: BlockContext) -> dict[str, list]:
        return {}

    def group_plans(self, ctx: BlockContext) -> list[dict]:
        """Decide each group's strategy and apply the equalization folds (no weight is quantized yet)."""
        cfg = self.config
        plans = []
        for group in ctx.arch.groups:
            m_j = ctx.absmax[group.name].max_abs  # (K,)
            m = float(m_j.max())
            if cfg.a_bits == 16:
                plans.append(dict(group=group, max_abs=m, strategy=policy.WEIGHT_ONLY, eq_max=m, act_scale=None))
                continue
            strategy = policy.choose_strategy(m, cfg.v0, cfg.v1, cfg.policy)
            eq_max = m
            if strategy == policy.EQUALIZED:
                if cfg.equalization == "none":
                    strategy = policy.STATIC
                elif group.prev is None:
                    # No module to fold a scale into: per-token dynamic is the exact fallback.
                    strategy = policy.DYNAMIC
                else:
                    s_in = self._equalize(ctx, group, m_j)
                    eq_max = float((m_j / s_in).max())
            act_scale = static_scale(eq_max) if strategy in (policy.STATIC, policy.EQUALIZED) else None
            plans.append(dict(group=group, max_abs=m, strategy=strategy, eq_max=eq_max, act_scale=act_scale))
        return plans

    def _equalize(self, ctx: BlockContext, group, m_j: torch.Tensor) -> torch.Tensor:
        channel_map = group_channel_map(group, ctx.model_config)
        prev = ctx.block.get_submodule(group.prev)
        prev_channels = prev.weight.shape[0]
        m_prev = reduce_to_prev(m_j, channel_map, prev_channels)
        if self.config.equalization == "lae":
            s_prev = lae_scales(m_prev)
        else:  # smoothquant
            w_max = torch.stack(
                [ctx.block.get_submodule(p).weight.detach().abs().amax(dim=0).float().cpu() for p in group.linears]
            ).amax(dim=0)
            s_prev = smoothquant_scales(m_prev, reduce_to_prev(w_max, channel_map, prev_channels), self.config.smoothquant_alpha)
        return fold_scale(ctx.block, group, s_prev, channel_map).cpu()

    def quantize_weights(self, ctx: BlockContext, plans: list[dict], quantized: dict | None = None) -> list[dict]:
        """Replace every linear by a QuantLinear; `quantized` may give codes per path (e.g. GPTQ)."""
        cfg = self.config
        rows = []
        for plan in plans:
            group = plan["group"]
            strategy = plan["strategy"]
            if strategy == policy.DYNAMIC and cfg.a_format == "fp8":
                strategy = policy.DYNAMIC_FP8
            for path in group.linears:
                linear = ctx.block.get_submodule(path)
                layer = QuantLinear.from_linear(
                    linear,
                    bits=cfg.w_bits,
                    group_size=cfg.group_size,
                    symmetric=cfg.symmetric,
                    scale_format=cfg.scale_format,
                    act_mode=policy.ACT_MODES[strategy],
                    act_scale=plan["act_scale"],
                    quantized=(quantized or {}).get(path),
                )
                replace_linear(ctx.block, path, layer)
                rows.append(
                    {
                        "layer": f"{ctx.prefix}.{path}",
                        "group": group.name,
                        "max_abs": plan["max_abs"],
                        "strategy": strategy,
                        "max_abs_after_eq": plan["eq_max"],
                        "act_scale": None if plan["act_scale"] is None else float(plan["act_scale"]),
                    }
                )
        return rows

    def process_block(self, ctx: BlockContext) -> list[dict]:
        return self.quantize_weights(ctx, self.group_plans(ctx))

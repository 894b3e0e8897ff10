"""SmoothQuant (Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training Quantization for
Large Language Models", ICML 2023) as an engine method.

Activation outliers are migrated into the weights with a per-channel scale

    s_j = max|X_j|^α / max|W_j|^(1−α)                                        (Eq. 4)

`X̂ = X·diag(s)⁻¹` is folded into the preceding norm and `Ŵ = diag(s)·W` into the consumers'
input columns (§4: "the smoothing factor ... can be fused into the previous layer's
parameters offline"). As in the authors' LLaMA code, every linear group fed by a norm is
smoothed (q/k/v after `input_layernorm`, gate/up after `post_attention_layernorm`); o_proj
and down_proj are not. Weights are then quantized per output channel (W8A8, `--group-size -1`)
or group-wise (W4A8), activations per-tensor static (the paper's O3) or per-token dynamic
(`--policy all-dynamic`, the default; the paper's O1). The scale formula lives in
`fptq.methods.lae.smoothquant_scales`, shared with FPTQ's `--equalization smoothquant` ablation.
"""

from __future__ import annotations

from fptq.calib.engine import BlockContext
from fptq.config import QuantConfig
from fptq.methods import policy
from fptq.methods.fptq import FPTQMethod
from fptq.primitives import static_scale

__all__ = ["SmoothQuantMethod"]


class SmoothQuantMethod(FPTQMethod):
    """Smooth every norm-fed group (regardless of its range), then uniform int8 activations."""

    def __init__(self, config: QuantConfig) -> None:
        super().__init__(config)

    def group_plans(self, ctx: BlockContext) -> list[dict]:
        cfg = self.config
        plans = []
        for group in ctx.arch.groups:
            m_j = ctx.absmax[group.name].max_abs  # (K,)
            m = float(m_j.max())
            strategy = policy.choose_strategy(m, cfg.v0, cfg.v1, cfg.policy)  # all-static or all-dynamic
            eq_max = m
            if group.prev_kind == "norm" and group.prev is not None:
                s_in = self._equalize(ctx, group, m_j)  # SmoothQuant scales: cfg.equalization == "smoothquant"
                eq_max = float((m_j / s_in).max())
                if strategy == policy.STATIC:
                    strategy = policy.EQUALIZED
            act_scale = static_scale(eq_max) if strategy in (policy.STATIC, policy.EQUALIZED) else None
            plans.append(dict(group=group, max_abs=m, strategy=strategy, eq_max=eq_max, act_scale=act_scale))
        return plans

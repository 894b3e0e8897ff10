"""FP8 W8A8: float8 e4m3 weights and activations, per-tensor scales (the format Hopper tensor
cores accelerate; a reference point, not a method of the FPTQ paper). Round-to-nearest, no
equalization: each linear's weight scale is `max|W| / 448`, its static activation scale the
calibrated `max|X| / 448` of its group's input.
"""

from __future__ import annotations

from fptq.calib.engine import BlockContext
from fptq.config import QuantConfig
from fptq.methods.fptq import replace_linear
from fptq.nn.fp8_linear import Fp8Linear

__all__ = ["FP8_STRATEGY", "Fp8Method"]

FP8_STRATEGY = "fp8-static"


class Fp8Method:
    def __init__(self, config: QuantConfig) -> None:
        self.config = config

    def observers(self, ctx: BlockContext) -> dict[str, list]:
        return {}

    def process_block(self, ctx: BlockContext) -> list[dict]:
        rows = []
        for group in ctx.arch.groups:
            m = ctx.absmax[group.name].tensor_max
            for path in group.linears:
                layer = Fp8Linear.from_linear(ctx.block.get_submodule(path), m)
                replace_linear(ctx.block, path, layer)
                rows.append({"layer": f"{ctx.prefix}.{path}", "group": group.name, "max_abs": m, "strategy": FP8_STRATEGY,
                             "max_abs_after_eq": m, "act_scale": float(layer.input_scale)})
        return rows

"""Quantization methods: pure math modules plus thin engine adapters.

`METHODS` maps a `--method` name to a factory `QuantConfig -> engine method`. What each name
allows and defaults to (policy, equalization, activation bits) is `fptq.config.METHOD_RULES`,
applied when the `QuantConfig` is built, so a saved config records what actually ran.

- `fptq`: layer-wise static / LAE+static / dynamic int8 activations, RTN weights.
- `rtn`: the same adapter with no equalization and one activation mode for every layer
  (`policy` all-static = per-tensor, all-dynamic = per-token; a_bits 16 = weight-only).
- `smoothquant`, `gptq`, `fptq+gptq`, `awq`, `fp8`: see their modules.
"""

from __future__ import annotations

from fptq.config import QuantConfig
from fptq.errors import ConfigError

__all__ = ["METHODS", "build_method"]


def _fptq(config: QuantConfig):
    from fptq.methods.fptq import FPTQMethod

    return FPTQMethod(config)


def _gptq(config: QuantConfig):
    from fptq.methods.gptq import GPTQMethod

    return GPTQMethod(config)


def _smoothquant(config: QuantConfig):
    from fptq.methods.smoothquant import SmoothQuantMethod

    return SmoothQuantMethod(config)


def _awq(config: QuantConfig):
    from fptq.methods.awq import AWQMethod

    return AWQMethod(config)


def _fp8(config: QuantConfig):
    from fptq.methods.fp8 import Fp8Method

    return Fp8Method(config)


METHODS = {
    "fptq": _fptq,
    "rtn": _fptq,  # FPTQMethod with equalization "none" and a uniform policy (METHOD_RULES)
    "smoothquant": _smoothquant,
    "gptq": _gptq,
    "fptq+gptq": _gptq,  # GPTQMethod with FPTQ's layer-wise policy and LAE
    "awq": _awq,
    "fp8": _fp8,
}


def build_method(config: QuantConfig):
    try:
        factory = METHODS[config.method]
    except KeyError:
        raise ConfigError(f"unknown method {config.method!r}; available: {', '.join(sorted(METHODS))}") from None
    return factory(config)

"""Quantization methods: pure math modules plus thin engine adapters.

`METHODS` maps a `--method` name to a factory `QuantConfig -> engine method`.
"""

from __future__ import annotations

from fptq.config import QuantConfig
from fptq.errors import ConfigError

__all__ = ["METHODS", "build_method"]


def _fptq(config: QuantConfig):
    from fptq.methods.fptq import FPTQMethod

    return FPTQMethod(config)


METHODS = {"fptq": _fptq}


def build_method(config: QuantConfig):
    try:
        factory = METHODS[config.method]
    except KeyError:
        raise ConfigError(f"unknown method {config.method!r}; available: {', '.join(sorted(METHODS))}") from None
    return factory(config)

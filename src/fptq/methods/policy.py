"""FPTQ's layer-wise activation strategy (arXiv 2308.15987, §3.2), pure logic."""

from __future__ import annotations

__all__ = ["STATIC", "EQUALIZED", "DYNAMIC", "DYNAMIC_FP8", "WEIGHT_ONLY", "ACT_MODES", "choose_strategy"]

STATIC = "static"  # per-tensor static int8
EQUALIZED = "equalized+static"  # equalization scale folded in, then per-tensor static int8
DYNAMIC = "dynamic"  # per-token dynamic int8
WEIGHT_ONLY = "none"  # activations stay in floating point (W4A16)
DYNAMIC_FP8 = "dynamic-fp8"  # per-token dynamic float8 e4m3 (a DYNAMIC layer under a_format "fp8")

# strategy -> QuantLinear act_mode (what a checkpoint's policy row tells the loader)
ACT_MODES = {STATIC: "static", EQUALIZED: "static", DYNAMIC: "dynamic", DYNAMIC_FP8: "dynamic_fp8", WEIGHT_ONLY: "none"}


def choose_strategy(max_abs: float, v0: float, v1: float, policy: str = "layerwise") -> str:
    """`max|X| < v0` -> static; `[v0, v1)` -> equalize then static; `>= v1` -> per-token dynamic.

    `policy="all-static"` / `"all-dynamic"` give the naive baselines and ablations.
    """
    if policy == "all-static":
        return STATIC
    if policy == "all-dynamic":
        return DYNAMIC
    if policy != "layerwise":
        raise ValueError(f"unknown policy {policy!r}")
    if max_abs < v0:
        return STATIC
    if max_abs < v1:
        return EQUALIZED
    return DYNAMIC

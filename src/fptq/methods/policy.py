"""FPTQ's layer-wise activation strategy (arXiv 2308.15987, §3.2), pure logic."""

from __future__ import annotations

__all__ = ["STATIC", "EQUALIZED", "DYNAMIC", "WEIGHT_ONLY", "choose_strategy"]

STATIC = "static"  # per-tensor static int8
EQUALIZED = "equalized+static"  # equalization scale folded in, then per-tensor static int8
DYNAMIC = "dynamic"  # per-token dynamic int8
WEIGHT_ONLY = "none"  # activations stay in floating point (W4A16)


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

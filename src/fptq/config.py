"""Typed, validated configuration. Unknown keys are errors; saved configs carry a version."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields

from fptq.errors import ConfigError

__all__ = ["FORMAT_VERSION", "QuantConfig", "CalibConfig", "from_dict"]

# Version of the saved folder format (fptq_config.json + model.safetensors layout).
FORMAT_VERSION = 1

POLICIES = ("layerwise", "all-static", "all-dynamic")
EQUALIZATIONS = ("lae", "smoothquant", "none")


@dataclass(frozen=True)
class QuantConfig:
    """What to quantize and how. Defaults are the paper's FPTQ W4A8 recipe."""

    method: str = "fptq"
    w_bits: int = 4
    # 128 is the usual choice; use 64 for hidden sizes that 128 does not divide (SmolLM2: 576).
    group_size: int = 128
    symmetric: bool = True
    # 8: int8 activations (W4A8); 16: weight-only (W4A16, activations stay in floating point).
    a_bits: int = 8
    # FPTQ thresholds on max|X| (paper §3.2): < v0 static, [v0, v1) LAE + static, >= v1 dynamic.
    v0: float = 15.0
    v1: float = 150.0
    # layerwise (FPTQ), or every layer static / dynamic (ablations and naive baselines).
    policy: str = "layerwise"
    # What to do in the [v0, v1) band: LAE (FPTQ), SmoothQuant scales, or nothing.
    equalization: str = "lae"
    smoothquant_alpha: float = 0.5
    # Feed each block the outputs of the already-quantized previous blocks (as GPTQ does).
    sequential: bool = True

    def __post_init__(self) -> None:
        if self.w_bits not in (4, 8):
            raise ConfigError(f"--w-bits must be 4 or 8, got {self.w_bits}")
        if self.a_bits not in (8, 16):
            raise ConfigError(f"--a-bits must be 8 (int8 activations) or 16 (weight-only), got {self.a_bits}")
        if self.group_size != -1 and self.group_size < 2:
            raise ConfigError(f"--group-size must be -1 (per channel) or at least 2, got {self.group_size}")
        if not 0 < self.v0 <= self.v1:
            raise ConfigError(f"need 0 < v0 <= v1, got v0={self.v0}, v1={self.v1}")
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.equalization not in EQUALIZATIONS:
            raise ConfigError(f"--equalization must be one of {', '.join(EQUALIZATIONS)}, got {self.equalization!r}")
        if not 0.0 <= self.smoothquant_alpha <= 1.0:
            raise ConfigError(f"smoothquant alpha must lie in [0, 1], got {self.smoothquant_alpha}")

    @property
    def scheme(self) -> str:
        return f"W{self.w_bits}A{self.a_bits}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CalibConfig:
    """Calibration data: where it comes from and how much of it."""

    # bundled | random | c4 | wikitext2 | pile | path to a .txt / .jsonl file
    source: str = "bundled"
    samples: int = 128
    seqlen: int = 2048
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ConfigError(f"--calib-samples must be at least 1, got {self.samples}")
        if self.seqlen < 2:
            raise ConfigError(f"--calib-seqlen must be at least 2, got {self.seqlen}")
        if self.batch_size < 1:
            raise ConfigError(f"calibration batch size must be at least 1, got {self.batch_size}")

    def to_dict(self) -> dict:
        return asdict(self)


def from_dict(cls, data: dict):
    """Build a config dataclass from a dict, rejecting unknown keys."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    return cls(**data)


def replace(config, **changes):
    return dataclasses.replace(config, **changes)

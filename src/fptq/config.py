"""Typed, validated configuration. Unknown keys are errors; saved configs carry a version."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass, fields

from fptq.errors import ConfigError
from fptq.primitives import SCALE_FORMATS

__all__ = ["FORMAT_VERSION", "QuantConfig", "CalibConfig", "from_dict", "from_saved", "option", "unused_settings",
           "without_flags"]

# Version of the saved folder format (fptq_config.json + model.safetensors layout).
FORMAT_VERSION = 1

POLICIES = ("layerwise", "all-static", "all-dynamic")
EQUALIZATIONS = ("lae", "smoothquant", "none")
DEFAULT_GROUP_SIZE = 128  # of integer methods when group_size is left unset (None)
# Calibration and perplexity window length when left unset (None), capped at the model's context (`default_seqlen`).
DEFAULT_SEQLEN = 2048

# What each `--method` allows and picks when `policy` / `equalization` / `a_bits` are left unset (None).
# (allowed policies, default policy, allowed equalizations, default equalization, allowed a_bits: the first is the
# default). `w_bits` defaults to 8 for fp8, else 4 (`_method_defaults`).
# The resolved values are what a saved fptq_config.json records, so a folder says what ran.
# - rtn, gptq: no equalization; activations all per-tensor static or all per-token dynamic
#   (default per-token, the usual W8A8 / W4A8 baseline); a_bits 16 = weight-only.
# - smoothquant: SmoothQuant scales on every norm-fed group; activations as for rtn.
# - awq: weight-only (W4A16), its own scales replace any equalization; a_bits 16 is its default.
# - fp8: float8 e4m3 weights and per-tensor static e4m3 activations; w_bits 8 is its default.
# - fptq, fptq+gptq: FPTQ's layer-wise policy and LAE; every ablation allowed.
_UNIFORM = ("all-static", "all-dynamic")
METHOD_RULES = {
    "fptq": (POLICIES, "layerwise", EQUALIZATIONS, "lae", (8, 16)),
    "fptq+gptq": (POLICIES, "layerwise", EQUALIZATIONS, "lae", (8, 16)),
    "rtn": (_UNIFORM, "all-dynamic", ("none",), "none", (8, 16)),
    "gptq": (_UNIFORM, "all-dynamic", ("none",), "none", (8, 16)),
    "smoothquant": (_UNIFORM, "all-dynamic", ("smoothquant",), "smoothquant", (8,)),
    "awq": (_UNIFORM, "all-dynamic", ("none",), "none", (16,)),
    "fp8": (("all-static",), "all-static", ("none",), "none", (8,)),
}

# Command-line flags whose name is not the field's with dashes (see `option`).
_FLAGS = {"smoothquant_alpha": "--alpha", "samples": "--calib-samples", "seqlen": "--calib-seqlen",
          "batch_size": "--calib-batch-size", "source": "--calib", "awq_clip": "--no-awq-clip",
          "act_order": "--act-order / --no-act-order", "symmetric": "--asymmetric"}


def option(field: str, value=None) -> str:
    """How an error message names a setting (with `value`: a setting of it), so that it reads right from the Python
    API and the CLI alike: `group_size (--group-size)`, `a_bits 16 (--a-bits 16)`."""
    flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
    return f"{field} ({flag})" if value is None else f"{field} {value} ({flag} {value})"


def without_flags(message: str) -> str:
    """`message` without the command-line flags in parentheses that `option` (and the like) add: for an error about
    a saved config, which the user did not write with options (`scale_format two-level needs ...`)."""
    return re.sub(r" \(--[^()]*\)", "", message)


@dataclass(frozen=True)
class QuantConfig:
    """What to quantize and how. Defaults are the paper's FPTQ W4A8 recipe."""

    method: str = "fptq"
    # None: 4, or 8 for method fp8 (float8 weights); resolved at construction.
    w_bits: int | None = None
    # 128 is the usual choice; use 64 for hidden sizes that 128 does not divide (SmolLM2: 576); -1 = per channel.
    # None: 128, or -1 for method fp8 (one scale per weight tensor, no groups); resolved at construction.
    group_size: int | None = None
    symmetric: bool = True
    # Group scales: "fp16" (any value per group), or "two-level": integer multiples in [1, 16] of a
    # per-channel scale, chosen per group for the least error (symmetric 4-bit groups; the same
    # checkpoint format plus `channel_scales`), which lets the Hopper prefill kernel keep one int32
    # sum over K per output (fptq.primitives). None: two-level for symmetric 4-bit groups with 8-bit
    # activations (on the bundled model as accurate as fp16 scales, BENCHMARKS.md §2), else fp16.
    scale_format: str | None = None
    # 8: int8 activations (W4A8); 16: weight-only (W4A16, activations stay in floating point).
    # None: 8, or 16 for method awq (weight-only); resolved at construction.
    a_bits: int | None = None
    # Number format of the per-token dynamic layers' 8-bit activations: "int8", or "fp8" (float8
    # e4m3 with a per-token scale, W4A8-FP8: Hopper's fp8 tensor cores). Static layers stay int8.
    a_format: str = "int8"
    # FPTQ thresholds on max|X| (paper §3.2): < v0 static, [v0, v1) LAE + static, >= v1 dynamic.
    v0: float = 15.0
    v1: float = 150.0
    # layerwise (FPTQ), or every layer static / dynamic (ablations and naive baselines).
    # None: the method's default (see METHOD_RULES); resolved at construction.
    policy: str | None = None
    # What to do in the [v0, v1) band: LAE (FPTQ), SmoothQuant scales, or nothing.
    # None: the method's default (see METHOD_RULES); resolved at construction.
    equalization: str | None = None
    smoothquant_alpha: float = 0.5
    # Feed each block the outputs of the already-quantized previous blocks (as GPTQ does).
    sequential: bool = True
    # GPTQ (Frantar et al. 2023, Alg. 1): dampening as a fraction of mean(diag H) (the paper's
    # 1%), columns per lazy batch update (128 in the paper), quantize columns in order of
    # decreasing diag(H) ("act-order"; group scales are then fixed up front, "static groups";
    # on by default, as llm-compressor's GPTQModifier does: on the bundled model GPTQ without it
    # is worse than RTN, 29.7 vs 28.7, and with it 25.0),
    # and whether to collect each group's Hessian after the earlier groups of the block are
    # quantized (the reference code's --true-sequential; off: one calibration pass per block).
    gptq_damp: float = 0.01
    gptq_block: int = 128
    act_order: bool = True
    true_sequential: bool = False
    # AWQ (Lin et al. 2024, §3.2): grid points for the exponent alpha in [0, 1), and whether to
    # search a per-group weight clipping ratio as well.
    awq_grid: int = 20
    awq_clip: bool = True

    def __post_init__(self) -> None:
        if self.a_format not in ("int8", "fp8"):  # (a bad value first: "not used" would hide that it is bad)
            raise ConfigError(f"{option('a_format')} must be int8 or fp8, got {self.a_format!r}")
        # An unknown method gets FPTQ's defaults here; `fptq.methods.build_method` names it.
        policies, _, equalizations, _, a_bits = METHOD_RULES.get(self.method, METHOD_RULES["fptq"])
        for name, value in _method_defaults(self.method).items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.method in METHOD_RULES:
            if self.policy not in policies and self.policy in POLICIES:
                raise ConfigError(f"method {self.method} takes {option('policy')} {' or '.join(policies)}, "
                                  f"got {self.policy!r}")
            if self.equalization not in equalizations and self.equalization in EQUALIZATIONS:
                raise ConfigError(
                    f"method {self.method} takes {option('equalization')} {' or '.join(equalizations)}, "
                    f"got {self.equalization!r} (for the FPTQ ablations use {option('method', 'fptq')})"
                )
            if self.a_bits not in a_bits:
                takes = (f"only {option('a_bits', a_bits[0])}, its default" if len(a_bits) == 1
                         else option("a_bits", " or ".join(map(str, a_bits))))
                raise ConfigError(f"method {self.method} takes {takes}, got {self.a_bits}")
            if self.method == "fp8" and self.w_bits != 8:
                raise ConfigError(f"method fp8 stores float8 weights: it takes only {option('w_bits', 8)}, its default, "
                                  f"got {self.w_bits}")
            self._check_unused()
        if self.gptq_damp <= 0:
            raise ConfigError(f"{option('gptq_damp')} must be positive, got {self.gptq_damp}")
        if self.gptq_block < 1:
            raise ConfigError(f"{option('gptq_block')} must be at least 1, got {self.gptq_block}")
        if self.awq_grid < 1:
            raise ConfigError(f"{option('awq_grid')} must be at least 1, got {self.awq_grid}")
        if self.w_bits not in (4, 8):
            raise ConfigError(f"{option('w_bits')} must be 4 or 8, got {self.w_bits}")
        if self.a_bits not in (8, 16):
            raise ConfigError(f"{option('a_bits')} must be 8 (int8 activations) or 16 (weight-only), got {self.a_bits}")
        if self.a_format == "fp8" and (self.a_bits != 8 or self.method == "fp8"):
            raise ConfigError(f"{option('a_format')} fp8 applies to 8-bit activations of int4 / int8 weight methods "
                              f"(for float8 weights and activations use {option('method', 'fp8')})")
        if self.a_format == "fp8" and self.policy == "all-static":
            raise ConfigError(f"{option('a_format')} fp8 applies to the per-token (dynamic) layers, "
                              "and policy all-static has none")
        grouped_int4 = self.w_bits == 4 and self.symmetric and self.group_size != -1  # what two-level scales need
        if self.scale_format is None:
            two_level = grouped_int4 and self.a_bits == 8 and self.method != "fp8"
            object.__setattr__(self, "scale_format", "two-level" if two_level else "fp16")
        if self.scale_format not in SCALE_FORMATS:
            raise ConfigError(f"{option('scale_format')} must be one of {', '.join(SCALE_FORMATS)}, "
                              f"got {self.scale_format!r}")
        if self.scale_format == "two-level" and not grouped_int4:
            raise ConfigError(f"{option('scale_format')} two-level needs symmetric 4-bit weights in groups "
                              "(not per channel)")
        if self.group_size != -1 and self.group_size < 2:
            raise ConfigError(f"{option('group_size')} must be -1 (per channel) or at least 2, got {self.group_size}")
        if not 0 < self.v0 <= self.v1:
            raise ConfigError(f"need 0 < v0 <= v1 (--v0, --v1), got v0={self.v0}, v1={self.v1}")
        if self.policy not in POLICIES:
            raise ConfigError(f"{option('policy')} must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.equalization not in EQUALIZATIONS:
            raise ConfigError(f"{option('equalization')} must be one of {', '.join(EQUALIZATIONS)}, "
                              f"got {self.equalization!r}")
        if not 0.0 <= self.smoothquant_alpha <= 1.0:
            raise ConfigError(f"{option('smoothquant_alpha')} must lie in [0, 1], got {self.smoothquant_alpha}")

    def _check_unused(self) -> None:
        """A setting the chosen method does not use must keep the value that runs anyway (`_method_defaults`, what
        a saved config records): any other value is an error, never an option recorded as if it had applied."""
        defaults = _method_defaults(self.method)
        for name, why in unused_settings(self).items():
            if getattr(self, name) != defaults[name]:
                error = ConfigError(f"{option(name)} is not used {why}; leave it out, got {getattr(self, name)!r}")
                error.field, error.why = name, f"{name} is not used {why}"  # (for callers that name their own options)
                raise error

    @property
    def scheme(self) -> str:
        return f"W{self.w_bits}A{self.a_bits}"

    def to_dict(self) -> dict:
        """The settings that run (what a saved config and a comparison's cache key record): those the method does not
        use are left out (`unused_settings`; they keep their defaults, which `from_saved` gives back)."""
        unused = unused_settings(self)
        d = {name: value for name, value in asdict(self).items() if name not in unused}
        if d.get("a_format") == "int8":  # the default before a_format existed: int8 checkpoints and
            del d["a_format"]  # comparison cache keys stay what they were
        if d.get("scale_format") == "fp16":  # (likewise; a saved config without the key has fp16 scales)
            del d["scale_format"]
        return d


@dataclass(frozen=True)
class CalibConfig:
    """Calibration data: where it comes from and how much of it."""

    # bundled | random | c4 | wikitext2 | pile | path to a .txt / .jsonl file
    source: str = "bundled"
    samples: int = 128
    # Tokens per window. None: DEFAULT_SEQLEN, or the model's context where that is shorter; `fptq.quantize`
    # resolves it on the model and records the length used.
    seqlen: int | None = None
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ConfigError(f"{option('samples')} must be at least 1, got {self.samples}")
        if self.seqlen is not None and self.seqlen < 2:
            raise ConfigError(f"{option('seqlen')} must be at least 2, got {self.seqlen}")
        if self.batch_size < 1:
            raise ConfigError(f"{option('batch_size')} must be at least 1, got {self.batch_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    def for_context(self, context: int | None) -> CalibConfig:
        """This config with `seqlen` resolved for a model whose context is `context` tokens (None: not known): an
        unset (None) length becomes `default_seqlen(context)`; a given one stays as it is."""
        return self if self.seqlen is not None else dataclasses.replace(self, seqlen=default_seqlen(context))


def default_seqlen(context: int | None, default: int = DEFAULT_SEQLEN) -> int:
    """A window length left unset: `default`, or the model's context `context` where that is shorter (None: no
    limit known)."""
    return default if context is None else min(default, context)


def _method_defaults(method: str) -> dict:
    """The defaults of `method`'s config: the fields' own, and for those that depend on the method (None in a new
    QuantConfig) what it picks."""
    _, policy, _, equalization, a_bits = METHOD_RULES.get(method, METHOD_RULES["fptq"])
    fixed = {f.name: f.default for f in fields(QuantConfig)}
    group_size, w_bits = (-1, 8) if method == "fp8" else (DEFAULT_GROUP_SIZE, 4)
    return dict(fixed, policy=policy, equalization=equalization, group_size=group_size, w_bits=w_bits, a_bits=a_bits[0])


# Settings of one algorithm -> the methods that run it.
_ALGORITHM_FIELDS = {
    ("gptq_damp", "gptq_block", "act_order", "true_sequential"): ("gptq", "fptq+gptq"),
    ("awq_grid", "awq_clip"): ("awq",),
}


def _unused(method: str, a_bits: int, policy: str, equalization: str) -> dict:
    """The settings that `method` with `a_bits`, `policy` and `equalization` does not use: field -> why."""
    unused = {}
    if a_bits == 16:
        why = f"by method {method} with a_bits 16 (weight-only: activations stay in floating point)"
        unused.update(policy=why, equalization=why, v0=why, v1=why, a_format=why)
    elif policy != "layerwise":
        why = f"by method {method} with policy {policy} (FPTQ's thresholds apply to policy layerwise only)"
        unused.update(v0=why, v1=why)
    if method == "fp8":
        unused["group_size"] = "by method fp8 (float8 weights have one scale per tensor)"
        unused["symmetric"] = "by method fp8 (float8 weights have a scale and no zero point)"
        unused["a_format"] = "by method fp8 (its activations are float8 e4m3 with a per-tensor scale)"
        unused["scale_format"] = "by method fp8 (float8 weights have one scale per tensor)"
    for names, users in _ALGORITHM_FIELDS.items():
        if method not in users:
            unused.update(dict.fromkeys(names, f"by method {method} (only by {' and '.join(users)})"))
    if a_bits == 16 or equalization != "smoothquant":
        unused["smoothquant_alpha"] = f"by method {method} without SmoothQuant equalization"
    return unused


def unused_settings(config: QuantConfig) -> dict:
    """The settings `config`'s method does not use (field -> why): they must keep their defaults."""
    return _unused(config.method, config.a_bits, config.policy, config.equalization)


def from_saved(data: dict) -> QuantConfig:
    """The QuantConfig of a saved `quantization` entry: a setting left out takes its default (fptq records only the
    settings that ran), and one that an earlier fptq recorded although the method did not use it (it never applied)
    is set back to what runs, so that such folders still load. No `scale_format`: fp16 scales, as every checkpoint
    before two-level scales (`QuantConfig.to_dict` leaves fp16 out)."""
    data = {"scale_format": "fp16", **data}
    method = data.get("method", QuantConfig.method)
    defaults = _method_defaults(method)
    a_bits = data.get("a_bits") or defaults["a_bits"]  # (fptq records it; left out: the method's default, as here)
    policy = data.get("policy") or defaults["policy"]
    equalization = data.get("equalization") or defaults["equalization"]
    unused = _unused(method, a_bits, policy, equalization) if method in METHOD_RULES else {}
    return from_dict(QuantConfig, {**data, **{name: defaults[name] for name in unused if name in data}})


def from_dict(cls, data: dict):
    """Build a config dataclass from a dict (a saved config), rejecting unknown keys and values of the wrong type (a
    number given as text, ...)."""
    known = {f.name: f.type for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    for name, value in data.items():
        kinds = [_TYPES[t.strip()] for t in str(known[name]).split("|")]
        if not any(_of_type(value, kind) for kind in kinds):
            names = " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
            raise ConfigError(f"{name} must be {names}, got {value!r}")
    return cls(**data)


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None)}


def _of_type(value, kind) -> bool:
    """JSON's view: an int is no bool, a float may be written as an int."""
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def replace(config, **changes):
    return dataclasses.replace(config, **changes)

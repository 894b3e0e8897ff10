"""Quantize one model several ways and evaluate each on the same data: one table.

Used by `fptq demo` (the bundled model, FP16 vs naive W4A8 vs per-token W4A8 vs FPTQ) and by
`fptq compare`. Each variant starts from a fresh copy of the FP model, is quantized through
the same engine, saved (so its size on disk is real) and evaluated on the same windows.

Caching: a variant's folder is `OUT/<name>-<key>`, `key` a hash of (model, QuantConfig,
CalibConfig, format version, fptq version, and the content of the inputs: the size and mtime of
a local model folder's config.json and *.safetensors, or a hub model's snapshot commit where it is in
the local Hugging Face cache, and the sha256 of a calibration file), holding
the saved model and `compare_stats.json` (quantization time and peak memory of the run that made
it). Evaluation results are cached in the same folder under a hash of the evaluation settings. A
re-run with the same settings loads instead of quantizing, and reads instead of evaluating.
`results.json` / `results.md` are written (atomically) when every variant is done; while the run
goes on, the rows so far are in `results.partial.json` / `.md`. A variant listed twice runs once,
at its first place. Bad settings (window length, group size, calibration data) fail before the
first variant is quantized or evaluated.

Variant specs (`fptq compare --methods ...`): `fp16`, or `NAME-wXaY[-OPTION...]` with NAME a
`--method` (rtn, smoothquant, gptq, awq, fptq, fptq+gptq, fp8) and options `static` /
`dynamic` (activations all per-tensor static / all per-token dynamic), `layerwise`, `lae` /
`sq` / `noeq` (FPTQ's equalization ablation), `actorder` / `noactorder` (GPTQ, default on), `fp8`
(per-token activations in float8 e4m3, W4A8-FP8), `2l` / `fp16s` (two-level or fp16 group scales,
`--scale-format`; default: two-level for W4A8). 8-bit integer weights are per output channel,
4-bit ones group-wise with the comparison's group size.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from fptq import __version__
from fptq.api import check_calib_context, check_group_size, quantize
from fptq.config import (
    DEFAULT_SEQLEN,
    FORMAT_VERSION,
    CalibConfig,
    QuantConfig,
    default_seqlen,
    replace,
    unused_settings,
    without_flags,
)
from fptq.errors import ConfigError, HubUnavailableError
from fptq.eval.perplexity import check_ppl_settings, max_positions, perplexity, perplexity_tokens
from fptq.export.native import CONFIG_NAME, WEIGHTS_NAME, load_quantized, save_quantized
from fptq.models.loading import load_model, resolve_model
from fptq.report import write_text_atomic
from fptq.report.tables import markdown_table

__all__ = [
    "Variant",
    "DEMO_VARIANTS",
    "DEFAULT_COMPARE",
    "VARIANT_OPTIONS",
    "parse_variant",
    "run_comparison",
    "COMPARE_CALIB_SEQLEN",
    "seqlen_note",
    "comparison_table",
    "bits_per_weight",
]

# Calibration windows of `fptq compare` / `fptq demo` (and `run_comparison`) when their length is left unset: shorter
# than `fptq quantize`'s 2048, so that a line-up of a dozen variants calibrates in minutes; cut to the model's context
# where that is shorter.
COMPARE_CALIB_SEQLEN = 512

# The default `fptq compare` line-up: the paper's comparisons plus the baselines it builds on.
DEFAULT_COMPARE = (
    "fp16,rtn-w8a8,smoothquant-w8a8,fp8-w8a8,rtn-w4a16,gptq-w4a16,awq-w4a16,"
    "rtn-w4a8,rtn-w4a8-static,smoothquant-w4a8,gptq-w4a8,fptq-w4a8,fptq+gptq-w4a8"
)


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    config: QuantConfig | None  # None: the unquantized model


def demo_variants(group_size: int = 64) -> list[Variant]:
    return [
        Variant("fp16", "FP16 weights (computed in fp32 on CPU)", None),
        Variant(
            "naive-w4a8",
            f"RTN int4 g{group_size}, every layer per-tensor static int8",
            QuantConfig(group_size=group_size, policy="all-static", equalization="none"),
        ),
        Variant(
            "dynamic-w4a8",
            f"RTN int4 g{group_size}, every layer per-token dynamic int8",
            QuantConfig(group_size=group_size, policy="all-dynamic", equalization="none"),
        ),
        Variant(
            "fptq-w4a8",
            f"FPTQ: layer-wise static / LAE+static / dynamic, int4 g{group_size}",
            QuantConfig(group_size=group_size),
        ),
    ]


DEMO_VARIANTS = demo_variants()

_OPTIONS = {
    "static": {"policy": "all-static"},
    "dynamic": {"policy": "all-dynamic"},
    "layerwise": {"policy": "layerwise"},
    "lae": {"equalization": "lae"},
    "sq": {"equalization": "smoothquant"},
    "noeq": {"equalization": "none"},
    "actorder": {"act_order": True},
    "noactorder": {"act_order": False},
    "fp8": {"a_format": "fp8"},
    "2l": {"scale_format": "two-level"},
    "fp16s": {"scale_format": "fp16"},
}
VARIANT_OPTIONS = tuple(_OPTIONS)  # what may follow NAME-wXaY in a variant spec


def parse_variant(spec: str, group_size: int = 128, **overrides) -> Variant:
    """`fp16` or `NAME-wXaY[-OPTION...]` -> a Variant (see the module docstring).

    `overrides` are QuantConfig fields applied to every quantized variant whose method uses them (e.g.
    smoothquant_alpha to SmoothQuant variants, the GPTQ settings to GPTQ ones) unless the spec sets them itself.
    """
    from fptq.methods import METHODS

    spec = spec.strip()
    if spec in ("fp16", "fp", "bf16"):
        return Variant("fp16", "unquantized (fp16 weights)", None)
    parts = spec.split("-")
    scheme = next((i for i, p in enumerate(parts) if len(p) >= 4 and p[0] == "w" and "a" in p[1:]), None)
    if scheme is None:
        raise ConfigError(f"variant {spec!r} is not 'fp16' or NAME-wXaY[-OPTION] (e.g. gptq-w4a16, smoothquant-w8a8)")
    method = "-".join(parts[:scheme])
    if method not in METHODS:
        raise ConfigError(f"variant {spec!r}: unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    try:
        w_bits, a_bits = (int(x) for x in parts[scheme][1:].split("a"))
    except ValueError:
        raise ConfigError(f"variant {spec!r}: cannot read the scheme {parts[scheme]!r} (e.g. w4a8)") from None
    fields = dict(method=method, w_bits=w_bits, a_bits=a_bits, group_size=-1 if w_bits == 8 else group_size)
    chosen = {}  # field -> the option that set it
    for option in parts[scheme + 1 :]:
        if option not in _OPTIONS:
            raise ConfigError(f"variant {spec!r}: unknown option {option!r}; options: {', '.join(_OPTIONS)}")
        for name, value in _OPTIONS[option].items():
            if name in chosen and fields[name] != value:
                raise ConfigError(f"variant {spec!r}: options {chosen[name]!r} and {option!r} contradict each other")
            chosen[name] = option
        fields.update(_OPTIONS[option])
    # the variant's own spec wins over the comparison-wide settings (e.g. `-noactorder` over --act-order), and
    # those apply where the variant's method uses them
    try:
        unused = unused_settings(QuantConfig(**fields))
        config = QuantConfig(**{**{k: v for k, v in overrides.items() if k not in unused}, **fields})
    except ConfigError as exc:  # (name the variant, and the option of it that does not apply)
        option = chosen.get(getattr(exc, "field", None))
        if option is not None:
            raise ConfigError(f"variant {spec!r}: option {option!r} does not apply ({exc.why}); drop it") from None
        raise ConfigError(f"variant {spec!r}: {exc}") from None
    return Variant(spec, describe(config), config)


def describe(config: QuantConfig) -> str:
    if config.method == "fp8":
        return "float8 e4m3 weights and activations, per-tensor scales"
    weights = f"int{config.w_bits} " + ("per-channel" if config.group_size == -1 else f"g{config.group_size}")
    weights += f" {config.scale_format} scales" if config.group_size != -1 else ""  # (per channel: fp16 only)
    dynamic = "fp8 e4m3" if config.a_format == "fp8" else "int8"
    acts = {
        "all-static": "per-tensor static int8 acts",
        "all-dynamic": f"per-token dynamic {dynamic} acts",
        "layerwise": "layer-wise static/LAE/dynamic int8 acts" if dynamic == "int8"
        else f"layer-wise static/LAE int8, dynamic {dynamic} acts",
    }[config.policy] if config.a_bits == 8 else "fp activations"
    extra = f", equalization {config.equalization}" if config.method in ("fptq", "fptq+gptq") and config.equalization != "lae" else ""
    return f"{config.method}: {weights}, {acts}{extra}"


def _model_fingerprint(model_path: str) -> list | str | None:
    """What identifies the model's weights besides its name, so that a model replaced under the same name gets new
    cache keys: (name, size, mtime_ns) of a local model folder's config.json and *.safetensors, or for a hub id the
    commit of its snapshot in the local Hugging Face cache (None where it is not cached)."""
    folder = Path(model_path)
    if not folder.is_dir():
        return _hub_revision(model_path)
    files = sorted(p for p in folder.iterdir() if p.name == "config.json" or p.suffix == ".safetensors")
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.is_file()]


def _hub_revision(model_id: str) -> str | None:
    """The commit that the local Hugging Face cache's `main` ref of `model_id` points to (its snapshot folder's
    name), read from the cache alone, without network access; None where the model is not cached."""
    from fptq.models.loading import cached_hub_config

    config = cached_hub_config(model_id)
    return Path(config).parent.name if config is not None else None


def _calib_fingerprint(calib: CalibConfig) -> str | None:
    """sha256 of a local calibration file's content (None for bundled, random and hub sources)."""
    from fptq.data.calib import HUB_DATASETS

    if calib.source in ("bundled", "random") or calib.source in HUB_DATASETS:
        return None
    path = Path(calib.source).expanduser()
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _key(model_path: str, config: QuantConfig | None, calib: CalibConfig) -> str:
    payload = {"model": model_path, "format": FORMAT_VERSION, "version": __version__,
               "model_files": _model_fingerprint(model_path),
               "config": None if config is None else config.to_dict(), "calib": None if config is None else calib.to_dict(),
               "calib_file": None if config is None else _calib_fingerprint(calib)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _is_cached(folder: Path) -> bool:
    """A variant's folder holds its quantized model and stats, calibrated as this fptq would: not on windows that
    overlap in a text long enough for disjoint ones (what fptq drew before 2026-11-27 where its first draw
    overlapped; the cache key, which holds the settings, cannot tell those apart: they are quantized again)."""
    if not ((folder / CONFIG_NAME).is_file() and (folder / "compare_stats.json").is_file()):
        return False
    try:
        record = json.loads((folder / CONFIG_NAME).read_text()).get("calibration") or {}
        tokens, text, covered = record.get("tokens"), record.get("text_tokens"), record.get("covered_tokens")
    except (OSError, ValueError, AttributeError):
        return True  # (`load_quantized` reports a damaged folder)
    return not (isinstance(tokens, int) and isinstance(text, int) and isinstance(covered, int)
                and covered < tokens <= text)


def _model_config(fp_path: Path, trust_remote_code: bool = False):
    """The model's config (for a hub id: fetched into the local Hugging Face cache, so that the cache keys see the
    snapshot's commit, `_hub_revision`); None where it cannot be had (offline and not cached: `load_model` reports
    what is wrong)."""
    from fptq.models.loading import CONFIG_ERRORS, hub_options

    try:
        from transformers import AutoConfig

        options = hub_options(str(fp_path))
        return AutoConfig.from_pretrained(str(fp_path), trust_remote_code=trust_remote_code, **options)
    except (*CONFIG_ERRORS, HubUnavailableError):
        return None


def _fit_lengths(calib: CalibConfig, ppl_seqlen: int | None, context: int | None, variants: list[Variant],
                 ppl_source: str, log) -> tuple[CalibConfig, int]:
    """The calibration config and perplexity window length with an unset (None) length resolved for the model's
    `context` (`default_seqlen`: COMPARE_CALIB_SEQLEN and DEFAULT_SEQLEN, capped), and one `log` line for each
    length that the context made shorter than its default (and that some variant or the evaluation uses)."""
    fitted = calib if calib.seqlen is not None else replace(calib, seqlen=default_seqlen(context, COMPARE_CALIB_SEQLEN))
    if calib.seqlen is None and fitted.seqlen < COMPARE_CALIB_SEQLEN and any(v.config is not None for v in variants):
        log(seqlen_note("calibration", fitted.seqlen, COMPARE_CALIB_SEQLEN))
    if ppl_seqlen is None:
        ppl_seqlen = default_seqlen(context)
        if ppl_seqlen < DEFAULT_SEQLEN and ppl_source != "none":
            log(seqlen_note("perplexity", ppl_seqlen, DEFAULT_SEQLEN))
    return fitted, ppl_seqlen


def seqlen_note(what: str, seqlen: int, default: int) -> str:
    """The line that says a window length left unset was cut to the model's context `seqlen` (from `default`)."""
    return f"{what} windows of {seqlen} tokens (the model's context; shorter than the default {default})"


def _check_before_evaluating(model_name: str, model_config, variants: list[Variant], calib: CalibConfig, folders,
                             ppl_source: str, ppl_seqlen: int, ppl_windows: int | None,
                             trust_remote_code: bool = False) -> None:
    """Everything that can be checked without quantizing or evaluating, so a bad setting fails in seconds
    instead of after the first variants: the perplexity settings, each variant's group size and the calibration
    length against the model (its config, or None), and the calibration data itself (when some variant still has
    to be quantized)."""
    check_ppl_settings(ppl_seqlen, ppl_windows, source=ppl_source)
    quantized = [v for v in variants if v.config is not None]
    if model_config is not None:
        from fptq.models.arch import get_arch

        get_arch(model_config)
        context = max_positions(model_config)
        check_ppl_settings(ppl_seqlen, ppl_windows, context, source=ppl_source)
        if quantized:
            check_calib_context(calib.seqlen, context)
        for size in sorted({v.config.group_size for v in quantized if v.config.group_size != -1}):
            check_group_size(model_config, size, trust_remote_code)  # (shapes only: a skeleton on the meta device)
    if calib.source != "random" and any(not _is_cached(folders[v.name]) for v in quantized):
        from fptq.data.calib import calibration_tokens
        from fptq.models.loading import load_tokenizer

        calibration_tokens(load_tokenizer(model_name, trust_remote_code=trust_remote_code), calib)


class PeakRSS:
    """Peak resident memory (MiB) of this process while the block runs, sampled every 20 ms
    (Linux /proc; elsewhere the process-lifetime `ru_maxrss`). On CUDA, use the device peak."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()

    @staticmethod
    def current() -> float | None:
        try:
            with open("/proc/self/statm") as f:
                import os

                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return None

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.current() or 0.0)

    def __enter__(self) -> PeakRSS:
        self.peak = self.current() or 0.0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.peak == 0.0:
            from fptq.api import peak_memory_mb

            self.peak = peak_memory_mb("cpu") or 0.0


def bits_per_weight(folder: Path) -> float:
    """Storage bits per weight of the quantized linears, scales (two-level: with the channel scales) and zero
    points included, all from the saved tensors (biases and activation scales excluded; the weights counted from the
    packed `qweight`'s shape and the format's weight bits, or an fp8 `weight`'s shape): a loaded model's modules may
    be fused (`fptq.load_quantized` on CUDA: a `GatedMLP` has no gate_proj / up_proj)."""
    from safetensors import safe_open

    config = json.loads((folder / CONFIG_NAME).read_text())
    layers = {r["layer"] for r in config["policy"]}
    w_bits = config["quantization"]["w_bits"]
    bits, weights = 0, 0
    with safe_open(str(folder / WEIGHTS_NAME), "pt") as f:
        for key in f.keys():
            layer, _, name = key.rpartition(".")
            if layer in layers and name in ("qweight", "scales", "zeros", "channel_scales", "weight", "weight_scale"):
                t = f.get_slice(key)
                numel = math.prod(t.get_shape())
                bits += numel * _dtype_bits(t.get_dtype())
                if name == "qweight":  # ((N, K * w_bits / 8) bytes of packed codes)
                    weights += numel * 8 // w_bits
                elif name == "weight":  # ((N, K) fp8 codes)
                    weights += numel
    return bits / weights


def _dtype_bits(dtype: str) -> int:
    return {"U8": 8, "I8": 8, "F8_E4M3": 8, "F16": 16, "BF16": 16, "F32": 32, "I32": 32, "F64": 64, "I64": 64}[dtype]


def _strategy_mix(policy_rows: list[dict]) -> str:
    from collections import Counter

    c = Counter(r["strategy"] for r in policy_rows)
    short = {"static": "S", "equalized+static": "LAE", "dynamic": "D", "dynamic-fp8": "D8", "none": "A16",
             "fp8-static": "FP8"}
    return " ".join(f"{short.get(k, k)}:{v}" for k, v in sorted(c.items()))


def _warn_for_variant(variant: Variant, caught: list) -> None:
    """The warnings of a variant's quantization again, fptq's own named for the variant and without the command-line
    flags they name (`fptq compare` sets a variant's options by its name, e.g. `-2l`, not by flags); others as they
    were."""
    for w in caught:
        text = str(w.message)
        if text.startswith("fptq: "):
            warnings.warn(f"fptq: variant {variant.name}: {without_flags(text.removeprefix('fptq: '))}", w.category,
                          stacklevel=3)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _quantized_model(variant: Variant, model_name: str, folder: Path, calib: CalibConfig, device: str,
                     progress: bool, log, trust_remote_code: bool = False,
                     cached: bool = False) -> tuple[object, object, dict]:
    """Load the cached quantized folder (`cached`: `_is_cached`), or quantize, save and record its stats."""
    stats_path = folder / "compare_stats.json"
    if cached:
        log(f"   reusing {folder}")
        from fptq.models.loading import load_tokenizer

        tokenizer = load_tokenizer(folder, trust_remote_code=trust_remote_code)
        return load_quantized(folder, device=device), tokenizer, json.loads(stats_path.read_text())
    model, tokenizer = load_model(model_name, trust_remote_code=trust_remote_code)
    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with PeakRSS() as rss, warnings.catch_warnings(record=True) as caught:
        start = time.perf_counter()
        quantize(model, tokenizer, variant.config, calib, device=device, progress=progress)
        seconds = time.perf_counter() - start
    _warn_for_variant(variant, caught)
    peak = model.fptq_stats["peak_memory_mb"] if torch.device(device).type == "cuda" else rss.peak
    save_quantized(model, folder, tokenizer=tokenizer, overwrite=True)
    stats = {"quant_seconds": seconds, "peak_memory_mb": peak, "library_version": __version__}
    write_text_atomic(stats_path, json.dumps(stats, indent=2) + "\n")
    return model.to(device), tokenizer, stats


def run_comparison(
    model_name: str,
    variants: list[Variant],
    calib: CalibConfig,
    *,
    out_dir: Path,
    ppl_source: str = "bundled",
    ppl_seqlen: int | None = None,
    ppl_windows: int | None = None,
    tasks: list[str] | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = True,
    log=print,
    trust_remote_code: bool = False,
) -> list[dict]:
    """Quantize (or reuse) and evaluate each variant; writes `results.json` / `results.md` to `out_dir`.

    Bad settings (perplexity window length or count, a group size or calibration length that does not fit the
    model, calibration data that is missing or too short) raise a ConfigError / CalibrationError before anything
    is quantized or evaluated. A variant listed twice (by name) runs once. An unset calibration length
    (`calib.seqlen` None) is COMPARE_CALIB_SEQLEN (512) tokens and an unset `ppl_seqlen` (None) 2048, each cut to the
    model's context where that is shorter (said once through `log`); the cache keys see the length used, and each
    quantized variant's row records its calibration (`calibration`)."""
    unique: dict[str, Variant] = {}
    for variant in variants:
        unique.setdefault(variant.name, variant)
    variants = list(unique.values())
    if not variants:
        raise ConfigError("no variants to compare; give at least one, e.g. --methods fp16,rtn-w4a8,fptq-w4a8")
    out_dir = Path(out_dir)
    fp_path = Path(resolve_model(model_name))
    model_config = _model_config(fp_path, trust_remote_code)  # (before the keys: a hub model's commit is then cached)
    calib, ppl_seqlen = _fit_lengths(calib, ppl_seqlen, max_positions(model_config), variants, ppl_source, log)
    folders = {v.name: out_dir / f"{v.name}-{_key(str(fp_path), v.config, calib)}" for v in variants}
    _check_before_evaluating(model_name, model_config, variants, calib, folders, ppl_source, ppl_seqlen, ppl_windows,
                             trust_remote_code)
    out_dir.mkdir(parents=True, exist_ok=True)
    eval_settings = {"ppl": ppl_source, "seqlen": ppl_seqlen, "windows": ppl_windows, "tasks": tasks or [], "limit": limit}
    eval_key = hashlib.sha256(json.dumps(eval_settings, sort_keys=True).encode()).hexdigest()[:12]
    results = []
    ppl_tokens = None
    for variant in variants:
        log(f"== {variant.name}: {variant.description}")
        folder = folders[variant.name]
        if variant.config is None:
            folder.mkdir(parents=True, exist_ok=True)  # holds the cached evaluation only
        row = {"method": variant.name, "description": variant.description, "folder": str(folder)}
        eval_path = folder / f"eval-{eval_key}.json"
        # (a quantized variant's evaluation only with the model it evaluated: a folder quantized again drops it)
        cached = variant.config is not None and _is_cached(folder)
        kept = eval_path.is_file() and (variant.config is None or cached)
        cached_eval = json.loads(eval_path.read_text()) if kept else None
        if variant.config is None:
            size = (fp_path / WEIGHTS_NAME).stat().st_size if (fp_path / WEIGHTS_NAME).is_file() else None
            row.update(scheme="W16A16", policy="-", bits_per_weight=16.0, quant_seconds=None, peak_memory_mb=None,
                       size_mib=size and size / 2**20)
            model = tokenizer = None
            if cached_eval is None:
                model, tokenizer = load_model(model_name, trust_remote_code=trust_remote_code)
                model.to(device)
        else:
            model, tokenizer, stats = _quantized_model(variant, model_name, folder, calib, device, progress, log,
                                                       trust_remote_code, cached)
            row.update(
                scheme=variant.config.scheme,
                policy=_strategy_mix(model.fptq_info["policy"]),
                bits_per_weight=bits_per_weight(folder),
                size_mib=(folder / WEIGHTS_NAME).stat().st_size / 2**20,
                calibration=calib.to_dict(),
                **{k: stats[k] for k in ("quant_seconds", "peak_memory_mb")},
            )
        if cached_eval is None:
            if ppl_tokens is None and ppl_source != "none":
                ppl_tokens = perplexity_tokens(tokenizer, ppl_source)
            evaluation = {}
            if ppl_source != "none":
                ppl = perplexity(model, ppl_tokens, seqlen=ppl_seqlen, max_windows=ppl_windows, device=device,
                                 progress=progress, desc=f"ppl {variant.name}")
                evaluation.update(ppl=ppl["ppl"], ppl_tokens=ppl["tokens"], ppl_data=ppl_source)
            if tasks:
                from fptq.eval.tasks import run_tasks, table_columns

                task_results = run_tasks(model, tokenizer, tasks, limit=limit, batch_size=batch_size, device=device,
                                         progress=progress)
                evaluation.update(tasks=table_columns(task_results), task_details=task_results)
            write_text_atomic(eval_path, json.dumps(evaluation, indent=2) + "\n")
        else:
            log("   reusing cached evaluation")
            evaluation = cached_eval
        row.update(evaluation)
        if "ppl" in row:
            log(f"   ppl {row['ppl']:.3f} on {row['ppl_tokens']} tokens")
        results.append(row)
        del model
        gc.collect()
        # the table so far, after every variant (an interrupted run leaves it, named as partial)
        write_text_atomic(out_dir / "results.partial.json", json.dumps(results, indent=2) + "\n")
        write_text_atomic(out_dir / "results.partial.md", comparison_table(results) + "\n")
    write_text_atomic(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    write_text_atomic(out_dir / "results.md", comparison_table(results) + "\n")
    for name in ("results.partial.json", "results.partial.md"):
        (out_dir / name).unlink(missing_ok=True)
    return results


def _r(value, digits):
    """`value` with a fixed number of decimals (a column reads alike in every row), or None ("-")."""
    return None if value is None else f"{value:.{digits}f}"


def comparison_table(results: list[dict]) -> str:
    """Markdown: method, scheme, bits/weight, size, perplexity, task accuracies, time, memory."""
    task_cols = []
    for r in results:
        task_cols.extend(k for k in r.get("tasks", {}) if k not in task_cols)
    headers = ["method", "scheme", "layers", "bits/weight", "size MiB", "ppl", *task_cols, "quant s", "peak MiB"]
    rows = []
    for r in results:
        rows.append(
            [r["method"], r["scheme"], r["policy"], _r(r.get("bits_per_weight"), 2), _r(r.get("size_mib"), 1),
             _r(r.get("ppl"), 3), *[_r(r.get("tasks", {}).get(c), 2) for c in task_cols],
             _r(r.get("quant_seconds"), 1), _r(r.get("peak_memory_mb"), 0)]
        )
    return markdown_table(headers, rows)


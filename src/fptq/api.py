"""The Python API: `quantize(model, tokenizer, config, calibration)`.

The CLI is a thin layer over this module and `fptq.export`.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from functools import reduce

import torch

from fptq import __version__
from fptq.calib.engine import run_engine
from fptq.config import FORMAT_VERSION, CalibConfig, QuantConfig, option
from fptq.data.calib import calibration_windows
from fptq.errors import ConfigError, ModelError
from fptq.eval.perplexity import max_positions
from fptq.methods import build_method
from fptq.models.arch import get_arch
from fptq.models.loading import check_token_ids
from fptq.nn.quant_linear import QuantLinear

__all__ = ["quantize", "check_group_size", "peak_memory_mb"]


def _quantized_linears(model, arch):
    blocks = model.get_submodule(arch.blocks)
    for i, block in enumerate(blocks):
        for group in arch.groups:
            for path in group.linears:
                yield f"{arch.blocks}.{i}.{path}", block.get_submodule(path)


def check_calib_context(seqlen: int, context: int | None) -> None:
    """A one-line error where calibration sequences are longer than the model's context (`max_position_embeddings`;
    None: no limit known)."""
    if context is not None and seqlen > context:
        raise ConfigError(f"calibration {option('seqlen', seqlen)} is longer than the model's context of {context} "
                          f"tokens (max_position_embeddings); use {context} or less")


def check_group_size(model, group_size: int, trust_remote_code: bool = False) -> None:
    """A clear error naming the first layer that `group_size` does not divide, and what would. `model`: a model, or
    its transformers config (the shapes then from a skeleton on the meta device: no memory, no weights read; a config
    that transformers cannot build a skeleton of is left to the check on the loaded model)."""
    if group_size == -1:
        return
    if not isinstance(model, torch.nn.Module):
        from transformers import AutoModelForCausalLM

        try:
            with torch.device("meta"):  # (a copy: from_config records its attention choice in the config)
                model = AutoModelForCausalLM.from_config(copy.deepcopy(model), trust_remote_code=trust_remote_code)
        except Exception:  # noqa: BLE001 - only an early check: `quantize` checks the loaded model again
            return
    arch = get_arch(model)
    sizes = {name: m.in_features for name, m in _quantized_linears(model, arch)}
    g = reduce(math.gcd, sizes.values())
    valid = [d for d in range(16, g + 1) if g % d == 0 and d % 16 == 0]
    which = "multiples of 16 that divide every layer" if valid else "group sizes that divide every layer"
    valid = valid or [d for d in range(2, g + 1) if g % d == 0]
    for name, k in sizes.items():
        if k % group_size:
            raise ConfigError(
                f"group size {group_size} does not divide the input size {k} of {name}; "
                f"{which}: {', '.join(map(str, valid))} (the usual choices; any divisor works, or -1 for per channel)"
            )


def peak_memory_mb(device: torch.device | str) -> float | None:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    except ImportError:  # pragma: no cover
        return None


def _round_to_storage_dtype(model, dtype=torch.float16) -> None:
    """Round every float parameter and buffer outside QuantLinear's fixed-format buffers to the
    dtype they are saved in, so the in-memory model equals the one loaded back bit for bit."""
    for module in model.modules():
        if isinstance(module, QuantLinear):
            if module.bias is not None:
                module.bias.data = module.bias.data.to(dtype).to(module.bias.dtype)
            continue
        for p in module.parameters(recurse=False):
            if p.is_floating_point():
                p.data = p.data.to(dtype).to(p.dtype)


def _check_not_quantized(model) -> None:
    """`quantize` takes a full-precision model; a quantized one (from `quantize` or `load_quantized`) is an error."""
    from fptq.nn.fp8_linear import Fp8Linear
    from fptq.nn.shared_input import is_fused

    quantized = next((n for n, m in model.named_modules() if isinstance(m, (QuantLinear, Fp8Linear))), None)
    if getattr(model, "fptq_info", None) is not None or quantized is not None or is_fused(model):
        where = f" (layer {quantized} is quantized)" if quantized else ""
        raise ModelError(
            f"this model is already quantized{where}; fptq.quantize needs the original full-precision model "
            "(load it again with fptq.load_model)"
        )


# FPTQ's methods with 16-bit activations, and the method whose weights they then are (bit for bit, tested).
_WEIGHT_ONLY_AS = {"fptq": "rtn", "fptq+gptq": "gptq"}


def _warn_weight_only_fptq(config: QuantConfig) -> None:
    """A warning where an FPTQ method runs weight-only: its layer-wise policy and LAE act on 8-bit activations, so its
    weights are another method's, saved under FPTQ's name."""
    same = _WEIGHT_ONLY_AS.get(config.method) if config.a_bits == 16 else None
    if same is not None:
        warnings.warn(f"fptq: method {config.method} with {option('a_bits', 16)} gives the weights of method {same}, "
                      "bit for bit: FPTQ's layer-wise activation policy and LAE act on 8-bit activations only; "
                      f"use {option('method', same)}, so that the checkpoint says what ran", UserWarning, stacklevel=3)


def _warn_two_level_awq(config: QuantConfig) -> None:
    """A warning where method awq runs with two-level scales, which its searches fit at every step: slower and, on the
    bundled model, less accurate than fp16 scales (the measurements are in README, Methods)."""
    if config.method == "awq" and config.scale_format == "two-level":
        warnings.warn(f"fptq: method awq with {option('scale_format', 'two-level')} fits two-level scales (16 "
                      "candidates a group) at every step of its scale and clipping searches: slower, and on the bundled "
                      "model 2-3.3 times as long with a higher perplexity than fp16 scales; use "
                      f"{option('scale_format', 'fp16')}, awq's default", UserWarning, stacklevel=3)


def quantize(
    model,
    tokenizer=None,
    config: QuantConfig | None = None,
    calibration: CalibConfig | torch.Tensor | None = None,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
):
    """Quantize `model` in place with `config` and return it.

    calibration: a `CalibConfig` (text source, samples, sequence length, seed) or a ready
    `(samples, seqlen)` tensor of token ids; a CalibConfig's unset `seqlen` (None, the default) is 2048 tokens, or
    the model's context (max_position_embeddings) where that is shorter. The returned model has `QuantLinear` layers
    and an `fptq_info` dict (method, parameters, per-layer policy, calibration with the sequence length used), which
    `fptq.save_quantized` writes to `fptq_config.json`.
    """
    _check_not_quantized(model)
    config = config or QuantConfig()
    calibration = calibration if calibration is not None else CalibConfig()
    arch = get_arch(model)
    check_group_size(model, config.group_size)
    _warn_weight_only_fptq(config)
    _warn_two_level_awq(config)
    context = max_positions(model)
    if isinstance(calibration, CalibConfig):
        calibration = calibration.for_context(context)
    check_calib_context(calibration.shape[1] if isinstance(calibration, torch.Tensor) else calibration.seqlen, context)
    if isinstance(calibration, torch.Tensor):
        tokens, calib_info, batch_size = calibration, {"source": "tensor", "samples": calibration.shape[0],
                                                      "seqlen": calibration.shape[1]}, 8
    else:
        if tokenizer is None and calibration.source != "random":
            raise ConfigError("a tokenizer is needed to calibrate on text")
        tokens, calib_info = calibration_windows(tokenizer, calibration, getattr(model.config, "vocab_size", None))
        check_token_ids(tokens, model, f"the calibration text from {calibration.source}")
        batch_size = calibration.batch_size
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.eval()
    start = time.perf_counter()
    rows = run_engine(
        model,
        arch,
        tokens,
        build_method(config),
        device=device,
        batch_size=batch_size,
        sequential=config.sequential,
        progress=progress,
    )
    _round_to_storage_dtype(model)
    model.fptq_info = {
        "format_version": FORMAT_VERSION,
        "library": "fptq",
        "library_version": __version__,
        "quantization": config.to_dict(),
        "calibration": calib_info,
        "policy": rows,
    }
    # Timings vary run to run, so they stay out of the saved config (which must be reproducible).
    model.fptq_stats = {"quantization_seconds": time.perf_counter() - start, "peak_memory_mb": peak_memory_mb(device)}
    return model

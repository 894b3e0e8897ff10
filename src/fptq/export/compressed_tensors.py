"""Export to the compressed-tensors format, which transformers and vLLM load.

    config.json          the model's config with a "quantization_config" entry (quant_method
                         "compressed-tensors", status "compressed", one config group per layer scheme)
    model.safetensors    every tensor; quantized layers in compressed-tensors' names:
                           int weights (QuantLinear, format "pack-quantized"): `weight_packed` (int32,
                           (N, ceil(K * bits / 32)): eight 4-bit codes a word, lowest bits first, the
                           stored code being the signed value + 2**(bits - 1)), `weight_scale` (fp16,
                           (N, groups)), `weight_shape` (int64 [N, K]), `weight_zero_point` (asymmetric:
                           the same packing along N), `input_scale` (fp32 (1,), static activations), `bias`
                           float8 layers (Fp8Linear, format "float-quantized"): `weight` (float8 e4m3),
                           `weight_scale` and `input_scale` (fp32 (1,)), `bias`
    fptq_export.json     what was exported: fptq's settings and calibration, and each scheme's layers
    generation_config.json, tokenizer files

No value changes on the way: fptq's codes are unsigned with zero point 2**(bits - 1) for symmetric weights,
which is exactly compressed-tensors' packed value, and fptq's packed bytes (two codes a byte, low nibble
first) read as little-endian int32 words are `weight_packed`. Group scales are fptq's fp16 ones (two-level
scales keep complete fp16 group scales, so nothing is lost). Other weights are fp16, as in fptq's own format,
and the config says float16.

Activation settings map one to one: static per-tensor int8 layers (FPTQ's "static" / "equalized+static";
the equalization is already folded into the weights) as strategy "tensor" with their `input_scale`,
per-token dynamic int8 as "token" dynamic, dynamic float8 as float "token" dynamic, weight-only layers with
no input quantization. Int weights are "pack-quantized" whatever the activations (compressed-tensors itself would
write int-quantized, one int8 a code, for int8 activations; transformers reads either, by each group's format).
What vLLM does with each scheme is `vllm_support`'s reading of its sources: it serves some, refuses others.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from fptq.errors import ModelError
from fptq.export.native import EXPORT_NAME, _state_dict_for_saving, check_savable, write_folder
from fptq.nn.fp8_linear import Fp8Linear
from fptq.nn.quant_linear import QuantLinear

__all__ = ["export_compressed_tensors", "quantization_config", "scheme_of", "scheme_name", "vllm_support",
           "transformers_loads"]

FORMAT = "compressed-tensors"
PACKED, FLOAT = "pack-quantized", "float-quantized"

_INPUTS = {  # QuantLinear act_mode -> compressed-tensors input_activations
    "static": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "tensor", "dynamic": False},
    "dynamic": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "token", "dynamic": True},
    "dynamic_fp8": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "token", "dynamic": True},
    "none": None,
}
_FP8_TENSOR = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "tensor", "dynamic": False}


def scheme_of(layer, per_channel: bool | None = None) -> dict:
    """The compressed-tensors scheme (weights, input_activations, format) of a quantized layer; `per_channel`: strategy
    "channel" rather than "group" (default: where the layer's one group spans its inputs; `quantization_config` decides
    for the whole model, so that a layer as wide as the model's group size stays in its group scheme)."""
    if isinstance(layer, Fp8Linear):
        return {"weights": dict(_FP8_TENSOR), "input_activations": dict(_FP8_TENSOR), "format": FLOAT}
    per_channel = layer.group_size == layer.in_features if per_channel is None else per_channel
    weights = {"num_bits": layer.bits, "type": "int", "symmetric": layer.symmetric,
               "strategy": "channel" if per_channel else "group", "group_size": None if per_channel else layer.group_size,
               "dynamic": False, "actorder": None}
    inputs = _INPUTS[layer.act_mode]
    return {"weights": weights, "input_activations": dict(inputs) if inputs else None, "format": PACKED}


def scheme_name(scheme: dict) -> str:
    """A short name of a scheme for tables: W4A16 g128, W4A8 int8 static, W4A8 fp8 per-token, W8A8 fp8."""
    w, a = scheme["weights"], scheme["input_activations"]
    wname = "fp8" if w["type"] == "float" else ("" if w["symmetric"] else "asym ") + (
        "per-channel" if w["strategy"] == "channel" else f"g{w['group_size']}")
    if a is None:
        return f"W{w['num_bits']}A16 {wname}"
    how = "static" if not a["dynamic"] else "per-token"
    return f"W{w['num_bits']}A8 {wname}, {'int8' if a['type'] == 'int' else 'fp8'} {how}"


# What vLLM does with each scheme, read in its compressed-tensors loader and scheme classes (the code index's copies,
# up to late 2026; vLLM was not run: it cannot be installed on our machines): "yes" it serves the layer on NVIDIA
# GPUs, "maybe" only some versions or shapes do, "no" it refuses the layer and so will not load the model.
MARLIN_GROUPS = (32, 64, 128)


def vllm_support(scheme: dict, shapes=()) -> tuple[str, str]:
    """What vLLM does with layers of this scheme and these (N, K) shapes ("yes" / "maybe" / "no", and a note); see the
    comment above."""
    w, a = scheme["weights"], scheme["input_activations"]
    if w["type"] == "float":
        return "yes", "W8A8-FP8 kernels (Ada, Hopper and later)"
    grouped_ok = w["strategy"] == "channel" or w["group_size"] in MARLIN_GROUPS
    if a is None:
        if w["num_bits"] == 8 and not w["symmetric"]:
            return "maybe", "W8A16 with zero points: likely no kernel (Marlin takes zero points for 4 bits only)"
        if not grouped_ok:
            return "maybe", f"W{w['num_bits']}A16 with groups of {w['group_size']}: Marlin takes 32, 64, 128 or per channel"
        verdict = "yes", f"W{w['num_bits']}A16 kernels (Marlin family)"
        return _shapes_fit(verdict, shapes, 128, 64, "Marlin")
    if a["type"] == "float":
        if w["num_bits"] == 4 and w["symmetric"] and w["group_size"] == 128:
            verdict = "yes", "W4A8-FP8 kernel (Hopper; bf16 output: serve with --dtype bfloat16)"
            return _shapes_fit(verdict, shapes, 128, 128, "the W4A8-FP8 kernel")
        return "no", "refused: W4A8-FP8 needs symmetric 4-bit groups of 128"
    if a["dynamic"]:
        return "maybe", "int4 x per-token int8: recent vLLM only (its WNA8Int scheme, 2026); older versions refuse it"
    return "no", "refused: no scheme for 4-bit weights with static int8 activations"


def _shapes_fit(verdict: tuple[str, str], shapes, k_multiple: int, n_multiple: int, kernel: str) -> tuple[str, str]:
    """`verdict`, or "maybe" where a layer's K or N (`shapes`: one (N, K) a layer) is not a multiple of what `kernel`
    takes."""
    off = [(n, k) for n, k in shapes if k % k_multiple or n % n_multiple]
    if not off:
        return verdict
    n, k = off[0]
    return "maybe", (f"{verdict[1]}, but {kernel} needs K a multiple of {k_multiple} and N of {n_multiple}: "
                     f"{len(off)} of {len(shapes)} layers off, e.g. N x K = {n} x {k}; another vLLM kernel may take them")


def transformers_loads(scheme: dict) -> bool:
    """Whether transformers (5.x, with compressed-tensors 0.20) loads layers of this scheme: not asymmetric packed
    weights, whose zero points its loader expects unpacked (llm-compressor issue #1618)."""
    return scheme["weights"]["symmetric"] or scheme["format"] != PACKED


def _words(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned `bits`-bit codes (R, C) uint8 as compressed-tensors' int32 words along C, lowest bits first (C padded
    with zero codes to whole words): fptq's packed bytes read as little-endian int32."""
    from fptq.packing import pack_int4

    per_word = 32 // bits
    pad = -codes.shape[1] % per_word
    if pad:
        codes = torch.nn.functional.pad(codes, (0, pad))
    data = pack_int4(codes) if bits == 4 else codes
    return _le_int32(data.contiguous())


def _le_int32(data: torch.Tensor) -> torch.Tensor:
    """uint8 (R, 4 W) as (R, W) int32 words, byte 0 lowest: a view where the machine is little-endian."""
    if sys.byteorder == "little":  # (through one dimension: a (1, n) tensor's stride(0) need not be a multiple of 4)
        return data.contiguous().flatten().view(torch.int32).reshape(data.shape[0], -1)
    return _le_int32_arith(data)


def _le_int32_arith(data: torch.Tensor) -> torch.Tensor:
    """`_le_int32` by arithmetic, for any byte order."""
    b = data.reshape(data.shape[0], -1, 4).to(torch.int64)
    word = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16) | (b[..., 3] << 24)
    return torch.where(word >= 2**31, word - 2**32, word).to(torch.int32)


def _layer_tensors(layer, prefix: str, stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A quantized layer's tensors in compressed-tensors' names (biases as `stored` holds them)."""
    from fptq.packing import unpack_int4

    out = {}
    if isinstance(layer, Fp8Linear):
        out["weight"] = layer.weight.cpu().contiguous()
        out["weight_scale"] = layer.weight_scale.float().reshape(1).cpu()
        out["input_scale"] = layer.input_scale.float().reshape(1).cpu()
    else:
        qweight = layer.qweight.cpu()
        if layer.in_features * layer.bits % 32 == 0:  # whole words: fptq's bytes as they are
            out["weight_packed"] = _le_int32(qweight)
        else:  # (a partial last word, zero-padded as compressed-tensors pads it)
            out["weight_packed"] = _words(unpack_int4(qweight) if layer.bits == 4 else qweight, layer.bits)
        out["weight_scale"] = layer.scales.to(torch.float16).cpu().contiguous()
        out["weight_shape"] = torch.tensor([layer.out_features, layer.in_features], dtype=torch.int64)
        if layer.zeros is not None:  # (fptq's zero in [0, 2**bits): the signed zero point + 2**(bits - 1))
            out["weight_zero_point"] = _words(layer.zeros.cpu().t().contiguous(), layer.bits).t().contiguous()
        if layer.act_scale is not None:
            out["input_scale"] = layer.act_scale.float().reshape(1).cpu()
    if f"{prefix}.bias" in stored:
        out["bias"] = stored[f"{prefix}.bias"]
    return {f"{prefix}.{k}": v for k, v in out.items()}


def _quantized_layers(model) -> dict:
    """The model's quantized layers (QuantLinear, Fp8Linear) by name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (QuantLinear, Fp8Linear))}


def quantization_config(model) -> tuple[dict, list[dict]]:
    """The "quantization_config" entry of an exported model, and a row per scheme: its `scheme_name`, the scheme, its
    layers, `vllm_support` ("vllm": yes / maybe / no, "vllm_note") and `transformers_loads` ("transformers")."""
    schemes: dict[str, tuple[dict, list[str]]] = {}
    layers = _quantized_layers(model)
    per_channel = all(m.group_size == m.in_features for m in layers.values() if isinstance(m, QuantLinear))
    for name, m in layers.items():
        scheme = scheme_of(m, per_channel)
        schemes.setdefault(json.dumps(scheme, sort_keys=True), (scheme, []))[1].append(name)
    if not schemes:
        raise ModelError("this model has no quantized layers to export")
    plain = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]  # (the unquantized ones)
    groups = {}
    # one scheme: every Linear but the unquantized ones (the usual form); several: each group names its layers (the
    # layers that share an input share a scheme in fptq, as vLLM's fused q/k/v and gate/up layers need)
    for i, (scheme, names) in enumerate(schemes.values()):
        groups[f"group_{i}"] = {"targets": ["Linear"] if len(schemes) == 1 else names, **scheme,
                                "output_activations": None}
    formats = {scheme["format"] for scheme, _ in schemes.values()}
    config = {
        "quant_method": FORMAT,
        "format": formats.pop() if len(formats) == 1 else "mixed-precision",
        "quantization_status": "compressed",
        "config_groups": groups,
        "ignore": plain if len(schemes) == 1 else [],
        "kv_cache_scheme": None,
    }
    rows = []
    for scheme, names in schemes.values():
        serves, note = vllm_support(scheme, [(layers[n].out_features, layers[n].in_features) for n in names])
        rows.append({"name": scheme_name(scheme), "scheme": scheme, "layers": names, "vllm": serves, "vllm_note": note,
                     "transformers": transformers_loads(scheme)})
    return config, rows


def export_compressed_tensors(model, out_dir: str | os.PathLike, tokenizer=None, overwrite: bool = False,
                              protect=()) -> Path:
    """Write a quantized model (from `fptq.quantize` or `fptq.load_quantized(..., fuse=False)`) to `out_dir` in the
    compressed-tensors format, atomically; returns the folder.

    overwrite: replace an existing `out_dir` if it is an earlier fptq export (never an fptq checkpoint), or empty
               (`check_output`).
    protect:   paths (e.g. the source checkpoint) that `out_dir` must not be, contain or lie inside.
    """
    from safetensors.torch import save_file

    from fptq import __version__

    info = check_savable(model, "export")
    qconfig, schemes = quantization_config(model)
    stored = _state_dict_for_saving(model)
    tensors = {}
    quantized = _quantized_layers(model)
    for key, value in stored.items():
        owner = key.rsplit(".", 1)[0]
        if owner not in quantized:
            tensors[key] = value
    for name, layer in quantized.items():
        tensors.update(_layer_tensors(layer, name, stored))
    record = {"library": "fptq", "library_version": __version__, "format": FORMAT,
              "quantization": info.get("quantization"), "calibration": info.get("calibration"),
              "schemes": schemes}

    def write(tmp: Path) -> None:
        model.config.save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text())
        config["quantization_config"] = qconfig
        config["dtype"] = config["torch_dtype"] = "float16"  # (what the tensors are stored in; both names: older
        # transformers and vLLM read `torch_dtype`)
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
        (tmp / EXPORT_NAME).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")

    return write_folder(out_dir, write, overwrite=overwrite, protect=protect, marker=EXPORT_NAME)

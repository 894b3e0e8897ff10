"""The native saved format: a folder a user can hand around.

    config.json, generation_config.json, tokenizer files   (Hugging Face, unchanged)
    model.safetensors    every tensor of the model; QuantLinear layers as `qweight` (packed
                         uint8), `scales` (fp16), `zeros` (uint8, asymmetric only),
                         `channel_scales` (fp16, two-level scales only),
                         `act_scale` (fp32, static only), `bias`; Fp8Linear layers as `weight`
                         (float8 e4m3), `weight_scale` and `input_scale` (fp32 scalars), `bias`;
                         other weights in fp16
    fptq_config.json     {"format_version", "library", "library_version", "quantization",
                         "calibration", "policy": [per-layer rows]}

`load_quantized` refuses a tensor whose shape or dtype differs from what `save_quantized` writes, a scale
that is not finite and positive, a method it does not know, and a "quantization" entry that contradicts the
layers' strategies (the "policy" rows, which decide each layer's tensors: e.g. a_bits 16 with static layers,
whose `act_scale` would quietly run as W4A8; see `saved_strategies`), and a policy row whose `act_scale` is not the
layer's stored activation scale.

The folder is written to a temporary sibling and renamed into place, so an interrupted save
leaves no half-written output. Weights are read with safetensors only (never pickle).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from fptq.config import FORMAT_VERSION
from fptq.errors import CheckpointError, ConfigError, ModelError, OutputExistsError
from fptq.report import umask

__all__ = ["save_quantized", "load_quantized", "read_fptq_config", "check_output", "check_savable", "write_folder",
           "saved_strategies", "CONFIG_NAME", "EXPORT_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "fptq_config.json"
WEIGHTS_NAME = "model.safetensors"
EXPORT_NAME = "fptq_export.json"  # (what `fptq.export.compressed_tensors` writes beside its files)
STORAGE_DTYPE = torch.float16


def _fixed_keys(model) -> set[str]:
    """State-dict keys whose dtype is part of the format (the layers' `fixed_dtype_buffers`)."""
    return {f"{name}.{b}" for name, m in model.named_modules() for b in getattr(m, "fixed_dtype_buffers", ())}


def _stored_dtype(key: str, value: torch.Tensor, fixed: set[str]) -> torch.dtype:
    """The dtype `save_quantized` writes the state-dict entry `key` in: its own for fixed-dtype buffers and
    integer tensors, `STORAGE_DTYPE` for every other floating-point tensor. `load_quantized` expects the same."""
    return STORAGE_DTYPE if value.is_floating_point() and key not in fixed else value.dtype


def _state_dict_for_saving(model) -> dict[str, torch.Tensor]:
    fixed = _fixed_keys(model)
    tensors = {}
    seen: dict[int, str] = {}
    for key, value in model.state_dict().items():
        ptr = value.untyped_storage().data_ptr() if value.numel() else None
        if ptr is not None and ptr in seen:  # tied weights (lm_head = embed_tokens): save once
            continue
        if ptr is not None:
            seen[ptr] = key
        value = value.to(_stored_dtype(key, value, fixed))
        tensors[key] = value.detach().cpu().contiguous()
    return tensors


def _within(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies inside it (both resolved)."""
    return path == folder or folder in path.parents


def check_output(out_dir: str | os.PathLike, overwrite: bool = False, protect=(), marker: str = CONFIG_NAME) -> Path:
    """The resolved output folder, or a one-line error if saving there would be refused.

    `out_dir` never is, contains or lies inside a path in `protect` (e.g. the source model folder). An existing
    `out_dir` is replaced only with `overwrite`, and only if it is an earlier output of the same kind (it has `marker`:
    fptq_config.json for a checkpoint, fptq_export.json for an export) or an empty folder, and does not contain the
    current working directory. Cheap: call it before calibration to fail early.
    """
    out = Path(out_dir).expanduser().resolve()
    sources = [Path(p).expanduser() for p in ([protect] if isinstance(protect, (str, os.PathLike)) else protect or ())
               if p is not None]
    for source in sources:  # (a hub id or the bundled model's name is no folder of the user's: nothing to protect)
        if source.exists() and out != source.resolve() and _within(out, source.resolve()):
            raise OutputExistsError(f"refusing to write {out} inside the source model {source}; choose a folder "
                                    "outside it")
    if not out.exists():
        return out
    if not overwrite:
        if out.is_dir() and not any(out.iterdir()):
            raise OutputExistsError(f"output folder {out} already exists (empty); pass --overwrite (overwrite=True in "
                                    "Python) to write into it, or give a folder that does not exist yet")
        raise OutputExistsError(
            f"output folder {out} already exists; pass --overwrite (overwrite=True in Python) to replace an earlier "
            "fptq output"
        )
    if not out.is_dir():
        raise OutputExistsError(f"output {out} is a file, not a folder; refusing to replace it (choose a new folder)")
    if _within(Path.cwd().resolve(), out):
        raise OutputExistsError(
            f"refusing to replace output folder {out}: it contains the current working directory; choose a new folder"
        )
    for source in sources:
        if source.exists() and _within(source.resolve(), out):
            raise OutputExistsError(
                f"refusing to replace output folder {out}: it is or contains the source model {source}; choose a new folder"
            )
    if not (out / marker).is_file() and any(out.iterdir()):
        kinds = {CONFIG_NAME: ("fptq output", "an fptq checkpoint"), EXPORT_NAME: ("fptq export", "an fptq export")}
        what = kinds[marker][0]
        other = next((kind for name, (_, kind) in kinds.items() if name != marker and (out / name).is_file()), None)
        if other is not None:
            raise OutputExistsError(f"refusing to replace output folder {out}: it is {other}, and --overwrite replaces "
                                    f"only an earlier {what}; choose a new or empty folder")
        raise OutputExistsError(
            f"refusing to replace output folder {out}: it is not an earlier {what} (no {marker}) and not empty; "
            "choose a new or empty folder"
        )
    return out


def save_quantized(
    model, out_dir: str | os.PathLike, tokenizer=None, overwrite: bool = False, protect=()
) -> Path:
    """Write a quantized model (with its `fptq_info`) to `out_dir`, atomically.

    overwrite: replace an existing `out_dir`, if it is an earlier fptq output or empty (see `check_output`).
    protect:   paths (e.g. the source model folder) that `out_dir` must not be or contain when replaced.

    config.json keeps the dtype that the source model's names (`model.fptq_config_dtype`, which `load_model` and
    `load_quantized` set; else the model's own), not the float32 fptq computes in on the CPU, which
    `load_quantized` picks by itself.
    """
    from safetensors.torch import save_file

    info = check_savable(model, "save")
    config = copy.deepcopy(model.config)
    config.dtype = getattr(model, "fptq_config_dtype", None) or config.dtype

    def write(tmp: Path) -> None:
        config.save_pretrained(tmp)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        # One metadata key only: safetensors writes the metadata map in hash order, so two keys
        # could swap places between runs and break the bit-identical checkpoint guarantee.
        save_file(_state_dict_for_saving(model), tmp / WEIGHTS_NAME, metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    return write_folder(out_dir, write, overwrite=overwrite, protect=protect)


def check_savable(model, verb: str) -> dict:
    """The `fptq_info` of a model fptq can `verb` (save, export): quantized by fptq, its layers not fused."""
    from fptq.nn.shared_input import is_fused

    info = getattr(model, "fptq_info", None)
    if info is None:
        raise ModelError("this model was not quantized by fptq (no fptq_info); call fptq.quantize first")
    if is_fused(model):
        raise ModelError("this model's layers are fused for inference (fptq.fuse_shared_inputs, fptq.fuse_prologues); "
                         f"{verb} it before fusing, or load it again with fuse=False")
    return info


def write_folder(out_dir: str | os.PathLike, write, overwrite: bool = False, protect=(), marker: str = CONFIG_NAME) -> Path:
    """Make the folder `out_dir` atomically: `write(tmp)` fills a temporary sibling, which is then renamed into place
    (replacing an earlier output only as `check_output` allows, by `marker`), with the permissions the user's umask
    gives new files (a temporary folder is private: a server running as another user could not read it). Returns the
    folder."""
    out = check_output(out_dir, overwrite=overwrite, protect=protect, marker=marker)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write(tmp)
        mask = umask()
        os.chmod(tmp, 0o777 & ~mask)
        for f in tmp.rglob("*"):
            os.chmod(f, (0o777 if f.is_dir() else 0o666) & ~mask)
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(trash / out.name)
            tmp.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_fptq_config(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    path = folder / CONFIG_NAME
    if not folder.exists():
        raise CheckpointError(f"model folder {folder} does not exist")
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder")
    if not path.is_file():
        if (folder / EXPORT_NAME).is_file():
            raise CheckpointError(f"{folder} is an fptq export (compressed-tensors), not an fptq checkpoint; load it "
                                  "with transformers (fptq eval) or serve it with vLLM")
        raise CheckpointError(f"{folder} is not an fptq checkpoint (no {CONFIG_NAME})")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is corrupted: {exc}") from None
    if not isinstance(info, dict) or info.get("library") != "fptq":
        raise CheckpointError(f"{path} was not written by fptq")
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {version}; this fptq reads version {FORMAT_VERSION}")
    return info


def load_quantized(
    folder: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    fuse: bool | None = None,
):
    """Load a folder written by `save_quantized`. Returns the model (with `fptq_info`).

    dtype: compute dtype of the non-quantized weights (default float32 on CPU, float16 on CUDA).
    fuse:  run the linears that read one input (q/k/v, gate/up) as one GEMM each (`fptq.fuse_shared_inputs`;
           same results up to accumulation order) and move the RMSNorm before each into it, and each gated MLP's
           SiLU * up into its down_proj (`fptq.fuse_prologues`: the MLP becomes a `GatedMLP`, so `mlp.gate_proj` /
           `mlp.up_proj` are gone; eager calls with int8 activations compute these inside their launches). Default:
           on CUDA.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    from fptq.config import QuantConfig, from_saved, without_flags
    from fptq.methods import METHODS
    from fptq.methods.fp8 import FP8_STRATEGY
    from fptq.methods.fptq import replace_linear
    from fptq.methods.policy import ACT_MODES
    from fptq.models.arch import get_arch
    from fptq.nn.fp8_linear import Fp8Linear
    from fptq.nn.quant_linear import QuantLinear

    folder = Path(folder).expanduser()
    info = read_fptq_config(folder)
    for key, kind in (("quantization", dict), ("policy", list)):
        if not isinstance(info.get(key), kind):
            got = "nothing" if key not in info else json.dumps(info[key])[:40]
            raise CheckpointError(
                f"{folder / CONFIG_NAME} is damaged: '{key}' must be a JSON {'object' if kind is dict else 'list'}, got {got}"
            )
    method = info["quantization"].get("method", QuantConfig.method)
    if not isinstance(method, str) or method not in METHODS:
        raise CheckpointError(
            f"{folder / CONFIG_NAME} names an unknown method {json.dumps(method)[:40]}; "
            f"known methods: {', '.join(sorted(METHODS))}"
        )
    try:
        qconfig = from_saved(info["quantization"])
        policy = {row["layer"]: row for row in info["policy"]}
    except KeyError as exc:
        raise CheckpointError(f"{folder / CONFIG_NAME} is damaged: a policy row has no {exc} entry") from None
    except TypeError as exc:
        raise CheckpointError(f"{folder / CONFIG_NAME} is damaged: {str(exc).splitlines()[0]}") from None
    except ConfigError as exc:  # (a setting that `fptq quantize` would refuse: name the file it came from, and
        # no command-line flags: whoever loads a folder passed none)
        raise CheckpointError(f"{folder / CONFIG_NAME}: {without_flags(str(exc))}") from None
    _check_strategies(qconfig, policy, folder / CONFIG_NAME)
    from fptq.models.loading import CONFIG_ERRORS, error_text

    try:
        config = AutoConfig.from_pretrained(folder)
    except CONFIG_ERRORS as exc:
        raise CheckpointError(f"{folder} has no usable config.json: {error_text(exc)}") from None
    get_arch(config)
    saved_dtype = config.dtype  # (`from_config` sets the compute dtype in its place)
    device = torch.device(device)
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    if not (folder / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{folder / WEIGHTS_NAME} is missing; the checkpoint is incomplete (save it again)")
    try:
        tensors = load_file(folder / WEIGHTS_NAME)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{folder / WEIGHTS_NAME} is truncated or corrupted ({exc})") from None

    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    for name, row in policy.items():
        try:
            linear = model.get_submodule(name)
            act_mode = ACT_MODES[row["strategy"]] if row["strategy"] != FP8_STRATEGY else None
        except (AttributeError, KeyError):
            raise CheckpointError(f"{folder / CONFIG_NAME} names layer {name} with an unknown layout") from None
        if act_mode is None:  # float8 e4m3 weights and activations
            replace_linear(model, name, Fp8Linear(linear.in_features, linear.out_features,
                                                  bias=linear.bias is not None, dtype=dtype))
            continue
        layer = QuantLinear(
            linear.in_features,
            linear.out_features,
            bits=qconfig.w_bits,
            group_size=qconfig.group_size,
            symmetric=qconfig.symmetric,
            scale_format=qconfig.scale_format,
            act_mode=act_mode,
            bias=linear.bias is not None,
            dtype=dtype,
        )
        replace_linear(model, name, layer)
    expected = model.state_dict()
    tied = {k for k in expected if k not in tensors and _is_tied(model, k)}
    missing = sorted(set(expected) - set(tensors) - tied)
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{folder / WEIGHTS_NAME} does not match its config ({what})")
    _check_layouts(tensors, expected, _fixed_keys(model), folder / WEIGHTS_NAME)
    model.load_state_dict(tensors, strict=False)
    _check_scales(model, folder / WEIGHTS_NAME)
    _check_act_scales(model, policy, folder / CONFIG_NAME)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    model.to(device).eval()
    model.fptq_info = info
    model.fptq_config_dtype = saved_dtype
    if fuse if fuse is not None else device.type == "cuda":
        from fptq.nn.prologue import fuse_prologues
        from fptq.nn.shared_input import fuse_shared_inputs

        fuse_shared_inputs(model)
        fuse_prologues(model)
    return model


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _check_layouts(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], fixed: set[str],
                   file: Path) -> None:
    """Every saved tensor has the shape of the model built from the config and the dtype `save_quantized`
    writes it in (`_stored_dtype`): `load_state_dict` would silently cast a tampered `qweight` or `scales`."""
    for key, value in tensors.items():
        want = expected[key]
        if value.shape != want.shape:
            raise CheckpointError(f"{file}: {key} has shape {tuple(value.shape)}, expected {tuple(want.shape)}")
        dtype = _stored_dtype(key, want, fixed)
        if value.dtype != dtype:
            raise CheckpointError(
                f"{file}: {key} has dtype {_dtype_name(value.dtype)}, expected {_dtype_name(dtype)}"
            )


# Buffers of the quantized layers that divide or multiply by a scale: finite and positive in a checkpoint fptq saves
# from a sound model (zero maxima get scale 1, fp16 underflow is clamped, fptq.primitives; non-finite activations stop
# calibration), so anything else is damage.
_SCALE_BUFFERS = ("scales", "channel_scales", "act_scale", "weight_scale", "input_scale")


def _check_scales(model, file: Path) -> None:
    """Every scale of a quantized layer is finite and positive, and two-level layers' group scales are integer
    multiples in [1, 16] of their channel scales (a kernel sums whole rows in int32 on that promise)."""
    from fptq.nn.fp8_linear import Fp8Linear
    from fptq.nn.quant_linear import QuantLinear
    from fptq.primitives import int_group_scales

    for name, m in model.named_modules():
        if not isinstance(m, (QuantLinear, Fp8Linear)):
            continue
        for buffer in _SCALE_BUFFERS:
            scale = getattr(m, buffer, None)
            if scale is None:
                continue
            bad = scale[~((scale > 0) & (scale < torch.inf))]  # (nan fails both comparisons)
            if bad.numel():
                raise CheckpointError(
                    f"{file}: {name}.{buffer} holds {bad.numel()} value(s) that are not finite and positive "
                    f"(e.g. {bad.flatten()[0].item()}); the checkpoint is damaged"
                )
        if getattr(m, "channel_scales", None) is not None:
            try:
                int_group_scales(m.scales, m.channel_scales)
            except ValueError as exc:
                raise CheckpointError(f"{file}: {name}: {exc}") from None


def _check_act_scales(model, policy: dict[str, dict], file: Path) -> None:
    """Every policy row's `act_scale` is the layer's stored activation scale (`act_scale`, an fp8 layer's
    `input_scale`), as the methods record it: float() of that fp32 scalar, or null where the layer has none. The
    layer runs the tensor, so an edited row would report a scale that does not run."""
    from fptq.nn.fp8_linear import Fp8Linear

    for name, row in policy.items():
        layer = model.get_submodule(name)
        buffer = "input_scale" if isinstance(layer, Fp8Linear) else "act_scale"
        stored = getattr(layer, buffer)
        value = row.get("act_scale")
        if stored is None:
            agrees = value is None
        else:
            agrees = isinstance(value, (int, float)) and not isinstance(value, bool) and value == float(stored)
        if agrees:
            continue
        claimed = f"act_scale {json.dumps(value)[:40]}" if "act_scale" in row else "no act_scale"
        if stored is None:
            strategy = row["strategy"]
            raise CheckpointError(
                f"{file}: layer {name} has {claimed}, but its strategy '{strategy}' ({_STRATEGY_MEANINGS[strategy]}) "
                f"keeps no activation scale in {WEIGHTS_NAME}; the file was edited or damaged"
            )
        raise CheckpointError(f"{file}: layer {name} has {claimed}, but {WEIGHTS_NAME} stores {name}.{buffer} = "
                              f"{float(stored)!r}; the file was edited or damaged")


def saved_strategies(config) -> tuple[str, ...]:
    """The layer strategies ("policy" rows of fptq_config.json) that fptq's methods save under `config` (a
    `QuantConfig`): method fp8 saves every layer as fp8-static; a_bits 16 (weight-only) every layer as none; a_bits 8
    static layers (equalized+static where an equalization folded scales in) under policy all-static, per-token dynamic
    ones (dynamic-fp8 with a_format fp8) under all-dynamic, and both under layerwise."""
    from fptq.methods.fp8 import FP8_STRATEGY
    from fptq.methods.policy import DYNAMIC, DYNAMIC_FP8, EQUALIZED, STATIC, WEIGHT_ONLY

    if config.method == "fp8":
        return (FP8_STRATEGY,)
    if config.a_bits == 16:
        return (WEIGHT_ONLY,)
    static = (STATIC,) if config.equalization == "none" else (STATIC, EQUALIZED)
    dynamic = (DYNAMIC_FP8,) if config.a_format == "fp8" else (DYNAMIC,)
    return {"all-static": static, "all-dynamic": dynamic, "layerwise": static + dynamic}[config.policy]


# What a layer of each strategy holds and runs (for the error that names a contradiction).
_STRATEGY_MEANINGS = {
    "static": "int8 activations with a static act_scale",
    "equalized+static": "equalized int8 activations with a static act_scale",
    "dynamic": "per-token dynamic int8 activations",
    "dynamic-fp8": "per-token dynamic float8 activations",
    "none": "weight-only: floating-point activations",
    "fp8-static": "float8 weights and activations",
}


def _check_strategies(config, policy: dict[str, dict], file: Path) -> None:
    """Every layer's strategy is one that `config` saves (`saved_strategies`): the strategies decide which layers and
    tensors are built (an `act_scale` for static ones), so a "quantization" entry edited apart from them (a_bits 16 over
    static W4A8 layers) would otherwise load and run what the tensors say while claiming something else. A strategy
    fptq does not know is left to the layer check, which names it."""
    allowed = saved_strategies(config)
    for name, row in policy.items():
        strategy = row.get("strategy")
        if not isinstance(strategy, str):
            raise CheckpointError(f"{file} is damaged: layer {name} has strategy {json.dumps(strategy)[:60]}, "
                                  "not a name")
        if strategy in _STRATEGY_MEANINGS and strategy not in allowed:
            settings = [f"method {config.method}"]
            if config.method != "fp8":
                settings.append(f"a_bits {config.a_bits}")
            if config.method != "fp8" and config.a_bits == 8:
                settings += [f"policy {config.policy}", f"equalization {config.equalization}",
                             f"a_format {config.a_format}"]
            saves = (f"'{allowed[0]}' layers ({_STRATEGY_MEANINGS[allowed[0]]})" if len(allowed) == 1
                     else " / ".join(f"'{a}'" for a in allowed) + " layers")
            raise CheckpointError(
                f"{file}: its quantization settings ({', '.join(settings)}) contradict its layers: layer {name} has "
                f"strategy '{strategy}' ({_STRATEGY_MEANINGS[strategy]}), but these settings save only {saves}; "
                "the file was edited or damaged"
            )


def _is_tied(model, key: str) -> bool:
    return bool(getattr(model.config, "tie_word_embeddings", False)) and key == "lm_head.weight"

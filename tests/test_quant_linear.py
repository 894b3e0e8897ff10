import pytest
import torch

from fptq.nn.quant_linear import QuantLinear


def test_dtype_of_format_buffers_survives_model_casts():
    layer = QuantLinear.from_linear(torch.nn.Linear(64, 8, bias=True), group_size=32, act_mode="static", act_scale=0.0123)
    before = layer.act_scale.clone()
    layer.half()
    assert layer.scales.dtype == torch.float16 and layer.act_scale.dtype == torch.float32
    assert layer.bias.dtype == torch.float16 and layer.qweight.dtype == torch.uint8
    assert torch.equal(layer.act_scale, before)


def test_rejects_group_size_that_does_not_divide():
    with pytest.raises(ValueError, match="does not divide"):
        QuantLinear(96, 8, group_size=64)


def test_static_needs_a_scale():
    with pytest.raises(ValueError):
        QuantLinear.from_linear(torch.nn.Linear(64, 8), group_size=32, act_mode="static")

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


def test_eager_forward_reads_the_current_tensors():
    """Eagerly `forward` reads the tensors from the module's own dicts (faster than attribute access): what is assigned
    later — a buffer (scales, the static activation scale), a bias parameter or None — is what it computes with."""
    torch.manual_seed(0)
    layer = QuantLinear.from_linear(torch.nn.Linear(64, 8, bias=True), group_size=32, act_mode="static", act_scale=0.02)
    x = torch.randn(3, 64)

    def expected():
        w = layer.dequantized_weight()
        s = layer.act_scale.float()
        xq = torch.clamp(torch.round(x / s), -127, 127) * s
        return xq @ w.t() + (layer.bias.float() if layer.bias is not None else 0)

    for change in (lambda: None, lambda: setattr(layer, "scales", layer.scales * 2),
                   lambda: setattr(layer, "act_scale", layer.act_scale * 3),
                   lambda: setattr(layer, "bias", torch.nn.Parameter(torch.randn(8), requires_grad=False)),
                   lambda: setattr(layer, "bias", None)):
        change()
        assert torch.allclose(layer(x).float(), expected(), atol=1e-4), change

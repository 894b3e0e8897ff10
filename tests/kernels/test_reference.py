"""The CPU reference kernel against a float64 dequantized matmul, and the torch backend against it."""

import pytest
import torch

from fptq.kernels import quant_linear, select_backend
from fptq.kernels.reference import quant_linear_reference
from fptq.kernels.torch_dequant import quant_linear_torch
from fptq.nn.quant_linear import QuantLinear
from fptq.primitives import per_token_scale, quantize_activation


def _float64_reference(x, layer: QuantLinear):
    w = layer.dequantized_weight(torch.float64)
    if layer.act_mode == "none":
        xd = x.double()
    else:
        s = layer.act_scale if layer.act_mode == "static" else per_token_scale(x.reshape(-1, x.shape[-1]))
        xd = (quantize_activation(x.reshape(-1, x.shape[-1]), s).double() * s.double()).reshape(x.shape)
    y = xd @ w.t()
    return y + layer.bias.double() if layer.bias is not None else y


def _layer(k, n, bits, group_size, symmetric, act_mode, bias, seed=0):
    torch.manual_seed(seed)
    linear = torch.nn.Linear(k, n, bias=bias)
    return QuantLinear.from_linear(
        linear, bits=bits, group_size=group_size, symmetric=symmetric, act_mode=act_mode, act_scale=0.02
    )


@pytest.mark.parametrize("act_mode", ["static", "dynamic", "none"])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits,group_size", [(4, 32), (4, 64), (4, -1), (8, 64), (8, -1)])
@pytest.mark.parametrize("m", [1, 3, 17])
def test_reference_matches_float64_dequantized_matmul(act_mode, symmetric, bits, group_size, m):
    layer = _layer(128, 40, bits, group_size, symmetric, act_mode, bias=True)
    x = torch.randn(m, 128)
    y = quant_linear_reference(
        x, layer.qweight, layer.scales, layer.zeros, bits=bits, group_size=layer.group_size,
        act_mode=act_mode, act_scale=layer.act_scale, bias=layer.bias,
    )
    ref = _float64_reference(x, layer)
    assert y.shape == (m, 40) and y.dtype == x.dtype
    assert ((y.double() - ref).norm() / ref.norm()).item() < 1e-6


@pytest.mark.parametrize("act_mode", ["static", "dynamic", "none"])
def test_torch_backend_matches_reference_on_3d_input(act_mode):
    layer = _layer(256, 96, 4, 64, False, act_mode, bias=False, seed=1)
    x = torch.randn(2, 5, 256) * 3
    kwargs = dict(bits=4, group_size=64, act_mode=act_mode, act_scale=layer.act_scale, bias=None)
    ref = quant_linear_reference(x, layer.qweight, layer.scales, layer.zeros, **kwargs)
    out = quant_linear_torch(x, layer.qweight, layer.scales, layer.zeros, **kwargs)
    assert out.shape == (2, 5, 96)
    assert ((out - ref).norm() / ref.norm()).item() < 1e-6


def test_torch_backend_cache_sees_in_place_updates():
    layer = _layer(64, 16, 4, 32, True, "dynamic", bias=False)
    x = torch.randn(4, 64)
    y1 = layer(x)
    layer.scales.mul_(2)
    assert torch.allclose(layer(x), 2 * y1, rtol=1e-5)


def test_cpu_dispatch_and_forced_backend(monkeypatch):
    x = torch.randn(2, 64)
    assert select_backend(x, 4, 32, "static").name == "torch"
    monkeypatch.setenv("FPTQ_KERNEL", "reference")
    assert select_backend(x, 4, 32, "static").name == "reference"
    monkeypatch.setenv("FPTQ_KERNEL", "nope")
    with pytest.raises(ValueError):
        quant_linear(x, torch.zeros(4, 32, dtype=torch.uint8), torch.ones(4, 2, dtype=torch.float16), group_size=32)


def test_reference_rejects_mismatched_k():
    layer = _layer(64, 16, 4, 32, True, "dynamic", bias=False)
    with pytest.raises(ValueError):
        quant_linear_reference(torch.randn(2, 32), layer.qweight, layer.scales, group_size=32)

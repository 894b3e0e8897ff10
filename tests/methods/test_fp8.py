"""FP8 W8A8 (e4m3, per-tensor): emulated rounding, storage dtypes, exact save/load."""

import pytest
import torch

import fptq
from fptq.errors import ConfigError
from fptq.nn.fp8_linear import FP8_MAX, Fp8Linear

from ..conftest import make_tiny

CALIB = fptq.CalibConfig(source="random", samples=4, seqlen=16, batch_size=4)


def test_fp8_linear_matches_e4m3_emulation():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 24, bias=True).requires_grad_(False)
    x = torch.randn(5, 64) * 3
    layer = Fp8Linear.from_linear(lin, float(x.abs().max()))
    assert layer.weight.dtype == torch.float8_e4m3fn
    s_w = float(lin.weight.abs().max()) / FP8_MAX
    s_x = float(x.abs().max()) / FP8_MAX
    wq = (lin.weight / s_w).to(torch.float8_e4m3fn).float() * s_w
    xq = (x / s_x).to(torch.float8_e4m3fn).float() * s_x
    torch.testing.assert_close(layer(x), xq @ wq.t() + lin.bias, rtol=1e-5, atol=1e-5)
    rel = ((layer(x) - lin(x)).norm() / lin(x).norm()).item()
    assert rel < 0.05  # e4m3 has 3 mantissa bits: a few percent
    layer.to(torch.float16)
    assert layer.weight.dtype == torch.float8_e4m3fn and layer.input_scale.dtype == torch.float32


def test_fp8_model_round_trips(tmp_path):
    model = make_tiny("qwen2")
    fptq.quantize(model, None, fptq.QuantConfig(method="fp8", w_bits=8), CALIB, progress=False)
    assert sum(isinstance(m, Fp8Linear) for m in model.modules()) == 14
    x = torch.randint(0, 256, (2, 16))
    fptq.save_quantized(model, tmp_path / "q")
    loaded = fptq.load_quantized(tmp_path / "q")
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, model(x).logits)


def test_fp8_needs_8_bits():
    assert fptq.QuantConfig(method="fp8").w_bits == 8  # (its default)
    with pytest.raises(ConfigError, match="--w-bits 8"):
        fptq.QuantConfig(method="fp8", w_bits=4)

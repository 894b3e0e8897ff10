"""AWQ: the scale search never loses to RTN on its loss; block output error below RTN's."""

import torch

import fptq
from fptq.methods.awq import awq_scales, search_clip, search_scale
from fptq.primitives import fake_quantize_weight

from ..conftest import inject_outliers, make_tiny

CALIB = fptq.CalibConfig(source="random", samples=8, seqlen=32, batch_size=4)


def test_scales_are_normalised():
    s = awq_scales(torch.tensor([0.1, 1.0, 10.0]), None, 0.5)
    assert abs(float(s.max() * s.min()) - 1.0) < 1e-5
    assert torch.allclose(awq_scales(torch.rand(8) + 0.1, torch.rand(8) + 0.1, 0.0)[:1] * 0 + 1, torch.ones(1))


def test_scale_search_is_never_worse_than_rtn():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 64, generator=g)
    x[:, 7] *= 30.0
    w = torch.randn(32, 64, generator=g)

    def loss(s):
        q = fake_quantize_weight(w * s, 4, 32) / s
        return float((x @ w.t() - x @ q.t()).pow(2).mean())

    s, info = search_scale(x.abs().mean(0), None, loss, grid=10)
    assert info["loss"] <= loss(torch.ones(64)) and info["loss"] == loss(s)
    assert info["loss"] < 0.9 * loss(torch.ones(64))  # the outlier channel makes scaling pay off


def test_clip_search_lowers_output_error():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 64, generator=g)
    w = torch.randn(16, 64, generator=g)
    w[:, 3] *= 8.0  # a weight outlier stretches its group's grid
    clipped = search_clip(w, x, bits=4, group_size=32)

    def err(v):
        return float((x @ w.t() - x @ fake_quantize_weight(v, 4, 32).t()).pow(2).mean())

    assert err(clipped) < err(w)


def _block0_error(method, **kw):
    model = make_tiny("llama", seed=7)
    inject_outliers(model, factor=20.0)
    x = torch.randint(0, 256, (4, 32))
    outs = []
    hook = model.model.layers[0].register_forward_hook(lambda m, a, o: outs.append(o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():
        model(x)
        fptq.quantize(model, None, fptq.QuantConfig(method=method, a_bits=16, group_size=32, **kw), CALIB, progress=False)
        model(x)
    hook.remove()
    ref, out = outs[0], outs[-1]
    return ((out - ref).norm() / ref.norm()).item(), model


def test_awq_block_output_error_below_rtn(tmp_path):
    err, model = _block0_error("awq")
    assert err < _block0_error("rtn")[0]
    fptq.save_quantized(model, tmp_path / "q")
    x = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        assert torch.equal(fptq.load_quantized(tmp_path / "q")(x).logits, model(x).logits)


def test_awq_is_weight_only():
    import pytest

    with pytest.raises(fptq.errors.ConfigError, match="a-bits 16"):
        fptq.QuantConfig(method="awq", a_bits=8)

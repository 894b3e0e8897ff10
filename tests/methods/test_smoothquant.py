"""SmoothQuant W8A8: lower error than RTN W8A8 on activations with outlier channels."""

import pytest
import torch

import fptq
from fptq.errors import ConfigError

from ..conftest import inject_outliers, make_tiny

CALIB = fptq.CalibConfig(source="random", samples=8, seqlen=32, batch_size=4)


def _error(method, policy, alpha=0.5):
    model = make_tiny("llama", seed=11)
    inject_outliers(model, factor=60.0)
    x = torch.randint(0, 256, (4, 32))
    with torch.no_grad():
        ref = model(x).logits
        config = fptq.QuantConfig(method=method, w_bits=8, a_bits=8, group_size=-1, policy=policy, smoothquant_alpha=alpha)
        fptq.quantize(model, None, config, CALIB, progress=False)
        return ((model(x).logits - ref).norm() / ref.norm()).item(), model


@pytest.mark.parametrize("policy", ["all-static", "all-dynamic"])
def test_smoothquant_w8a8_error_below_rtn(policy):
    sq, model = _error("smoothquant", policy)
    assert sq < _error("rtn", policy)[0]
    rows = model.fptq_info["policy"]
    smoothed = {r["group"] for r in rows if r["max_abs_after_eq"] < r["max_abs"]}
    assert smoothed == {"attn_in", "mlp_in"}  # the norm-fed groups, as in the authors' LLaMA code


def test_smoothquant_config_rules():
    assert fptq.QuantConfig(method="smoothquant").equalization == "smoothquant"
    with pytest.raises(ConfigError):
        fptq.QuantConfig(method="smoothquant", a_bits=16)
    with pytest.raises(ConfigError):
        fptq.QuantConfig(method="smoothquant", equalization="lae")

"""RTN: the FPTQ adapter with no equalization and one activation mode for every layer."""

import pytest
import torch

import fptq
from fptq.errors import ConfigError
from fptq.nn.quant_linear import QuantLinear

from ..conftest import make_tiny

CALIB = fptq.CalibConfig(source="random", samples=4, seqlen=16, batch_size=4)


def test_rtn_meaning_is_explicit_in_the_config():
    c = fptq.QuantConfig(method="rtn")
    assert (c.policy, c.equalization) == ("all-dynamic", "none")
    assert fptq.QuantConfig().policy == "layerwise" and fptq.QuantConfig().equalization == "lae"
    with pytest.raises(ConfigError, match="--method fptq"):
        fptq.QuantConfig(method="rtn", equalization="lae")
    with pytest.raises(ConfigError):
        fptq.QuantConfig(method="rtn", policy="layerwise")


@pytest.mark.parametrize("policy,a_bits,mode", [("all-static", 8, "static"), ("all-dynamic", 8, "dynamic"),
                                                 (None, 16, "none")])
def test_rtn_activation_modes(policy, a_bits, mode):
    model = make_tiny("llama")
    fptq.quantize(model, None, fptq.QuantConfig(method="rtn", policy=policy, a_bits=a_bits, group_size=32), CALIB,
                  progress=False)
    modes = {m.act_mode for m in model.modules() if isinstance(m, QuantLinear)}
    assert modes == {mode}
    recorded = model.fptq_info["quantization"]  # (weight-only: no equalization to record)
    assert recorded.get("equalization") == ("none" if a_bits == 8 else None)


def test_rtn_weights_are_round_to_nearest():
    from fptq.primitives import quantize_weight

    model = make_tiny("llama")
    w = model.model.layers[1].mlp.down_proj.weight.detach().clone()
    fptq.quantize(model, None, fptq.QuantConfig(method="rtn", a_bits=16, group_size=32), CALIB, progress=False)
    assert torch.equal(model.model.layers[1].mlp.down_proj.quantized_weight().codes, quantize_weight(w, 4, 32).codes)

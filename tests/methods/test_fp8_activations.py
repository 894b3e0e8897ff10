"""W4A8-FP8 (`--a-format fp8`): the per-token layers' activations in float8 e4m3."""

import pytest
import torch

import fptq
from fptq.compare import parse_variant
from fptq.errors import ConfigError
from fptq.nn.quant_linear import QuantLinear

from ..conftest import inject_outliers, make_tiny

CALIB = fptq.CalibConfig(source="random", samples=4, seqlen=16, batch_size=4)


def _modes(model):
    return {m.act_mode for m in model.modules() if isinstance(m, QuantLinear)}


def test_config_checks():
    assert fptq.QuantConfig().a_format == "int8"
    for a_bits in (8, 16):  # (a bad value is named as such, also where the format would not be used)
        with pytest.raises(ConfigError, match="int8 or fp8"):
            fptq.QuantConfig(a_format="e5m2", a_bits=a_bits)
    with pytest.raises(ConfigError, match="a_format .--a-format. is not used by method fp8 .its activations are float8"):
        fptq.QuantConfig(method="fp8", w_bits=8, a_format="fp8")
    with pytest.raises(ConfigError, match="a_format .--a-format. is not used by method rtn with a_bits 16"):
        fptq.QuantConfig(method="rtn", a_bits=16, a_format="fp8")
    v = parse_variant("rtn-w4a8-fp8", group_size=32)
    assert v.config.a_format == "fp8" and "fp8 e4m3" in v.description


def test_rtn_fp8_round_trip(tmp_path):
    model = make_tiny("qwen2")
    ref_model = make_tiny("qwen2")
    ids = torch.randint(0, 256, (2, 20))
    with torch.no_grad():
        ref = ref_model(input_ids=ids).logits
    fptq.quantize(model, None, fptq.QuantConfig(method="rtn", a_format="fp8", group_size=32), CALIB, progress=False)
    assert _modes(model) == {"dynamic_fp8"}
    assert {r["strategy"] for r in model.fptq_info["policy"]} == {"dynamic-fp8"}
    with torch.no_grad():
        out = model(input_ids=ids).logits
    assert ((out - ref).norm() / ref.norm()).item() < 0.2  # int4 weights and 3-bit-mantissa activations
    fptq.save_quantized(model, tmp_path / "q")
    loaded = fptq.load_quantized(tmp_path / "q")
    assert _modes(loaded) == {"dynamic_fp8"}
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, out)


def test_fptq_fp8_applies_to_the_dynamic_layers_only():
    model = make_tiny("llama")
    inject_outliers(model, factor=400.0)  # some groups above v1: per-token
    fptq.quantize(model, None, fptq.QuantConfig(a_format="fp8", group_size=32, v0=1.0, v1=5.0), CALIB, progress=False)
    strategies = {r["strategy"] for r in model.fptq_info["policy"]}
    assert "dynamic-fp8" in strategies and "dynamic" not in strategies
    assert _modes(model) - {"static"} == {"dynamic_fp8"}


def test_int8_configs_serialize_as_before():
    """a_format is written only when it is not the default: int8 checkpoints and comparison cache
    keys are unchanged, and old checkpoints (no key) read back as int8."""
    from fptq.config import QuantConfig, from_dict

    assert "a_format" not in QuantConfig().to_dict()
    assert QuantConfig(method="rtn", a_format="fp8").to_dict()["a_format"] == "fp8"
    assert from_dict(QuantConfig, QuantConfig().to_dict()).a_format == "int8"
    with pytest.raises(ConfigError, match="all-static"):
        fptq.QuantConfig(method="rtn", policy="all-static", a_format="fp8")

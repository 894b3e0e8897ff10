"""QuantConfig / CalibConfig validation: options a method does not use are errors, and messages name settings in
terms that read right from the Python API and the CLI alike."""

import pytest

from fptq.config import CalibConfig, QuantConfig, from_dict
from fptq.errors import ConfigError


@pytest.mark.parametrize("kw,message", [
    (dict(method="gptq", v0=10.0, v1=20.0), "v0 (--v0) is not used by method gptq with policy all-dynamic"),
    (dict(method="rtn", v1=20.0), "v1 (--v1) is not used by method rtn"),
    (dict(method="smoothquant", v0=5.0), "v0 (--v0) is not used by method smoothquant"),
    (dict(method="fptq", policy="all-static", v0=5.0), "v0 (--v0) is not used by method fptq with policy all-static"),
    (dict(method="fptq", a_bits=16, v0=5.0), "v0 (--v0) is not used by method fptq with a_bits 16"),
    (dict(method="awq", a_bits=16, v0=5.0), "v0 (--v0) is not used by method awq with a_bits 16"),
    (dict(method="awq", a_bits=16, policy="all-static"), "policy (--policy) is not used by method awq with a_bits 16"),
    (dict(method="fptq", a_bits=16, policy="all-static"), "policy (--policy) is not used by method fptq with a_bits 16"),
    (dict(method="rtn", a_bits=16, policy="all-static"), "policy (--policy) is not used"),
    (dict(method="fptq", a_bits=16, equalization="smoothquant"), "equalization (--equalization) is not used"),
    (dict(method="fp8", w_bits=8, group_size=32), "group_size (--group-size) is not used by method fp8"),
    (dict(method="fp8", w_bits=8, group_size=128), "one scale per tensor"),
    (dict(method="fptq", gptq_damp=0.05), "gptq_damp (--gptq-damp) is not used by method fptq (only by gptq and "),
    (dict(method="rtn", act_order=False), "act_order (--act-order / --no-act-order) is not used by method rtn"),
    (dict(method="gptq", awq_grid=10), "awq_grid (--awq-grid) is not used by method gptq (only by awq)"),
    (dict(method="fptq", smoothquant_alpha=0.8), "smoothquant_alpha (--alpha) is not used by method fptq without "),
    (dict(method="fptq", equalization="none", smoothquant_alpha=0.8), "smoothquant_alpha (--alpha) is not used"),
])
def test_options_the_method_does_not_use_are_errors(kw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        QuantConfig(**kw)
    assert "\n" not in str(err.value) and "leave it out" in str(err.value)


def test_options_left_at_what_runs_anyway_are_accepted():
    assert QuantConfig(method="gptq", v0=15.0, v1=150.0).policy == "all-dynamic"  # the defaults: no conflict
    assert QuantConfig(method="awq", a_bits=16, policy="all-dynamic").policy == "all-dynamic"  # what awq records
    assert QuantConfig(method="fptq", v0=1.0, v1=50.0).v0 == 1.0  # layerwise: the thresholds apply
    assert QuantConfig(method="fptq+gptq", v0=1.0, v1=50.0).v1 == 50.0
    assert QuantConfig(method="fp8", w_bits=8).group_size == -1  # resolved: one scale per tensor
    assert QuantConfig(method="fp8", w_bits=8, group_size=-1).group_size == -1
    assert QuantConfig().group_size == 128 and QuantConfig(method="rtn", w_bits=8, group_size=-1).group_size == -1
    assert QuantConfig(method="fptq+gptq", gptq_damp=0.05, true_sequential=True).gptq_damp == 0.05
    assert QuantConfig(method="awq", a_bits=16, awq_grid=10, awq_clip=False).awq_grid == 10
    assert QuantConfig(method="smoothquant", smoothquant_alpha=0.8).smoothquant_alpha == 0.8
    assert QuantConfig(method="fptq", equalization="smoothquant", smoothquant_alpha=0.8).smoothquant_alpha == 0.8


@pytest.mark.parametrize("kw", [dict(), dict(method="gptq", a_bits=16), dict(method="awq", a_bits=16),
                                dict(method="fp8", w_bits=8), dict(method="rtn", policy="all-static", a_bits=8),
                                dict(method="fptq", a_bits=16, group_size=64)])
def test_saved_configs_load_back(kw):
    """A saved config records every resolved value, non-applicable ones included; they must load back."""
    config = QuantConfig(**kw)
    assert from_dict(QuantConfig, config.to_dict()) == config


@pytest.mark.parametrize("make,api_name,flag", [
    (lambda: QuantConfig(group_size=0), "group_size", "--group-size"),
    (lambda: QuantConfig(w_bits=3), "w_bits", "--w-bits"),
    (lambda: QuantConfig(smoothquant_alpha=2.0), "smoothquant_alpha", "--alpha"),
    (lambda: QuantConfig(gptq_block=0), "gptq_block", "--gptq-block"),
    (lambda: QuantConfig(scale_format="int"), "scale_format", "--scale-format"),
    (lambda: QuantConfig(method="awq", a_bits=8), "a_bits 16", "--a-bits 16"),
    (lambda: QuantConfig(method="fp8"), "w_bits 8", "--w-bits 8"),
    (lambda: QuantConfig(method="rtn", equalization="lae"), "method fptq", "--method fptq"),
    (lambda: CalibConfig(samples=0), "samples", "--calib-samples"),
    (lambda: CalibConfig(seqlen=1), "seqlen", "--calib-seqlen"),
    (lambda: CalibConfig(batch_size=0), "batch_size", "--calib-batch-size"),
])
def test_messages_name_the_api_argument_and_the_flag(make, api_name, flag):
    with pytest.raises(ConfigError) as err:
        make()
    assert f"{api_name} ({flag}" in str(err.value) and "\n" not in str(err.value)

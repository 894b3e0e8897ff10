"""QuantConfig / CalibConfig validation: options a method does not use are errors, and messages name settings in
terms that read right from the Python API and the CLI alike."""

import pytest

from fptq.config import CalibConfig, QuantConfig
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
                                dict(method="fptq", a_bits=16, group_size=64), dict(scale_format="fp16"),
                                dict(method="gptq", scale_format="fp16"), dict(group_size=-1)])
def test_saved_configs_load_back(kw):
    """A saved config records the settings that ran, and loads back to the same config."""
    from fptq.config import from_saved, unused_settings

    config = QuantConfig(**kw)
    saved = config.to_dict()
    assert from_saved(saved) == config
    assert not set(saved) & set(unused_settings(config))


def test_saved_configs_leave_out_what_the_method_does_not_use():
    """An FPTQ checkpoint does not say act_order: true (a GPTQ setting), nor a weight-only one v0 / v1 / policy."""
    assert QuantConfig().to_dict() == dict(method="fptq", w_bits=4, a_bits=8, group_size=128, symmetric=True,
                                           scale_format="two-level", policy="layerwise", v0=15.0, v1=150.0,
                                           equalization="lae", sequential=True)
    gptq = QuantConfig(method="gptq", a_bits=16).to_dict()
    assert gptq["act_order"] is True and "v0" not in gptq and "policy" not in gptq and "awq_grid" not in gptq
    assert "group_size" not in QuantConfig(method="fp8").to_dict()


@pytest.mark.parametrize("make,api_name,flag", [
    (lambda: QuantConfig(group_size=0), "group_size", "--group-size"),
    (lambda: QuantConfig(w_bits=3), "w_bits", "--w-bits"),
    (lambda: QuantConfig(smoothquant_alpha=2.0), "smoothquant_alpha", "--alpha"),
    (lambda: QuantConfig(gptq_block=0), "gptq_block", "--gptq-block"),
    (lambda: QuantConfig(scale_format="int"), "scale_format", "--scale-format"),
    (lambda: QuantConfig(method="awq", a_bits=8), "a_bits 16", "--a-bits 16"),
    (lambda: QuantConfig(method="fp8", w_bits=4), "w_bits 8", "--w-bits 8"),
    (lambda: QuantConfig(method="rtn", equalization="lae"), "method fptq", "--method fptq"),
    (lambda: CalibConfig(samples=0), "samples", "--calib-samples"),
    (lambda: CalibConfig(seqlen=1), "seqlen", "--calib-seqlen"),
    (lambda: CalibConfig(batch_size=0), "batch_size", "--calib-batch-size"),
])
def test_messages_name_the_api_argument_and_the_flag(make, api_name, flag):
    with pytest.raises(ConfigError) as err:
        make()
    assert f"{api_name} ({flag}" in str(err.value) and "\n" not in str(err.value)


def test_awq_and_fp8_default_to_their_only_bits():
    """Method awq is weight-only and fp8 stores float8 weights: left unset, a_bits / w_bits take the one value the
    method allows (as policy defaults per method), and a config says the same as one that gave it."""
    assert (QuantConfig(method="awq").w_bits, QuantConfig(method="awq").a_bits) == (4, 16)
    assert QuantConfig(method="awq") == QuantConfig(method="awq", a_bits=16)
    assert (QuantConfig(method="fp8").w_bits, QuantConfig(method="fp8").a_bits) == (8, 8)
    assert QuantConfig(method="fp8") == QuantConfig(method="fp8", w_bits=8)
    assert QuantConfig(method="fp8").to_dict() == QuantConfig(method="fp8", w_bits=8, a_bits=8).to_dict()
    for method in ("fptq", "rtn", "gptq", "smoothquant", "fptq+gptq"):  # the others keep W4A8
        assert QuantConfig(method=method).scheme == "W4A8"
    assert QuantConfig(method="gptq", a_bits=16).scheme == "W4A16" and QuantConfig(method="rtn", w_bits=8).w_bits == 8


def test_fp8_takes_no_zero_points():
    """float8 weights have a scale per tensor and no zero point: asymmetric is refused, not recorded as if it ran."""
    with pytest.raises(ConfigError, match=r"symmetric \(--asymmetric\) is not used by method fp8 .*no zero point"):
        QuantConfig(method="fp8", symmetric=False)


@pytest.mark.parametrize("kw,message", [
    (dict(method="fp8", w_bits=4), "method fp8 stores float8 weights: it takes only w_bits 8 (--w-bits 8), its default, "
                                   "got 4"),
    (dict(method="awq", a_bits=8), "method awq takes only a_bits 16 (--a-bits 16), its default, got 8"),
    (dict(method="smoothquant", a_bits=16), "method smoothquant takes only a_bits 8 (--a-bits 8), its default, got 16"),
])
def test_explicit_bits_the_method_does_not_take_are_errors(kw, message):
    with pytest.raises(ConfigError) as err:
        QuantConfig(**kw)
    assert str(err.value) == message


def test_saved_configs_with_or_without_bits_load_back():
    """Saved configs record w_bits and a_bits (an awq folder a_bits 16, an fp8 one w_bits 8): they load as before;
    a hand-written one that leaves them out gets the method's defaults."""
    from fptq.config import from_saved

    assert from_saved({"method": "awq", "w_bits": 4, "a_bits": 16}) == QuantConfig(method="awq")
    assert from_saved({"method": "fp8", "w_bits": 8, "a_bits": 8, "group_size": -1}) == QuantConfig(method="fp8")
    assert from_saved({"method": "awq"}).a_bits == 16 and from_saved({"method": "fp8"}).w_bits == 8
    assert from_saved({"method": "fptq"}) == QuantConfig(scale_format="fp16")  # (no scale_format: fp16 scales)
    with pytest.raises(ConfigError, match="takes only a_bits 16"):
        from_saved({"method": "awq", "a_bits": 8})


def test_without_flags_drops_only_the_flags():
    from fptq.config import without_flags

    with pytest.raises(ConfigError) as err:
        QuantConfig(method="rtn", equalization="lae")
    assert "(--" in str(err.value)
    assert without_flags(str(err.value)) == ("method rtn takes equalization none, got 'lae' "
                                             "(for the FPTQ ablations use method fptq)")
    assert without_flags("need 0 < v0 <= v1 (--v0, --v1), got v0=2") == "need 0 < v0 <= v1, got v0=2"
    assert without_flags("act_order (--act-order / --no-act-order) is not used") == "act_order is not used"


def test_calib_seqlen_left_unset_fits_the_model_context():
    """CalibConfig's seqlen left unset (None) is 2048, or the model's context where that is shorter; a given one
    stays (a too-long one is `fptq.quantize`'s error)."""
    from fptq.config import default_seqlen

    assert CalibConfig().seqlen is None
    assert CalibConfig().for_context(512).seqlen == 512
    assert CalibConfig().for_context(8192).seqlen == CalibConfig().for_context(None).seqlen == 2048
    assert CalibConfig(seqlen=4096).for_context(512).seqlen == 4096
    assert CalibConfig(samples=4).for_context(256) == CalibConfig(samples=4, seqlen=256)
    assert default_seqlen(256, 512) == 256 and default_seqlen(None, 512) == default_seqlen(4096, 512) == 512

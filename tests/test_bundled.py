"""The one test on the bundled real model (SmolLM2-135M-Instruct), kept small to stay fast."""

import pytest

import fptq
from fptq.data import bundled
from fptq.eval.perplexity import perplexity, perplexity_tokens


def test_bundled_texts_are_disjoint():
    ppl = bundled.perplexity_passages()
    calib = bundled.calibration_passages()
    assert len(ppl) == 2938
    assert len(calib) > 500
    assert not set(ppl) & set(calib)


@pytest.mark.slow
def test_fptq_beats_naive_static_w4a8_on_bundled_model(bundled_model_dir):
    calib = fptq.CalibConfig(samples=8, seqlen=256, batch_size=8)
    results = {}
    for name, config in {
        "naive": fptq.QuantConfig(group_size=64, policy="all-static", equalization="none"),
        "fptq": fptq.QuantConfig(group_size=64),
    }.items():
        model, tok = fptq.load_model("bundled")
        tokens = perplexity_tokens(tok)
        fptq.quantize(model, tok, config, calib, progress=False)
        results[name] = perplexity(model, tokens, seqlen=512, max_windows=2, progress=False)["ppl"]
        if name == "fptq":
            strategies = {r["strategy"] for r in model.fptq_info["policy"]}
            assert {"static", "equalized+static", "dynamic"} <= strategies
    assert results["fptq"] < results["naive"]

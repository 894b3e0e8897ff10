"""perplexity(): bad window settings are one-line ConfigErrors, not a ZeroDivisionError or a false message."""

import pytest
import torch

from fptq.errors import ConfigError, EvalDataError
from fptq.eval.perplexity import check_ppl_settings, perplexity

from ..conftest import make_tiny


@pytest.fixture(scope="module")
def model():
    return make_tiny("llama")  # max_position_embeddings 256


TOKENS = torch.arange(200) % 256


@pytest.mark.parametrize("kw,message", [
    (dict(seqlen=0), "--ppl-seqlen must be at least 2"),
    (dict(seqlen=1), "--ppl-seqlen must be at least 2"),
    (dict(seqlen=16, max_windows=0), "--ppl-windows must be a positive number"),
    (dict(seqlen=16, max_windows=-1), "--ppl-windows must be a positive number"),
    (dict(seqlen=512), "longer than the model's context of 256 tokens"),
])
def test_bad_settings(model, kw, message):
    with pytest.raises(ConfigError, match=message):
        perplexity(model, TOKENS, progress=False, **kw)


def test_good_settings(model):
    result = perplexity(model, TOKENS, seqlen=16, max_windows=2, progress=False)
    assert result["windows"] == 2 and result["tokens"] == 30
    assert perplexity(model, TOKENS, seqlen=2, max_windows=None, progress=False)["windows"] == 100
    with pytest.raises(EvalDataError, match="fewer than one window of 256"):  # a true statement now
        perplexity(model, TOKENS, seqlen=256, progress=False)


def test_check_ppl_settings_without_a_model():
    check_ppl_settings(2, None)
    check_ppl_settings(4096, 1, None)
    with pytest.raises(ConfigError):
        check_ppl_settings(4096, 1, 2048)


def test_seqlen_left_unset_is_the_model_context_where_shorter_than_2048():
    short = make_tiny("llama", max_position_embeddings=32)
    result = perplexity(short, TOKENS, max_windows=2, progress=False)
    assert result["seqlen"] == 32 and result["windows"] == 2 and result["tokens"] == 2 * 31
    assert perplexity(short, TOKENS, seqlen=16, max_windows=1, progress=False)["seqlen"] == 16
    with pytest.raises(ConfigError, match="--ppl-seqlen 64 is longer than the model's context of 32"):  # given: kept
        perplexity(short, TOKENS, seqlen=64, progress=False)

"""End-to-end quantization of tiny random models: every architecture, save/load, determinism, errors."""

import hashlib
import json
import warnings

import pytest
import torch

import fptq
from fptq.errors import CalibrationError, CheckpointError, ConfigError, ModelError, OutputExistsError
from fptq.nn.quant_linear import QuantLinear

from .conftest import inject_outliers, make_tiny

CALIB = fptq.CalibConfig(source="random", samples=8, seqlen=32, batch_size=4)


def _quantize(model, **kw):
    return fptq.quantize(model, None, fptq.QuantConfig(group_size=32, **kw), CALIB, progress=False)


def test_quantizes_every_architecture_and_output_stays_close(tiny_any):
    inject_outliers(tiny_any)
    x = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        ref = tiny_any(x).logits
    _quantize(tiny_any, v0=1.0, v1=50.0)
    linears = [m for m in tiny_any.modules() if isinstance(m, QuantLinear)]
    assert len(linears) == 2 * 7
    assert not any(type(m) is torch.nn.Linear for m in tiny_any.model.layers.modules())
    assert type(tiny_any.lm_head) is torch.nn.Linear  # lm_head stays in 16-bit
    with torch.no_grad():
        out = tiny_any(x).logits
    assert torch.isfinite(out).all()
    assert ((out - ref).norm() / ref.norm()).item() < 0.5
    rows = tiny_any.fptq_info["policy"]
    assert {r["layer"] for r in rows} == {n for n, m in tiny_any.named_modules() if isinstance(m, QuantLinear)}


def test_fptq_beats_naive_static_on_outlier_model():
    def error(**kw):
        model = make_tiny("llama", seed=3)
        inject_outliers(model, factor=80.0)
        x = torch.randint(0, 256, (4, 32))
        with torch.no_grad():
            ref = model(x).logits
            _quantize(model, **kw)
            return ((model(x).logits - ref).norm() / ref.norm()).item()

    assert error() < error(policy="all-static", equalization="none")


def test_save_load_is_bit_identical(tmp_path, tiny_any):
    _quantize(tiny_any)
    x = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        out = tiny_any(x).logits
    fptq.save_quantized(tiny_any, tmp_path / "q")
    info = json.loads((tmp_path / "q" / "fptq_config.json").read_text())
    assert info["format_version"] == 1 and info["quantization"]["method"] == "fptq" and len(info["policy"]) == 14
    loaded = fptq.load_quantized(tmp_path / "q")
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, out)
    assert not list(tmp_path.glob(".q.tmp-*"))  # nothing half-written left behind


def test_same_seed_same_checkpoint(tmp_path):
    digests = []
    for i in range(2):
        model = make_tiny("qwen2")
        _quantize(model)
        fptq.save_quantized(model, tmp_path / f"q{i}")
        digests.append(
            [hashlib.sha256((tmp_path / f"q{i}" / f).read_bytes()).hexdigest() for f in ("model.safetensors", "fptq_config.json")]
        )
    assert digests[0] == digests[1]


def test_existing_output_needs_overwrite(tmp_path, tiny_llama):
    _quantize(tiny_llama)
    (tmp_path / "q").mkdir()
    with pytest.raises(OutputExistsError):
        fptq.save_quantized(tiny_llama, tmp_path / "q")
    fptq.save_quantized(tiny_llama, tmp_path / "q", overwrite=True)
    assert (tmp_path / "q" / "model.safetensors").is_file()


@pytest.mark.parametrize("fptq_method, same", [("fptq", "rtn"), ("fptq+gptq", "gptq")])
def test_weight_only_fptq_is_another_method_bit_for_bit_and_says_so(fptq_method, same):
    """With 16-bit activations FPTQ's policy and LAE have nothing to act on: the weights are those of `same`, and
    quantize warns that the checkpoint will carry FPTQ's name for them."""
    states = {}
    for method in (fptq_method, same):
        model = make_tiny("llama")
        config = fptq.QuantConfig(method=method, group_size=32, a_bits=16)
        if method == fptq_method:
            with pytest.warns(UserWarning, match=f"gives the weights of method {same}, bit for bit"):
                fptq.quantize(model, None, config, CALIB, progress=False)
        else:
            fptq.quantize(model, None, config, CALIB, progress=False)
        states[method] = model.state_dict()
    assert states[fptq_method].keys() == states[same].keys()
    for key, value in states[same].items():
        assert torch.equal(states[fptq_method][key], value), key


def test_awq_with_two_level_scales_warns_once_and_with_fp16_scales_not():
    """AWQ fits its group scales at every step of its searches, so two-level scales (16 candidates a group) make it
    slower (and were worse on the bundled model): one warning per quantization, none with fp16 scales, awq's
    default."""
    messages = {}
    for scale_format in ("two-level", "fp16"):
        config = fptq.QuantConfig(method="awq", group_size=32, scale_format=scale_format, awq_grid=2, awq_clip=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fptq.quantize(make_tiny("llama"), None, config, CALIB, progress=False)
        messages[scale_format] = [str(w.message) for w in caught if str(w.message).startswith("fptq: ")]
    assert len(messages["two-level"]) == 1 and messages["fp16"] == []
    assert messages["two-level"][0].startswith("fptq: method awq with scale_format two-level (--scale-format "
                                              "two-level) fits two-level scales (16 candidates a group) at every step")
    assert messages["two-level"][0].endswith("; use scale_format fp16 (--scale-format fp16), awq's default")


def test_group_size_that_does_not_divide_names_layer_and_alternatives():
    model = make_tiny("llama", hidden_size=96, intermediate_size=192, num_attention_heads=4, num_key_value_heads=2)
    with pytest.raises(ConfigError, match=r"group size 64 does not divide the input size 96 of model\.layers\.0\.self_attn\.q_proj.*32"):
        fptq.quantize(model, None, fptq.QuantConfig(group_size=64), CALIB, progress=False)


def test_calibration_longer_than_the_context_is_a_clear_error():
    model = make_tiny("llama", max_position_embeddings=64)
    with pytest.raises(ConfigError, match=r"seqlen 128 \(--calib-seqlen 128\) is longer than the model's context of 64"):
        fptq.quantize(model, None, fptq.QuantConfig(group_size=32),
                      fptq.CalibConfig(source="random", samples=2, seqlen=128), progress=False)
    with pytest.raises(ConfigError, match="longer than the model's context of 64 tokens"):  # a ready token tensor
        fptq.quantize(model, None, fptq.QuantConfig(group_size=32), torch.zeros(2, 65, dtype=torch.long),
                      progress=False)


def test_calibration_length_left_unset_fits_the_context():
    """CalibConfig's seqlen left out: 2048, or the model's shorter context, which the calibration record keeps."""
    model = make_tiny("llama", max_position_embeddings=64)
    fptq.quantize(model, None, fptq.QuantConfig(group_size=32), fptq.CalibConfig(source="random", samples=2),
                  progress=False)
    assert model.fptq_info["calibration"]["seqlen"] == 64 and model.fptq_info["calibration"]["tokens"] == 2 * 64
    model = make_tiny("llama", max_position_embeddings=64)
    fptq.quantize(model, None, fptq.QuantConfig(group_size=32), fptq.CalibConfig(source="random", samples=2, seqlen=16),
                  progress=False)  # a given length stays
    assert model.fptq_info["calibration"]["seqlen"] == 16


def test_non_finite_activations_are_a_clear_error(tiny_llama):
    with torch.no_grad():
        tiny_llama.model.layers[0].input_layernorm.weight[0] = float("inf")
    with pytest.raises(CalibrationError, match="non-finite activations.*model.layers.0"):
        _quantize(tiny_llama)


def test_calibration_text_shorter_than_one_sequence(tmp_path):
    from fptq.models.loading import load_tokenizer

    short = tmp_path / "short.txt"
    short.write_text("only a few words here")
    model = make_tiny("llama", vocab_size=49152)
    with pytest.raises(CalibrationError, match="shorter than one sequence"):
        fptq.quantize(model, load_tokenizer("bundled"), fptq.QuantConfig(group_size=32),
                      fptq.CalibConfig(source=str(short), samples=2, seqlen=64), progress=False)


def test_unsupported_architecture():
    from transformers import GPT2Config

    with pytest.raises(ModelError, match="unsupported architecture 'gpt2'.*llama"):
        fptq.models.arch.get_arch(GPT2Config())


@pytest.mark.parametrize("damage", ["truncate", "foreign", "version", "missing_config"])
def test_damaged_checkpoints_are_rejected(tmp_path, tiny_llama, damage):
    _quantize(tiny_llama)
    folder = fptq.save_quantized(tiny_llama, tmp_path / "q")
    if damage == "truncate":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "foreign":
        (folder / "fptq_config.json").write_text(json.dumps({"quant_method": "awq"}))
    elif damage == "version":
        info = json.loads((folder / "fptq_config.json").read_text())
        (folder / "fptq_config.json").write_text(json.dumps(dict(info, format_version=99)))
    else:
        (folder / "fptq_config.json").unlink()
    with pytest.raises(CheckpointError):
        fptq.load_quantized(folder)


def test_calibration_text_shorter_than_samples_x_seqlen_warns(tmp_path):
    import warnings

    from fptq.data.calib import _covered, calibration_windows
    from fptq.models.loading import load_tokenizer

    tok = load_tokenizer("bundled")
    text = tmp_path / "short.txt"
    text.write_text("The quick brown fox jumps over the lazy dog, and then it runs away into the woods. " * 4)
    with pytest.warns(UserWarning, match=r"has \d+ tokens, fewer than the 8 x 32 = 256 that samples x seqlen"):
        tokens, info = calibration_windows(tok, fptq.CalibConfig(source=str(text), samples=8, seqlen=32))
    assert tokens.shape == (8, 32)
    # what is recorded: the text's length, and the positions the overlapping windows cover, each once
    assert 32 <= info["covered_tokens"] <= info["text_tokens"] < 256 == info["tokens"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough text: no warning
        _, info = calibration_windows(tok, fptq.CalibConfig(source=str(text), samples=2, seqlen=16))
    assert info["covered_tokens"] == 2 * 16 == info["tokens"] and info["text_tokens"] > 2 * 16  # (no overlap)
    assert _covered(torch.tensor([10, 0, 100]), 32) == 42 + 32  # [0, 42) and [100, 132)


def test_calibration_windows_of_a_long_enough_text_do_not_overlap(tmp_path):
    """A text of at least samples x seqlen tokens: no position calibrates twice. A first draw whose windows are
    disjoint is kept (the windows earlier fptq versions drew); one with overlapping windows is drawn again, disjoint."""
    import warnings

    from fptq.data.calib import _covered, calibration_windows
    from fptq.models.loading import load_tokenizer

    tok = load_tokenizer("bundled")
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog, and then it runs away into the woods. " * 5)
    ids = tok(text.read_text(), return_tensors="pt", add_special_tokens=False).input_ids[0]
    samples, seqlen = 4, 16
    assert ids.numel() >= samples * seqlen
    kept = redrawn = 0
    for seed in range(12):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # enough text: no warning
            tokens, info = calibration_windows(tok, fptq.CalibConfig(source=str(text), samples=samples, seqlen=seqlen,
                                                                     seed=seed))
        assert tokens.shape == (samples, seqlen) and info["covered_tokens"] == samples * seqlen == info["tokens"]
        first = torch.randint(0, ids.numel() - seqlen + 1, (samples,), generator=torch.Generator().manual_seed(seed))
        if _covered(first, seqlen) == samples * seqlen:  # disjoint already: the same windows as before
            assert torch.equal(tokens, torch.stack([ids[s : s + seqlen] for s in first.tolist()]))
            kept += 1
        else:  # (a redraw is as deterministic as the first draw: the compare cache relies on it)
            again, _ = calibration_windows(tok, fptq.CalibConfig(source=str(text), samples=samples, seqlen=seqlen,
                                                                 seed=seed))
            assert torch.equal(tokens, again)
            redrawn += 1
    assert kept and redrawn  # (both cases seen)
    from fptq.data.calib import describe

    assert describe(fptq.CalibConfig(samples=3))["tokens"] == 3 * 2048  # (an unset length: the default)

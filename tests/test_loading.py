"""Loading full-precision models and saving quantized ones: every bad input is one clear error.

Tiny random Llamas saved as Hugging Face folders stand in for real checkpoints (CPU, seconds).
"""

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import fptq
from fptq.cli import main
from fptq.errors import CheckpointError, ModelError, OutputExistsError
from fptq.models.loading import load_model, load_tokenizer, resolve_model

from .conftest import make_tiny

CALIB = fptq.CalibConfig(source="random", samples=4, seqlen=32, batch_size=4)
QUICK = ["--calib", "random", "--calib-samples", "4", "--calib-seqlen", "32", "--quiet", "--device", "cpu",
         "--group-size", "32"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("bundled")


def _save_fp(folder, tokenizer=None, **overrides):
    """A tiny random Llama saved with save_pretrained (safetensors), with the bundled tokenizer."""
    model = make_tiny("llama", **overrides)
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return model


def _quantized(tmp_path, tokenizer, name="q"):
    model = make_tiny("llama")
    fptq.quantize(model, None, fptq.QuantConfig(group_size=32), CALIB, progress=False)
    return model, fptq.save_quantized(model, tmp_path / name, tokenizer=tokenizer)


def _edit_weights(folder, edit):
    tensors = load_file(folder / "model.safetensors")
    edit(tensors)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return code, lines


# B1: an fptq output folder is not a full-precision model


def test_load_model_refuses_an_fptq_checkpoint(tmp_path, tokenizer):
    _, folder = _quantized(tmp_path, tokenizer)
    with pytest.raises(ModelError, match="is an fptq checkpoint \\(already quantized.*original full-precision"):
        load_model(folder)


def test_cli_quantize_of_a_quantized_folder_is_one_line_and_writes_nothing(tmp_path, tokenizer, capsys):
    _, folder = _quantized(tmp_path, tokenizer, "q1")
    code, lines = _cli(capsys, "quantize", folder, "--out", tmp_path / "q2", *QUICK)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("fptq: error:") and "already quantized" in lines[0]
    assert not (tmp_path / "q2").exists()


def test_quantize_refuses_an_already_quantized_model(tmp_path, tokenizer):
    model, folder = _quantized(tmp_path, tokenizer)
    with pytest.raises(ModelError, match="already quantized"):
        fptq.quantize(model, None, fptq.QuantConfig(group_size=32), CALIB, progress=False)
    loaded = fptq.load_quantized(folder)
    with pytest.raises(ModelError, match="already quantized.*full-precision"):
        fptq.quantize(loaded, None, fptq.QuantConfig(group_size=32), CALIB, progress=False)


# B2: missing / unexpected / mismatched tensors


@pytest.mark.parametrize("tie", [False, True])
def test_tied_and_untied_models_load_without_complaint(tmp_path, tokenizer, tie):
    ref = _save_fp(tmp_path / "m", tokenizer, tie_word_embeddings=tie)
    model, _ = load_model(tmp_path / "m")
    for key, value in ref.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert (model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()) == tie


def test_bundled_model_loads_without_missing_tensors(bundled_model_dir):
    model, _ = load_model("bundled")  # tied lm_head and rotary inv_freq buffers are not "missing"
    assert model.config.tie_word_embeddings
    assert torch.isfinite(model.lm_head.weight).all()


def test_missing_tensor_is_an_error(tmp_path):
    _save_fp(tmp_path / "m")
    _edit_weights(tmp_path / "m", lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(ModelError, match=r"missing 1 weight tensor .*model\.layers\.1\.mlp\.up_proj\.weight"):
        load_model(tmp_path / "m")


def test_all_linear_weights_missing_is_an_error_that_counts_them(tmp_path):
    _save_fp(tmp_path / "m")
    _edit_weights(tmp_path / "m", lambda t: [t.pop(k) for k in list(t) if k.endswith("_proj.weight")])
    with pytest.raises(ModelError, match="missing 14 weight tensors .* and 11 more"):
        load_model(tmp_path / "m")


def test_quantized_tensors_without_fptq_config_are_an_error(tmp_path, tokenizer):
    _, folder = _quantized(tmp_path, tokenizer)
    (folder / "fptq_config.json").unlink()
    with pytest.raises(ModelError, match="looks like a quantized checkpoint"):
        load_model(folder)


def test_harmless_unexpected_tensor_is_ignored(tmp_path, tokenizer):
    _save_fp(tmp_path / "m", tokenizer)
    _edit_weights(tmp_path / "m", lambda t: t.update({"model.extra_buffer": torch.zeros(3)}))
    load_model(tmp_path / "m")


def test_wrong_shape_is_an_error(tmp_path):
    _save_fp(tmp_path / "m")
    _edit_weights(tmp_path / "m", lambda t: t.update({"model.norm.weight": torch.ones(32)}))
    with pytest.raises(ModelError, match=r"model\.norm\.weight has shape \(32,\) in the checkpoint but \(64,\)"):
        load_model(tmp_path / "m")


# B9: a corrupt full-precision checkpoint


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_corrupt_fp_safetensors_is_one_line(tmp_path, capsys, damage):
    _save_fp(tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "garbage": b"not safetensors" * 9}[damage])
    with pytest.raises(ModelError, match="model.safetensors is truncated or corrupted"):
        load_model(tmp_path / "m")
    code, lines = _cli(capsys, "quantize", tmp_path / "m", "--out", tmp_path / "q", *QUICK)
    assert code == 2 and len(lines) == 1 and "truncated or corrupted" in lines[0]
    assert not (tmp_path / "q").exists()


# R1: safetensors only, never pickle


def test_pickle_only_folder_is_refused_without_unpickling(tmp_path, monkeypatch):
    model = _save_fp(tmp_path / "m")
    os.remove(tmp_path / "m" / "model.safetensors")
    torch.save(model.state_dict(), tmp_path / "m" / "pytorch_model.bin")

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", no_pickle)
    with pytest.raises(ModelError, match=r"no \.safetensors weights \(only pytorch_model\.bin\); fptq loads safetensors only"):
        load_model(tmp_path / "m")


# B3: overwrite never deletes the user's source model, the working directory or foreign folders


def test_overwrite_refuses_the_source_model_folder_and_folders_above_it(tmp_path, tokenizer):
    _save_fp(tmp_path / "models" / "m", tokenizer)
    model, _ = load_model(tmp_path / "models" / "m")
    fptq.quantize(model, None, fptq.QuantConfig(group_size=32), CALIB, progress=False)
    for out in (tmp_path / "models" / "m", tmp_path / "models"):
        (out / "fptq_config.json").write_text("{}")  # even looking like an earlier output does not help
        with pytest.raises(OutputExistsError, match="source model"):
            fptq.save_quantized(model, out, overwrite=True, protect=(tmp_path / "models" / "m",))
        (out / "fptq_config.json").unlink()
    assert (tmp_path / "models" / "m" / "model.safetensors").is_file()
    assert not list((tmp_path / "models").glob(".*"))


def test_overwrite_refuses_a_folder_holding_the_working_directory(tmp_path, tokenizer, monkeypatch):
    model, folder = _quantized(tmp_path, tokenizer)
    (folder / "work").mkdir()
    monkeypatch.chdir(folder / "work")
    with pytest.raises(OutputExistsError, match="current working directory"):
        fptq.save_quantized(model, folder, overwrite=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputExistsError, match="current working directory"):
        fptq.save_quantized(model, ".", overwrite=True)
    assert (folder / "work").is_dir()


def test_overwrite_refuses_a_foreign_non_empty_folder_but_replaces_an_earlier_output(tmp_path, tokenizer):
    model, folder = _quantized(tmp_path, tokenizer)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(OutputExistsError, match="not an earlier fptq output \\(no fptq_config.json\\)"):
        fptq.save_quantized(model, tmp_path / "photos", overwrite=True)
    assert (tmp_path / "photos" / "cat.jpg").read_bytes() == b"meow"
    (folder / "stale.txt").write_text("old")
    fptq.save_quantized(model, folder, overwrite=True)  # an earlier fptq output: replaced
    assert not (folder / "stale.txt").exists() and (folder / "fptq_config.json").is_file()
    fptq.load_quantized(folder)


def test_api_message_names_the_keyword_and_the_flag(tmp_path, tokenizer):
    model, folder = _quantized(tmp_path, tokenizer)
    with pytest.raises(OutputExistsError, match=r"--overwrite \(overwrite=True in Python\)"):
        fptq.save_quantized(model, folder)


# N2, N3, N4: clearer messages


def test_resolve_model_on_a_file(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file, not a model folder"):
        resolve_model(tmp_path / "model.gguf")


def test_quantized_folder_without_weights_says_missing(tmp_path, tokenizer):
    _, folder = _quantized(tmp_path, tokenizer)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing") as exc:
        fptq.load_quantized(folder)
    assert "corrupted" not in str(exc.value)


@pytest.mark.parametrize("value", [None, [], "x"])
def test_tampered_quantization_section(tmp_path, tokenizer, value):
    _, folder = _quantized(tmp_path, tokenizer)
    info = json.loads((folder / "fptq_config.json").read_text())
    (folder / "fptq_config.json").write_text(json.dumps(dict(info, quantization=value)))
    with pytest.raises(CheckpointError, match="is damaged: 'quantization' must be a JSON object, got"):
        fptq.load_quantized(folder)

"""Loading full-precision models and saving quantized ones: every bad input is one clear error.

Tiny random Llamas saved as Hugging Face folders stand in for real checkpoints (CPU, seconds).
"""

import itertools
import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import fptq
from fptq.cli import main
from fptq.errors import CheckpointError, ConfigError, ModelError, OutputExistsError
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


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_checkpoint_config_keeps_the_source_dtype(tmp_path, tokenizer, dtype):
    """fptq computes in float32 on the CPU, but config.json names the source's dtype, also once loaded and saved
    again; loading picks its own compute dtype, so the outputs are the same."""
    make_tiny("llama").to(getattr(torch, dtype)).save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    model, _ = load_model(tmp_path / "m")
    fptq.quantize(model, None, fptq.QuantConfig(group_size=32), CALIB, progress=False)
    folder = fptq.save_quantized(model, tmp_path / "q")
    assert json.loads((folder / "config.json").read_text())["dtype"] == dtype
    assert model.config.dtype == torch.float32  # (in memory: what it computes in, as transformers keeps it)
    loaded = fptq.load_quantized(folder)
    x = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        assert loaded.dtype == torch.float32 and torch.equal(loaded(x).logits, model(x).logits)
    again = fptq.save_quantized(loaded, tmp_path / "q2")
    assert (again / "config.json").read_bytes() == (folder / "config.json").read_bytes()


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


# R7: tampered quantized tensors and configs are refused, naming what is wrong


@pytest.fixture(scope="module")
def saved_folders(tmp_path_factory):
    """One small checkpoint per storage layout: two-level int4 (static activations), asymmetric int4 with
    fp16 scales and zero points, and fp8; and two with other layer strategies: layer-wise (static, LAE+static and
    dynamic layers on the tiny model) and weight-only."""
    configs = {
        "two-level": fptq.QuantConfig(group_size=32),
        "asymmetric": fptq.QuantConfig(group_size=32, symmetric=False),
        "fp8": fptq.QuantConfig(method="fp8", w_bits=8),
        "layerwise": fptq.QuantConfig(group_size=32, v0=1.0, v1=7.0),
        "weight-only": fptq.QuantConfig(method="rtn", group_size=32, a_bits=16),
    }
    folders = {}
    for name, config in configs.items():
        model = make_tiny("llama")
        fptq.quantize(model, None, config, CALIB, progress=False)
        folders[name] = fptq.save_quantized(model, tmp_path_factory.mktemp("saved") / name)
    return folders


def _tampered(tmp_path, saved_folders, layout, key, edit):
    """A copy of a saved checkpoint whose tensor `key` is replaced by `edit(tensor)`."""
    folder = tmp_path / layout
    shutil.copytree(saved_folders[layout], folder)
    _edit_weights(folder, lambda t: t.update({key: edit(t[key])}))
    return folder


def _set_first(value):
    def edit(t):
        t = t.clone()
        t.view(-1)[0] = value
        return t

    return edit


DOWN = "model.layers.0.mlp.down_proj"


@pytest.mark.parametrize(
    "layout, buffer, value",
    [
        ("two-level", "act_scale", float("nan")),
        ("two-level", "act_scale", 0.0),
        ("two-level", "scales", float("inf")),
        ("two-level", "channel_scales", -1.0),
        ("asymmetric", "scales", -0.5),
        ("asymmetric", "scales", float("nan")),
        ("fp8", "weight_scale", float("nan")),
        ("fp8", "input_scale", -1.0),
    ],
)
def test_non_finite_or_non_positive_scale_is_refused(tmp_path, saved_folders, layout, buffer, value):
    folder = _tampered(tmp_path, saved_folders, layout, f"{DOWN}.{buffer}", _set_first(value))
    with pytest.raises(CheckpointError, match=rf"{DOWN}\.{buffer} holds 1 value\(s\) that are not finite and positive"):
        fptq.load_quantized(folder)


@pytest.mark.parametrize(
    "layout, key, dtype, expected",
    [
        ("two-level", f"{DOWN}.qweight", torch.int32, "uint8"),
        ("two-level", f"{DOWN}.scales", torch.float32, "float16"),
        ("two-level", f"{DOWN}.channel_scales", torch.float32, "float16"),
        ("two-level", f"{DOWN}.act_scale", torch.float16, "float32"),
        ("asymmetric", f"{DOWN}.zeros", torch.int32, "uint8"),
        ("fp8", f"{DOWN}.weight", torch.float16, "float8_e4m3fn"),
        ("fp8", f"{DOWN}.weight_scale", torch.float64, "float32"),
        ("fp8", "model.norm.weight", torch.float32, "float16"),
    ],
)
def test_tensor_with_the_wrong_dtype_is_refused(tmp_path, saved_folders, layout, key, dtype, expected):
    folder = _tampered(tmp_path, saved_folders, layout, key, lambda t: t.to(dtype))
    found = str(dtype).removeprefix("torch.")
    with pytest.raises(CheckpointError, match=rf"{key} has dtype {found}, expected {expected}$"):
        fptq.load_quantized(folder)


def test_untampered_checkpoints_of_every_layout_load(saved_folders):
    for folder in saved_folders.values():
        fptq.load_quantized(folder)


def _with_quantization(tmp_path, saved_folders, layout="two-level", **changes):
    """A copy of a saved checkpoint whose fptq_config.json "quantization" entries are changed."""
    folder = tmp_path / "q"
    shutil.copytree(saved_folders[layout], folder)
    info = json.loads((folder / "fptq_config.json").read_text())
    info["quantization"].update(changes)
    (folder / "fptq_config.json").write_text(json.dumps(info))
    return folder


@pytest.mark.parametrize("method, shown", [("zzz", '"zzz"'), (["fptq"], r'\["fptq"\]')])
def test_unknown_method_in_fptq_config_is_refused_with_the_known_ones(tmp_path, saved_folders, method, shown):
    from fptq.methods import METHODS

    folder = _with_quantization(tmp_path, saved_folders, method=method)
    with pytest.raises(CheckpointError, match=rf"fptq_config.json names an unknown method {shown}; known methods: ") as exc:
        fptq.load_quantized(folder)
    assert all(name in str(exc.value) for name in METHODS)


@pytest.mark.parametrize("changes, message", [
    (dict(w_bits=3), "w_bits must be 4 or 8, got 3"),
    (dict(symmetric=False), "scale_format two-level needs symmetric 4-bit weights in groups (not per channel)"),
    (dict(method="fp8"), "method fp8 takes policy all-static, got 'layerwise'"),
    (dict(method="fp8", policy="all-static", equalization="none"),
     "method fp8 stores float8 weights: it takes only w_bits 8, its default, got 4"),
])
def test_invalid_setting_in_fptq_config_names_the_file_and_no_flag(tmp_path, saved_folders, changes, message):
    """The user who loads a folder passed no options: the error names the file's settings, not the CLI's flags."""
    folder = _with_quantization(tmp_path, saved_folders, **changes)
    with pytest.raises(CheckpointError) as exc:
        fptq.load_quantized(folder)
    assert str(exc.value) == f"{folder / 'fptq_config.json'}: {message}"


def test_settings_an_earlier_fptq_recorded_unused_still_load(tmp_path, saved_folders):
    """Before `QuantConfig` refused settings its method does not use, they were recorded (and never applied): such
    folders load, with the settings set back to what ran."""
    from fptq.config import from_saved

    folder = _with_quantization(tmp_path, saved_folders, policy="all-static", v0=10.0, v1=20.0)
    assert fptq.load_quantized(folder) is not None
    config = from_saved({"method": "fp8", "w_bits": 8, "group_size": 32, "policy": "all-static"})
    assert config.group_size == -1
    config = from_saved({"method": "gptq", "v0": 10.0, "v1": 20.0})
    assert (config.v0, config.v1) == (fptq.QuantConfig().v0, fptq.QuantConfig().v1)
    with pytest.raises(ConfigError, match="v0"):  # (a new config with them is still an error)
        fptq.QuantConfig(method="gptq", v0=10.0, v1=20.0)


# Review 25 #11: a "quantization" entry that contradicts the layers (their strategies, which decide the tensors: an
# act_scale for static layers) is refused, instead of running what the tensors say

Q_PROJ = "model.layers.0.self_attn.q_proj"
STATIC = "'static' (int8 activations with a static act_scale)"
DYNAMIC = "'dynamic' (per-token dynamic int8 activations)"


@pytest.mark.parametrize("layout, changes, settings, layer, strategy, allowed", [
    ("two-level", dict(a_bits=16), "method fptq, a_bits 16", Q_PROJ, STATIC,
     "'none' layers (weight-only: floating-point activations)"),
    ("weight-only", dict(a_bits=8), "method rtn, a_bits 8, policy all-dynamic, equalization none, a_format int8", Q_PROJ,
     "'none' (weight-only: floating-point activations)", f"{DYNAMIC.replace(' (', ' layers (')}"),
    ("two-level", dict(policy="all-dynamic"), "method fptq, a_bits 8, policy all-dynamic, equalization lae, "
     "a_format int8", Q_PROJ, STATIC, f"{DYNAMIC.replace(' (', ' layers (')}"),
    ("layerwise", dict(a_format="fp8"), "method fptq, a_bits 8, policy layerwise, equalization lae, a_format fp8",
     "model.layers.0.mlp.gate_proj", DYNAMIC, "'static' / 'equalized+static' / 'dynamic-fp8' layers"),
    ("layerwise", dict(equalization="none"), "method fptq, a_bits 8, policy layerwise, equalization none, "
     "a_format int8", Q_PROJ, "'equalized+static' (equalized int8 activations with a static act_scale)",
     "'static' / 'dynamic' layers"),
    ("fp8", dict(method="fptq", policy="layerwise", equalization="lae"), "method fptq, a_bits 8, policy layerwise, "
     "equalization lae, a_format int8", Q_PROJ, "'fp8-static' (float8 weights and activations)",
     "'static' / 'equalized+static' / 'dynamic' layers"),
])
def test_quantization_entry_that_contradicts_the_layers_is_refused(tmp_path, saved_folders, layout, changes, settings,
                                                                    layer, strategy, allowed):
    folder = _with_quantization(tmp_path, saved_folders, layout, **changes)
    with pytest.raises(CheckpointError) as exc:
        fptq.load_quantized(folder)
    assert str(exc.value) == (
        f"{folder / 'fptq_config.json'}: its quantization settings ({settings}) contradict its layers: layer {layer} "
        f"has strategy {strategy}, but these settings save only {allowed}; the file was edited or damaged"
    )


@pytest.mark.parametrize("changes, message", [
    (dict(group_size="64"), "group_size must be int or null, got '64'"),
    (dict(symmetric="yes"), "symmetric must be bool, got 'yes'"),
    (dict(v0=True), "v0 must be float, got True"),
])
def test_a_setting_of_the_wrong_type_is_named(tmp_path, saved_folders, changes, message):
    folder = _with_quantization(tmp_path, saved_folders, **changes)
    with pytest.raises(CheckpointError) as exc:
        fptq.load_quantized(folder)
    assert str(exc.value) == f"{folder / 'fptq_config.json'}: {message}"


@pytest.mark.parametrize("strategy", [["static"], 3, None])
def test_a_strategy_that_is_not_a_name_is_a_damaged_file(tmp_path, saved_folders, capsys, strategy):
    folder = _with_quantization(tmp_path, saved_folders)
    info = json.loads((folder / "fptq_config.json").read_text())
    info["policy"][0]["strategy"] = strategy
    (folder / "fptq_config.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=r"fptq_config.json is damaged: layer .* has strategy .*, not a name"):
        fptq.load_quantized(folder)
    code, lines = _cli(capsys, "eval", folder, "--ppl", "bundled", "--ppl-windows", 1, "--ppl-seqlen", 32, "--quiet")
    assert code == 2 and len(lines) == 1 and "not a name" in lines[0]


def test_cli_eval_of_a_contradicting_config_is_one_line(tmp_path, saved_folders, capsys):
    folder = _with_quantization(tmp_path, saved_folders, a_bits=16)
    code, lines = _cli(capsys, "eval", folder, "--ppl", "bundled", "--ppl-windows", 1, "--ppl-seqlen", 32, "--quiet")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("fptq: error:")
    assert "(method fptq, a_bits 16) contradict its layers" in lines[0] and "--" not in lines[0]


# Every kind of checkpoint fptq writes (methods, bit widths, policies, equalizations, activation and scale formats)
WRITTEN = [
    dict(), dict(v0=1.0, v1=7.0), dict(v0=1.0, v1=7.0, equalization="none"),
    dict(v0=1.0, v1=7.0, equalization="smoothquant"), dict(v0=1.0, v1=7.0, a_format="fp8"),
    dict(policy="all-static"), dict(policy="all-dynamic", a_format="fp8"), dict(a_bits=16), dict(scale_format="fp16"),
    dict(symmetric=False), dict(w_bits=8, group_size=-1), dict(method="rtn"), dict(method="rtn", policy="all-static"),
    dict(method="rtn", a_bits=16), dict(method="smoothquant"), dict(method="smoothquant", policy="all-static"),
    dict(method="smoothquant", w_bits=8, group_size=-1), dict(method="gptq"), dict(method="gptq", a_bits=16),
    dict(method="fptq+gptq", v0=1.0, v1=7.0), dict(method="fptq+gptq", a_bits=16), dict(method="awq"),
    dict(method="fp8"),
]


def _every_method_setting() -> list[dict]:
    """Each method's every policy x equalization x a_bits x activation format that QuantConfig accepts (from
    METHOD_RULES, so a new rule is covered), with thresholds that put layers in all three of FPTQ's bands."""
    from fptq.config import METHOD_RULES

    settings = []
    for method, (policies, _, equalizations, _, a_bits) in METHOD_RULES.items():
        for policy, equalization, bits, a_format in itertools.product(policies, equalizations, a_bits, ("int8", "fp8")):
            kw = dict(method=method, a_bits=bits, a_format=a_format)
            if bits == 8 and method != "fp8":
                kw.update(policy=policy, equalization=equalization)
            if method in ("fptq", "fptq+gptq") and kw.get("policy") == "layerwise":
                kw.update(v0=1.0, v1=7.0)
            try:
                fptq.QuantConfig(**{**({} if method == "fp8" else {"group_size": 32}), **kw})
            except ConfigError:
                continue
            if kw not in settings:
                settings.append(kw)
    return settings


@pytest.mark.filterwarnings("ignore:fptq. method fptq.* with a_bits 16")  # (weight-only FPTQ: allowed, with a warning)
def test_every_checkpoint_fptq_writes_has_the_strategies_its_config_allows_and_loads(tmp_path):
    from fptq.export.native import _STRATEGY_MEANINGS, saved_strategies
    from fptq.methods.fp8 import FP8_STRATEGY
    from fptq.methods.policy import ACT_MODES

    assert set(_STRATEGY_MEANINGS) == {*ACT_MODES, FP8_STRATEGY}
    seen = set()
    for i, kw in enumerate(WRITTEN + _every_method_setting()):
        config = fptq.QuantConfig(**{**({} if kw.get("method") == "fp8" else {"group_size": 32}), **kw})
        model = make_tiny("llama")
        fptq.quantize(model, None, config, CALIB, progress=False)
        folder = fptq.save_quantized(model, tmp_path / f"q{i}")
        strategies = {row["strategy"] for row in model.fptq_info["policy"]}
        assert strategies <= set(saved_strategies(config)), kw
        seen |= strategies
        assert fptq.load_quantized(folder).fptq_info == model.fptq_info
    assert seen == set(_STRATEGY_MEANINGS)  # (every strategy was written and loaded)


def test_cli_eval_of_a_nan_act_scale_is_one_line(tmp_path, saved_folders, capsys):
    folder = _tampered(tmp_path, saved_folders, "two-level", f"{DOWN}.act_scale", _set_first(float("nan")))
    code, lines = _cli(capsys, "eval", folder, "--ppl", "bundled", "--ppl-windows", 1, "--ppl-seqlen", 32, "--quiet")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("fptq: error:")
    assert f"{DOWN}.act_scale holds 1 value(s) that are not finite and positive (e.g. nan)" in lines[0]


# (benchmarks/results/review_session26_newuser.md, 4c) A policy row's act_scale is the layer's stored activation
# scale (the one that runs), or null where the layer has none; an edited row is refused instead of being reported as
# what ran

NO_ENTRY = object()  # (a policy row without an act_scale entry)
GATE = "model.layers.0.mlp.gate_proj"


def _with_act_scale(tmp_path, saved_folders, layout, layer, value):
    """A copy of a saved checkpoint whose policy row of `layer` has act_scale `value` (NO_ENTRY: none)."""
    folder = tmp_path / "q"
    shutil.copytree(saved_folders[layout], folder)
    info = json.loads((folder / "fptq_config.json").read_text())
    row = next(r for r in info["policy"] if r["layer"] == layer)
    if value is NO_ENTRY:
        del row["act_scale"]
    else:
        row["act_scale"] = value(row) if callable(value) else value
    (folder / "fptq_config.json").write_text(json.dumps(info))
    return folder


@pytest.mark.parametrize("layout, layer, buffer, value, shown", [
    ("two-level", DOWN, "act_scale", 123.0, "act_scale 123.0"),
    ("layerwise", Q_PROJ, "act_scale", 123.0, "act_scale 123.0"),  # (equalized+static)
    ("asymmetric", DOWN, "act_scale", lambda row: float(f"{row['act_scale']:.4g}"), None),  # (rounded by hand)
    ("fp8", DOWN, "input_scale", 123.0, "act_scale 123.0"),
    ("two-level", DOWN, "act_scale", None, "act_scale null"),
    ("two-level", DOWN, "act_scale", NO_ENTRY, "no act_scale"),
    ("two-level", DOWN, "act_scale", "0.01", 'act_scale "0.01"'),
    ("two-level", DOWN, "act_scale", True, "act_scale true"),
    ("two-level", DOWN, "act_scale", 10**400, "act_scale 1" + "0" * 39),  # (no float: compared exactly, no overflow)
])
def test_a_policy_act_scale_that_is_not_the_stored_one_is_refused(tmp_path, saved_folders, layout, layer, buffer,
                                                                   value, shown):
    folder = _with_act_scale(tmp_path, saved_folders, layout, layer, value)
    if shown is None:
        row = next(r for r in json.loads((folder / "fptq_config.json").read_text())["policy"] if r["layer"] == layer)
        shown = f"act_scale {row['act_scale']!r}"
    stored = load_file(folder / "model.safetensors")[f"{layer}.{buffer}"].item()
    with pytest.raises(CheckpointError) as exc:
        fptq.load_quantized(folder)
    assert str(exc.value) == (f"{folder / 'fptq_config.json'}: layer {layer} has {shown}, but model.safetensors stores "
                              f"{layer}.{buffer} = {stored!r}; the file was edited or damaged")


@pytest.mark.parametrize("layout, layer, strategy", [
    ("layerwise", GATE, "'dynamic' (per-token dynamic int8 activations)"),
    ("weight-only", DOWN, "'none' (weight-only: floating-point activations)"),
])
def test_a_policy_act_scale_on_a_layer_without_one_is_refused(tmp_path, saved_folders, layout, layer, strategy):
    folder = _with_act_scale(tmp_path, saved_folders, layout, layer, 0.5)
    with pytest.raises(CheckpointError) as exc:
        fptq.load_quantized(folder)
    assert str(exc.value) == (f"{folder / 'fptq_config.json'}: layer {layer} has act_scale 0.5, but its strategy "
                              f"{strategy} keeps no activation scale in model.safetensors; the file was edited or damaged")


def test_cli_eval_of_an_edited_policy_act_scale_is_one_line(tmp_path, saved_folders, capsys):
    folder = _with_act_scale(tmp_path, saved_folders, "two-level", DOWN, 123.0)
    code, lines = _cli(capsys, "eval", folder, "--ppl", "bundled", "--ppl-windows", 1, "--ppl-seqlen", 32, "--quiet")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("fptq: error:")
    assert f"layer {DOWN} has act_scale 123.0, but model.safetensors stores {DOWN}.act_scale = " in lines[0]


# R5: a mistyped local folder fails at once; a hub id that cannot be fetched says both what was tried


@pytest.fixture
def no_hub(monkeypatch):
    """AutoConfig / AutoTokenizer that fail as they do offline, and record that they were asked."""
    import transformers

    asked = []

    def offline(name, *args, **kwargs):
        asked.append(str(name))
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", offline)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", offline)
    return asked


@pytest.mark.parametrize("load", [load_model, load_tokenizer])
def test_bare_name_that_is_no_folder_fails_without_trying_the_hub(tmp_path, monkeypatch, no_hub, load):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=r"^model folder smol-w4a8 does not exist \(a Hugging Face hub id has the form org/name\)$"):
        load("smol-w4a8")
    assert no_hub == []


def test_org_name_that_is_no_folder_says_no_folder_and_no_hub(tmp_path, monkeypatch, no_hub):
    from fptq.errors import HubUnavailableError
    from fptq.models import loading

    monkeypatch.setattr(loading, "hub_reachable", lambda: True)  # (a network, but the hub fails: transformers says so)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HubUnavailableError, match=r"no local folder someorg/smol-w4a8.*hub could not be reached") as exc:
        load_model("someorg/smol-w4a8")
    assert no_hub == ["someorg/smol-w4a8"] and "quantize" not in str(exc.value)


def _fake_hub_cache(tmp_path, monkeypatch, repo: str) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    (folder / "snapshots" / ("a" * 40)).mkdir(parents=True)
    (folder / "snapshots" / ("a" * 40) / "config.json").write_text("{}")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("a" * 40)


def test_without_a_network_a_hub_id_fails_at_once_or_loads_from_the_cache(tmp_path, monkeypatch):
    """No network (the hub's host does not resolve): a hub id that is not cached is an error before transformers
    is asked (huggingface_hub would retry for ~25 s); a cached one loads from the cache alone; a proxy is trusted."""
    import socket

    import transformers

    from fptq.errors import HubUnavailableError
    from fptq.models import loading

    asked = []

    def record(name, *args, **kwargs):
        asked.append((str(name), kwargs.get("local_files_only")))
        raise OSError("stop here")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", record)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", record)
    for variable in loading._PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def no_dns(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.chdir(tmp_path)
    _fake_hub_cache(tmp_path, monkeypatch, "org/cached")
    for load in (load_model, load_tokenizer):
        with pytest.raises(HubUnavailableError, match=r"no local folder org/absent, and it is not in the local Hugging Face cache"):
            load("org/absent")
    assert asked == []
    with pytest.raises(ModelError, match="stop here"):
        load_model("org/cached")
    assert asked == [("org/cached", True)]
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")  # (a proxy resolves the host itself)
    assert loading.hub_options("org/absent") == {}
    assert loading.hub_options(str(tmp_path)) == {}  # (a local folder never asks)


@pytest.mark.parametrize("reachable", [False, True])
def test_hub_datasets_load_in_offline_mode_without_a_network(monkeypatch, reachable):
    """c4 / wikitext2 without a network: datasets' offline mode for the call (the cache, or an error at once),
    restored afterwards; with a network, as datasets does by default."""
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    from fptq.data.calib import load_hub_texts
    from fptq.models import loading

    seen = []

    def fake_load(**kwargs):
        seen.append((datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE))
        return [{"text": "cached text"}]

    monkeypatch.setattr(loading, "hub_reachable", lambda: reachable)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    before = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    assert load_hub_texts("c4") == ["cached text"]
    assert seen == [before if reachable else (True, True)]
    assert (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE) == before


@pytest.mark.parametrize("command", ["eval", "quantize"])
def test_cli_bare_name_that_is_no_folder_is_one_line(tmp_path, monkeypatch, no_hub, capsys, command):
    monkeypatch.chdir(tmp_path)
    extra = ["--out", tmp_path / "q", *QUICK] if command == "quantize" else ["--ppl-windows", 1]
    code, lines = _cli(capsys, command, "smol-w4a8", *extra)
    assert code == 2 and lines == [
        "fptq: error: model folder smol-w4a8 does not exist (a Hugging Face hub id has the form org/name)"
    ]
    assert no_hub == []


def test_bundled_aliases_and_local_bare_names_still_resolve(tmp_path, monkeypatch, bundled_model_dir, tokenizer):
    for alias in ("bundled", "default", None):
        assert resolve_model(alias) == str(bundled_model_dir)
    _save_fp(tmp_path / "mymodel", tokenizer)
    monkeypatch.chdir(tmp_path)
    assert resolve_model("mymodel") == "mymodel"
    load_model("mymodel")


def test_load_quantized_of_a_missing_folder_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="^model folder smol-w4a8 does not exist$"):
        fptq.load_quantized("smol-w4a8")


@pytest.mark.parametrize("command", ["eval", "quantize"])
def test_tokenizer_of_another_model_is_one_line(tmp_path, tokenizer, capsys, command):
    """The bundled tokenizer (49152 ids) with a model of 256 embedding rows: an error naming both, not an IndexError
    in the embedding."""
    _save_fp(tmp_path / "m", tokenizer, vocab_size=256)
    text = tmp_path / "calib.txt"
    text.write_text("The quick brown fox jumps over the lazy dog near the river bank. " * 40)
    capsys.readouterr()  # (save_pretrained's progress bar)
    if command == "eval":
        code, lines = _cli(capsys, "eval", tmp_path / "m", "--ppl-windows", 1, "--ppl-seqlen", 64, "--quiet")
    else:
        code, lines = _cli(capsys, "quantize", tmp_path / "m", "--out", tmp_path / "q", "--group-size", 32,
                           "--calib", text, "--calib-samples", 2, "--calib-seqlen", 32, "--quiet", "--device", "cpu")
        assert not (tmp_path / "q").exists()
    assert code == 2 and len(lines) == 1 and "but the model's embedding has 256 rows" in lines[0], lines

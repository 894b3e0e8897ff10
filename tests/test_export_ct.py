"""The compressed-tensors export, read back by compressed-tensors itself and by transformers: the same weights and
the same outputs as the fptq model, for every scheme fptq writes."""

import json
import shutil

import pytest
import torch

import fptq
from fptq.cli import main
from fptq.errors import CheckpointError, ModelError, OutputExistsError
from fptq.export.compressed_tensors import export_compressed_tensors, quantization_config
from fptq.nn.fp8_linear import Fp8Linear
from fptq.nn.quant_linear import QuantLinear

from .conftest import make_tiny

CALIB = fptq.CalibConfig(source="random", samples=8, seqlen=32, batch_size=4)
IDS = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(1))


def _quantized(arch="llama", **kw):
    if kw.get("a_bits") == 16:
        kw.setdefault("method", "rtn")  # (what fptq runs weight-only, without its warning)
    model = make_tiny(arch)
    config = kw if kw.get("method") == "fp8" else {"group_size": 32, **kw}
    return fptq.quantize(model, None, fptq.QuantConfig(**config), CALIB, progress=False)


def _logits(model):
    with torch.no_grad():
        return model(IDS).logits.float()


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def _load_with_transformers(folder):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


# (name, settings, the largest relative difference of the logits from fptq's own)
FLOAT_ACTIVATIONS = [
    ("w4a16", dict(a_bits=16), 1e-6),
    ("w4a16 per channel", dict(a_bits=16, group_size=-1), 1e-6),
    ("w8a16", dict(a_bits=16, w_bits=8), 1e-6),
    ("w4a16 qwen2 biases", dict(arch="qwen2", a_bits=16), 1e-6),
    ("fp8", dict(method="fp8"), 1e-5),
    ("w4a8 fp8 per-token", dict(a_format="fp8", policy="all-dynamic"), 1e-5),
]


@pytest.mark.parametrize("name, settings, tol", FLOAT_ACTIVATIONS, ids=[c[0] for c in FLOAT_ACTIVATIONS])
def test_transformers_runs_the_export_as_fptq_does(tmp_path, name, settings, tol):
    """Weight-only and float8 schemes: compressed-tensors' forward is fptq's, up to float rounding."""
    model = _quantized(**settings)
    export_compressed_tensors(model, tmp_path / "ct")
    assert _rel(_logits(_load_with_transformers(tmp_path / "ct")), _logits(model)) < tol


@pytest.mark.parametrize("settings", [dict(), dict(scale_format="fp16"), dict(policy="all-dynamic"),
                                      dict(policy="all-static")], ids=["layerwise", "fp16-scales", "dynamic", "static"])
def test_transformers_runs_int8_activations_close_to_fptq(tmp_path, settings):
    """int8 activations: compressed-tensors' own fake quantization puts per-token scales at absmax / 127.5 and clamps
    to [-128, 127] (fptq, like the GPU kernels: absmax / 127, ±127), so outputs differ by about one code step —
    far less than the quantization's own error."""
    fp = _logits(make_tiny("llama"))
    model = _quantized(**settings)
    export_compressed_tensors(model, tmp_path / "ct")
    ours = _logits(model)
    assert _rel(_logits(_load_with_transformers(tmp_path / "ct")), ours) < 0.2 * _rel(ours, fp)


@pytest.mark.parametrize("bits, symmetric", [(4, True), (4, False), (8, True), (8, False)])
def test_packed_tensors_decompress_to_fptq_weights(tmp_path, bits, symmetric):
    """compressed-tensors' own decompressor, on the exported tensors, gives fptq's dequantized weights exactly
    (asymmetric zero points included, which transformers 5.24 cannot load: llm-compressor issue #1618)."""
    from compressed_tensors.compressors import PackedQuantizationCompressor
    from compressed_tensors.quantization import QuantizationScheme
    from safetensors.torch import load_file

    model = _quantized(a_bits=16, w_bits=bits, symmetric=symmetric, group_size=32 if bits == 4 else -1)
    folder = export_compressed_tensors(model, tmp_path / "ct")
    tensors = load_file(folder / "model.safetensors")
    groups = json.loads((folder / "config.json").read_text())["quantization_config"]["config_groups"]
    (group,) = groups.values()
    scheme = QuantizationScheme(targets=["Linear"], weights=group["weights"])
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, QuantLinear)]
    assert len(layers) == 14
    for name, layer in layers:
        local = {k.removeprefix(name + "."): v for k, v in tensors.items() if k.startswith(name + ".")}
        assert local["weight_packed"].dtype == torch.int32 and ("weight_zero_point" in local) == (not symmetric)
        weight = PackedQuantizationCompressor.decompress(local, scheme)["weight"]
        assert torch.equal(weight, layer.dequantized_weight(torch.float32).to(weight.dtype)), name


def test_words_are_little_endian_on_any_machine():
    from fptq.export.compressed_tensors import _le_int32, _le_int32_arith

    data = torch.randint(0, 256, (3, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(_le_int32_arith(data), _le_int32(data))
    assert _le_int32_arith(torch.tensor([[0x21, 0x43, 0x65, 0x87]], dtype=torch.uint8)).item() == 0x87654321 - 2**32


def test_config_groups_follow_the_layers_schemes(tmp_path):
    """One scheme: every Linear but the unquantized lm_head; FPTQ's layer-wise mix: one group per scheme naming its
    layers exactly, each layer in exactly one."""
    config, rows = quantization_config(_quantized(a_bits=16))
    assert [g["targets"] for g in config["config_groups"].values()] == [["Linear"]] and config["ignore"] == ["lm_head"]
    assert config["format"] == "pack-quantized" and rows[0]["vllm"] == "maybe"  # (64-wide layers: off Marlin's 128)
    assert "e.g. N x K = 64 x 64" in rows[0]["vllm_note"] and rows[0]["transformers"]
    model = _quantized(policy="layerwise", v0=0.4, v1=7.0)  # (small thresholds: static, equalized and dynamic layers)
    config, rows = quantization_config(model)
    named = [t for g in config["config_groups"].values() for t in g["targets"]]
    layers = {n: m for n, m in model.named_modules() if isinstance(m, QuantLinear)}
    assert sorted(named) == sorted(layers) and config["ignore"] == []
    for group in config["config_groups"].values():
        modes = {layers[n].act_mode for n in group["targets"]}
        assert len(modes) == 1
        a = group["input_activations"]
        assert (a["strategy"], a["dynamic"]) == (("tensor", False) if modes == {"static"} else ("token", True))
    assert {r["name"] for r in rows} == {"W4A8 g32, int8 static", "W4A8 g32, int8 per-token"}
    assert {r["name"]: r["vllm"] for r in rows} == {"W4A8 g32, int8 static": "no", "W4A8 g32, int8 per-token": "maybe"}
    (_, fp8), = quantization_config(_quantized(method="fp8"))[0]["config_groups"].items()
    assert fp8["format"] == "float-quantized" and fp8["weights"]["type"] == "float"


def test_static_scales_and_shapes_are_exported_unchanged(tmp_path):
    from safetensors.torch import load_file

    model = _quantized(policy="all-static")
    tensors = load_file(export_compressed_tensors(model, tmp_path / "ct") / "model.safetensors")
    layer = model.model.layers[1].mlp.down_proj
    key = "model.layers.1.mlp.down_proj"
    assert tensors[f"{key}.input_scale"].dtype == torch.float32
    assert tensors[f"{key}.input_scale"].item() == layer.act_scale.item()
    assert torch.equal(tensors[f"{key}.weight_scale"], layer.scales)
    assert tensors[f"{key}.weight_shape"].tolist() == [64, 128]
    assert not any(k.endswith(("qweight", "scales", "channel_scales", "act_scale")) for k in tensors)
    fp8 = _quantized(method="fp8")
    tensors = load_file(export_compressed_tensors(fp8, tmp_path / "fp8") / "model.safetensors")
    layer = fp8.model.layers[0].self_attn.q_proj
    assert isinstance(layer, Fp8Linear) and torch.equal(tensors["model.layers.0.self_attn.q_proj.weight"], layer.weight)


@pytest.mark.parametrize("settings, verdict", [
    (dict(method="rtn", a_bits=16, group_size=128), "yes"), (dict(method="rtn", a_bits=16, group_size=16), "maybe"),
    (dict(method="rtn", a_bits=16, w_bits=8, symmetric=False, group_size=-1), "maybe"), (dict(method="fp8"), "yes"),
    (dict(a_format="fp8", policy="all-dynamic", group_size=128), "yes"),
    (dict(a_format="fp8", policy="all-dynamic", group_size=64), "no"),
    (dict(policy="all-static"), "no"), (dict(policy="all-dynamic"), "maybe")])
def test_what_vllm_does_with_each_scheme(settings, verdict):
    """(What vLLM's compressed-tensors loader accepts, read in its sources: `vllm_support`.)"""
    model = make_tiny("llama", hidden_size=128, intermediate_size=256, num_key_value_heads=4)  # (N, K multiples of 128)
    config = settings if settings.get("method") == "fp8" else {"group_size": 32, **settings}
    fptq.quantize(model, None, fptq.QuantConfig(**config), CALIB, progress=False)
    (row,) = quantization_config(model)[1]
    assert row["vllm"] == verdict, row


def test_partial_words_are_padded_as_compressed_tensors_pads_them(tmp_path):
    """An input width that is not a whole number of int32 words (36 4-bit codes: 4.5 words) is padded with zero
    codes; compressed-tensors' decompressor gives fptq's weights back."""
    from compressed_tensors.compressors import PackedQuantizationCompressor
    from compressed_tensors.quantization import QuantizationScheme

    from fptq.export.compressed_tensors import _layer_tensors, scheme_of

    torch.manual_seed(0)
    for symmetric in (True, False):
        layer = QuantLinear.from_linear(torch.nn.Linear(36, 12), group_size=12, symmetric=symmetric, act_mode="none")
        local = {k.removeprefix("l."): v for k, v in _layer_tensors(layer, "l", {}).items()}
        assert local["weight_packed"].shape == (12, 5)
        scheme = QuantizationScheme(targets=["Linear"], weights=scheme_of(layer)["weights"])
        weight = PackedQuantizationCompressor.decompress(local, scheme)["weight"]
        assert torch.equal(weight, layer.dequantized_weight(torch.float32).to(weight.dtype))


def test_export_refusals(tmp_path, tiny_llama):
    with pytest.raises(ModelError, match="not quantized by fptq"):
        export_compressed_tensors(tiny_llama, tmp_path / "x")
    model = _quantized(a_bits=16)
    export_compressed_tensors(model, tmp_path / "ct")
    with pytest.raises(OutputExistsError):
        export_compressed_tensors(model, tmp_path / "ct")
    export_compressed_tensors(model, tmp_path / "ct", overwrite=True)  # (an earlier export may be replaced)
    fptq.save_quantized(model, tmp_path / "q")
    with pytest.raises(OutputExistsError, match="it is an fptq checkpoint"):  # (--overwrite: an earlier export only)
        export_compressed_tensors(model, tmp_path / "q", overwrite=True)
    with pytest.raises(OutputExistsError, match="it is an fptq export"):
        fptq.save_quantized(model, tmp_path / "ct", overwrite=True)
    with pytest.raises(OutputExistsError, match="inside the source model"):
        export_compressed_tensors(model, tmp_path / "q" / "ct", protect=(tmp_path / "q",))
    with pytest.raises(CheckpointError, match="is an fptq export"):
        fptq.load_quantized(tmp_path / "ct")
    fptq.fuse_shared_inputs(model)
    with pytest.raises(ModelError, match="fused"):
        export_compressed_tensors(model, tmp_path / "fused")
    assert not (tmp_path / "x").exists() and not (tmp_path / "fused").exists() and (tmp_path / "q" / "fptq_config.json").is_file()


def test_export_is_readable_by_others(tmp_path):
    """(A temporary folder is private; the export gets the permissions of the user's umask, for a server running as
    another user.)"""
    import os

    umask = os.umask(0o022)
    try:
        folder = export_compressed_tensors(_quantized(a_bits=16), tmp_path / "ct")
    finally:
        os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert (folder / "model.safetensors").stat().st_mode & 0o777 == 0o644


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_size_is_the_folder_in_mib(tmp_path, capsys):
    model = make_tiny("llama", vocab_size=49152)  # (6 MiB of embeddings: MiB and MB differ in the first decimal)
    fptq.quantize(model, None, fptq.QuantConfig(method="rtn", group_size=32, a_bits=16), CALIB, progress=False)
    fptq.save_quantized(model, tmp_path / "q")
    code, out, _ = _run(capsys, "export", tmp_path / "q", "--out", tmp_path / "ct", "--json")
    result = json.loads(out)
    size = sum(f.stat().st_size for f in (tmp_path / "ct").iterdir())  # every file, as compare's size is in MiB
    assert code == 0 and "size_mb" not in result and result["size_mib"] == round(size / 2**20, 1)
    code, out, _ = _run(capsys, "export", tmp_path / "q", "--out", tmp_path / "ct", "--overwrite")
    assert code == 0 and f"(compressed-tensors, {result['size_mib']} MiB)" in out


def test_cli_export(tmp_path, capsys):
    model = _quantized()
    fptq.save_quantized(model, tmp_path / "q")
    code, out, err = _run(capsys, "export", tmp_path / "q", "--out", tmp_path / "ct", "--json")
    result = json.loads(out)
    assert code == 0 and any("no tokenizer files" in note for note in result["notes"])  # (saved without one)
    assert any("vLLM will not load" in note for note in result["notes"]) and result["source"] == str(tmp_path / "q")
    assert result["format"] == "compressed-tensors" and sum(r["layers"] for r in result["schemes"]) == 14
    record = json.loads((tmp_path / "ct" / "fptq_export.json").read_text())
    assert record["quantization"] == model.fptq_info["quantization"]
    code, out, _ = _run(capsys, "export", tmp_path / "q", "--out", tmp_path / "ct", "--overwrite")
    assert code == 0 and "| scheme" in out and "note: vLLM will not load this export" in out
    from fptq.models.loading import load_tokenizer

    load_tokenizer("bundled").save_pretrained(tmp_path / "ct")  # (a tokenizer of another model: vocabulary 49152)
    code, _, err = _run(capsys, "eval", tmp_path / "ct", "--ppl", "none", "--tasks", "piqa", "--limit", 1, "--quiet")
    assert code == 2 and "fptq: error: task piqa's text has token id" in err and "belongs to another model" in err
    assert "Traceback" not in err and "Compressing model" not in err  # (compressed-tensors' bars: off under --quiet)
    edited = tmp_path / "edited"  # an export whose config.json no longer names its layers
    shutil.copytree(tmp_path / "ct", edited)
    config = json.loads((edited / "config.json").read_text())
    for group in config["quantization_config"]["config_groups"].values():
        group["targets"] = ["NoSuchLayer"]
    (edited / "config.json").write_text(json.dumps(config))
    code, _, err = _run(capsys, "eval", edited, "--ppl", "none", "--tasks", "piqa", "--limit", 1, "--quiet")
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "quantization_config does not cover all of its quantized tensors" in err
    big = make_tiny("llama", vocab_size=49152)
    fptq.quantize(big, None, fptq.QuantConfig(method="rtn", group_size=32, a_bits=16), CALIB, progress=False)
    export_compressed_tensors(big, tmp_path / "big", tokenizer=load_tokenizer("bundled"))
    code, out, err = _run(capsys, "eval", tmp_path / "big", "--ppl", "none", "--tasks", "piqa", "--limit", 2, "--quiet",
                          "--json")
    assert code == 0 and json.loads(out)["quantization"] == big.fptq_info["quantization"]  # (the source's settings)
    asym = _quantized(a_bits=16, symmetric=False)
    fptq.save_quantized(asym, tmp_path / "qa")
    assert _run(capsys, "export", tmp_path / "qa", "--out", tmp_path / "ca", "--quiet")[0] == 2  # (no --quiet)
    code, out, _ = _run(capsys, "export", tmp_path / "qa", "--out", tmp_path / "ca")
    assert code == 0 and "note: transformers cannot load this export" in out and "transformers loads it" not in out
    # (weight-only already: the note names the table, not --a-bits 16 again)
    assert "the table says which layers or settings are off" in out and "quantize with" not in out
    for argv, pattern in [
        (("eval", tmp_path / "ca", "--quiet"), "transformers cannot load"),
        (("compare", tmp_path / "ct", "--methods", "fp16", "--out", tmp_path / "o", "--quiet"), "already quantized"),
        (("export", "bundled", "--out", tmp_path / "o"), "takes a folder written by fptq quantize"),
        (("export", tmp_path / "q", "--out", ""), "--out is empty"),
        (("eval", tmp_path / "ct", "--tasks", ",", "--quiet"), "names no task"),
        (("export", tmp_path / "q", "--out", tmp_path / "q" / "sub"), "inside the source model"),
        (("export", tmp_path / "nope", "--out", tmp_path / "o"), "does not exist"),
        (("export", tmp_path / "ct", "--out", tmp_path / "o"), "not an fptq checkpoint"),
        (("export", tmp_path / "q", "--out", tmp_path / "ct"), "already exists"),
        (("quantize", tmp_path / "ct", "--out", tmp_path / "o", "--quiet"), "already quantized"),
    ]:
        code, _, err = _run(capsys, *argv)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("fptq: error:") and pattern in lines[0], err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_bundled_model_export_runs_in_transformers_as_in_fptq(tmp_path):
    """The real model (tied embeddings, 576-wide layers): its W4A16 export, loaded by transformers, gives fptq's
    perplexity on the bundled text."""
    from fptq.eval.perplexity import perplexity, perplexity_tokens

    model, tok = fptq.load_model("bundled")
    fptq.quantize(model, tok, fptq.QuantConfig(method="rtn", group_size=64, a_bits=16), fptq.CalibConfig(samples=2, seqlen=128),
                  progress=False)
    folder = export_compressed_tensors(model, tmp_path / "ct", tokenizer=tok)
    tokens = perplexity_tokens(tok)
    ours = perplexity(model, tokens, seqlen=256, max_windows=2, progress=False)["ppl"]
    theirs = perplexity(_load_with_transformers(folder), tokens, seqlen=256, max_windows=2, progress=False)["ppl"]
    assert theirs == pytest.approx(ours, rel=1e-5)

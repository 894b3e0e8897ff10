"""The command line: the happy path on a tiny model, and every bad input as one line + exit 2."""

import json
import subprocess
import sys

import pytest
import torch

from fptq.cli import main

from .conftest import make_tiny


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny random Llama saved as a Hugging Face folder, with the bundled tokenizer."""
    from fptq.models.loading import load_tokenizer

    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    model = make_tiny("llama", vocab_size=49152)
    model.save_pretrained(folder)
    load_tokenizer("bundled").save_pretrained(folder)
    return folder


QUICK = ["--calib", "random", "--calib-samples", "4", "--calib-seqlen", "32", "--quiet", "--device", "cpu"]


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_line_error(code, err, pattern):
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fptq: error:"), err
    assert pattern in lines[0]
    assert "Traceback" not in err


def test_quantize_then_eval(tmp_path, tiny_folder, capsys):
    out = tmp_path / "q"
    code, stdout, _ = _run(capsys, "quantize", tiny_folder, "--out", out, "--group-size", 32, *QUICK, "--json")
    assert code == 0
    result = json.loads(stdout)
    assert len(result["policy"]) == 14 and (out / "policy.md").is_file()
    code, stdout, _ = _run(capsys, "eval", out, "--ppl-windows", 1, "--ppl-seqlen", 64, "--quiet", "--json")
    assert code == 0
    ppl = json.loads(stdout)["perplexity"]
    assert ppl["data"] == "bundled" and ppl["tokens"] == 63 and ppl["ppl"] > 1


def test_quantize_prints_policy_table(tmp_path, tiny_folder, capsys):
    code, stdout, _ = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK)
    assert code == 0
    assert "model.layers.1.mlp.down_proj" in stdout and "| layer" in stdout and "static" in stdout


def test_missing_model(tmp_path, capsys):
    code, _, err = _run(capsys, "quantize", tmp_path / "nope", "--out", tmp_path / "q", *QUICK)
    _assert_one_line_error(code, err, "does not exist")
    assert not (tmp_path / "q").exists()


def test_unsupported_architecture(tmp_path, capsys):
    from transformers import GPT2Config

    folder = tmp_path / "gpt2"
    GPT2Config(n_layer=1, n_embd=32, n_head=2).save_pretrained(folder)
    code, _, err = _run(capsys, "quantize", folder, "--out", tmp_path / "q", *QUICK)
    _assert_one_line_error(code, err, "unsupported architecture 'gpt2'")


def test_group_size_that_does_not_divide(tmp_path, tiny_folder, capsys):
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 48, *QUICK)
    _assert_one_line_error(code, err, "group size 48 does not divide the input size 64")
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("content", ["", "too short"])
def test_empty_or_short_calibration_file(tmp_path, tiny_folder, capsys, content):
    calib = tmp_path / "calib.txt"
    calib.write_text(content)
    argv = ["quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, "--calib", calib, "--quiet"]
    code, _, err = _run(capsys, *argv)
    _assert_one_line_error(code, err, "contains no text" if not content else "shorter than one sequence")
    assert not (tmp_path / "q").exists()


def test_non_finite_activations(tmp_path, capsys):
    from fptq.models.loading import load_tokenizer

    folder = tmp_path / "broken"
    model = make_tiny("llama", vocab_size=49152)
    with torch.no_grad():
        model.model.layers[1].post_attention_layernorm.weight[5] = float("nan")
    model.save_pretrained(folder)
    load_tokenizer("bundled").save_pretrained(folder)
    code, _, err = _run(capsys, "quantize", folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK)
    _assert_one_line_error(code, err, "non-finite activations")
    assert not (tmp_path / "q").exists()


def test_existing_output_folder(tmp_path, tiny_folder, capsys):
    (tmp_path / "q").mkdir()
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK)
    _assert_one_line_error(code, err, "already exists; pass --overwrite")
    code, _, _ = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK, "--overwrite")
    assert code == 0


def test_unknown_method(tmp_path, tiny_folder, capsys):
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--method", "magic", *QUICK)
    _assert_one_line_error(code, err, "unknown method 'magic'")


@pytest.mark.parametrize("damage", ["truncate", "foreign"])
def test_eval_rejects_damaged_checkpoints(tmp_path, tiny_folder, capsys, damage):
    out = tmp_path / "q"
    assert _run(capsys, "quantize", tiny_folder, "--out", out, "--group-size", 32, *QUICK)[0] == 0
    if damage == "truncate":
        data = (out / "model.safetensors").read_bytes()
        (out / "model.safetensors").write_bytes(data[:1000])
    else:
        (out / "fptq_config.json").write_text('{"quantization_config": {"quant_method": "gptq"}}')
    code, _, err = _run(capsys, "eval", out, "--ppl-windows", 1, "--ppl-seqlen", 64, "--quiet")
    _assert_one_line_error(code, err, "truncated or corrupted" if damage == "truncate" else "not written by fptq")


def test_real_entry_point_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fptq.cli", "eval", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("fptq: error:") and "Traceback" not in proc.stderr

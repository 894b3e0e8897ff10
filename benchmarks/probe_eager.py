"""Host time of one eager decode linear, W4A8 `QuantLinear` variants against fp16 `nn.Linear`, interleaved.

Eager decode is host bound, and the device machine's CPU speed drifts ~2x within a run (benchmarks/GPU_NOTES.md,
runs 128 and 142), so whole-model timings of one variant after another are not comparable. Here every round times
each variant in turn (host µs per call over `--calls` back-to-back unsynchronized calls, `probe_host.host_us`) at the
LLaMA-2-7B shapes (q/k/v and gate/up fused, as `fuse_shared_inputs` runs them), two-level groups of 128, dynamic
activations; the table gives each variant's median over the rounds and its cost against fp16 (the median over the rounds of
the within-round ratio); the JSON keeps every round.
Variants: `fp16` (cuBLAS through `nn.Linear`), `w4a8` (the defaults: launch plans, direct C launches), `nodirect`
(`launch.DIRECT` off), `noplans` (`triton_w4a8.LAUNCH_PLANS` off: every call decides its launches), `attrs`
(`QuantLinear.forward` reading its tensors through `nn.Module.__getattr__`, as before round 17), `prologue` (with
`--model` only: the W4A8 model with its RMSNorms and SiLU * up moved into the linears, `fptq.fuse_prologues`), `norms`
(with `--model` only: the RMSNorms alone moved, as in round 22's first change); `--variants` picks.

With `--model L`: the same for whole eager decode steps of an L-layer LLaMA-2-7B-shaped model (random weights), fp16
and W4A8 (RTN, two-level groups of 128, q/k/v and gate/up fused) in one process: one new token on a 64-token dynamic
cache (what an uncompiled `generate` runs), the cache cropped back after each step; ms per step from the first
enqueue to the last step's end over `--calls` steps (host bound: the host's pace), rows = batch sizes.

    PYTHONPATH=src python3 benchmarks/probe_eager.py [--rows 1,16] [--rounds 15] [--model L] [--json F]
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from probe_host import SHAPES, host_us, own_time_profile  # noqa: E402

from fptq.kernels import launch  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402
from fptq.nn.quant_linear import QuantLinear  # noqa: E402

EAGER_FORWARD = QuantLinear.forward


def attribute_forward(self, x):
    """`QuantLinear.forward` as it was before round 17: each tensor read through `nn.Module.__getattr__`."""
    return self._linear(x, self.qweight, self.scales, self.zeros, self.act_scale, self.channel_scales, self.bias,
                        self.__dict__.get("_plans"))


VARIANTS = {"fp16": {}, "w4a8": {}, "nodirect": {"DIRECT": False}, "noplans": {"LAUNCH_PLANS": False},
            "attrs": {"forward": attribute_forward}, "prologue": {}, "norms": {}}
MODEL_ONLY = ("prologue", "norms")  # (variants of whole models: a model of their own)


def set_variant(name: str) -> None:
    settings = VARIANTS.get(name, {})  # ("w4a8", the defaults, even where not timed)
    launch.DIRECT = settings.get("DIRECT", True)
    tw.LAUNCH_PLANS = settings.get("LAUNCH_PLANS", True)
    QuantLinear.forward = settings.get("forward", EAGER_FORWARD)


def build_models(layers: int):
    """fp16 and W4A8 LLaMA-2-7B-shaped models of `layers` layers with the same random weights."""
    from bench_e2e import quantize_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from fptq.nn import prologue as prologue_mod
    from fptq.nn.prologue import fuse_prologues
    from fptq.nn.shared_input import fuse_shared_inputs

    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)
    with torch.device("cuda"):
        fp16 = LlamaForCausalLM(cfg).half().eval()
    w4a8 = copy.deepcopy(fp16)
    quantize_model(w4a8, "dynamic", None, 128, "two-level")
    fuse_shared_inputs(w4a8)
    prologue = copy.deepcopy(w4a8)
    fuse_prologues(prologue)
    norms, gated = copy.deepcopy(w4a8), prologue_mod._gated
    prologue_mod._gated = lambda mlp: None  # (the MLPs stay: the norms alone moved)
    try:
        fuse_prologues(norms)
    finally:
        prologue_mod._gated = gated
    return {"fp16": fp16, "w4a8": w4a8, "prologue": prologue, "norms": norms}


def model_steps(models: dict, batch: int, calls: int) -> dict:
    """A closure per variant: `calls` eager decode steps on that variant's model (host ms per step via host_us)."""
    from transformers import DynamicCache

    steps = {}
    for name in VARIANTS:
        model = models.get(name, models["w4a8"])
        cache = DynamicCache()
        prompt = torch.randint(0, 32000, (batch, 64), device="cuda")
        model(input_ids=prompt, past_key_values=cache, use_cache=True)
        token = prompt[:, -1:]

        def step(model=model, cache=cache, token=token):
            model(input_ids=token, past_key_values=cache, use_cache=True)
            cache.crop(-1)  # (the new token removed: every step at the same length)

        steps[name] = step
    return steps


def summarize(per: dict, unit: str) -> dict:
    """Each variant's median and best over the rounds (`unit`), its speed against fp16 (the median over the rounds of fp16's
    time / the variant's in the same round: drift-robust) and every round's time."""
    return {unit: {name: statistics.median(v) for name, v in per.items()}, "best": {name: min(v) for name, v in per.items()},
            "speed_x_fp16": {name: statistics.median(b / a for a, b in zip(v, per["fp16"])) for name, v in per.items()},
            "rounds": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1,16")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--model", type=int, default=0, help="decoder layers of whole-model eager steps (0: single linears)")
    ap.add_argument("--prefill", default="", help="with --model: also eager prefills of these prompt lengths (a "
                    "batch-1 forward without cache, logits of the last token: a first token's work), e.g. 128,512")
    ap.add_argument("--generate", type=int, default=0, help="with --model: also `model.generate` (batch 1, a 64-token "
                    "prompt, this many new tokens, greedy, dynamic cache: what a user runs uncompiled), ms per new "
                    "token")
    ap.add_argument("--profile", default="", help="single linears: after the rounds, a cProfile of --calls W4A8 calls "
                    "of the o projection (4096 x 4096) at each of these M, e.g. 16,512 (functions by own time)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, fp16 first")
    ap.add_argument("--json")
    args = ap.parse_args()
    for name in [v for v in VARIANTS if v not in args.variants.split(",") or (v in MODEL_ONLY and not args.model)]:
        del VARIANTS[name]
    torch.manual_seed(0)
    results = {}
    with torch.no_grad():
        if args.model:
            models = build_models(args.model)
            for batch in (int(r) for r in args.rows.split(",")):
                steps = model_steps(models, batch, args.calls)
                per = {name: [] for name in VARIANTS}
                for _ in range(args.rounds):
                    for name in VARIANTS:
                        set_variant(name)
                        per[name].append(host_us(steps[name], args.calls)[1] / 1e3)  # (first enqueue to last end)
                set_variant("w4a8")
                results[f"{args.model}-layer step b{batch}"] = summary = summarize(per, "ms_per_step")
                print(f"{args.model}-layer eager step b{batch}, ms (speed × fp16): " + "  ".join(
                    f"{name} {summary['ms_per_step'][name]:6.2f} (×{summary['speed_x_fp16'][name]:.2f})"
                    for name in VARIANTS), flush=True)
            for tokens in (int(t) for t in args.prefill.split(",") if t):
                prompt = torch.randint(0, 32000, (1, tokens), device="cuda")
                per = {name: [] for name in VARIANTS}
                for _ in range(args.rounds):
                    for name in VARIANTS:
                        set_variant(name)
                        model = models.get(name, models["w4a8"])
                        per[name].append(host_us(lambda model=model, prompt=prompt: model(input_ids=prompt, use_cache=False,
                                                                           logits_to_keep=1), args.calls)[1] / 1e3)
                set_variant("w4a8")
                results[f"{args.model}-layer prefill {tokens}"] = summary = summarize(per, "ms_per_call")
                print(f"{args.model}-layer eager prefill {tokens} tokens, ms (speed × fp16): " + "  ".join(
                    f"{name} {summary['ms_per_call'][name]:6.2f} (×{summary['speed_x_fp16'][name]:.2f})"
                    for name in VARIANTS), flush=True)
            if args.generate:
                prompt = torch.randint(0, 32000, (1, 64), device="cuda")

                def generate_ms(model):  # (ms per new token, the prompt's prefill included: one step's worth)
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    model.generate(prompt, do_sample=False, max_new_tokens=args.generate,
                                   min_new_tokens=args.generate, pad_token_id=0)
                    torch.cuda.synchronize()
                    return (time.perf_counter() - t0) * 1e3 / args.generate

                per = {name: [] for name in VARIANTS}
                for r in range(args.rounds + 1):  # (round 0 warms up: plans made, kernels compiled)
                    for name in VARIANTS:
                        set_variant(name)
                        ms = generate_ms(models.get(name, models["w4a8"]))
                        if r:
                            per[name].append(ms)
                set_variant("w4a8")
                results[f"{args.model}-layer generate {args.generate}"] = summary = summarize(per, "ms_per_token")
                print(f"{args.model}-layer eager generate ({args.generate} new tokens, dynamic cache), ms per token "
                      "(speed × fp16): " + "  ".join(f"{name} {summary['ms_per_token'][name]:6.2f} "
                                                    f"(×{summary['speed_x_fp16'][name]:.2f})" for name in VARIANTS),
                      flush=True)
        for shape, (n, k) in SHAPES.items() if not args.model else ():
            dense = torch.nn.Linear(k, n, bias=False, device="cuda", dtype=torch.float16)
            quant = QuantLinear(k, n, group_size=128, scale_format="two-level", act_mode="dynamic",
                                dtype=torch.float16, device="cuda").eval()
            for m in (int(r) for r in args.rows.split(",")):
                x = torch.randn(m, 1, k, device="cuda", dtype=torch.float16)
                per = {name: [] for name in VARIANTS}
                for _ in range(args.rounds):
                    for name in VARIANTS:
                        set_variant(name)
                        layer = dense if name == "fp16" else quant
                        per[name].append(host_us(lambda layer=layer, x=x: layer(x), args.calls)[0])
                set_variant("w4a8")
                results[f"{shape} M={m}"] = summary = summarize(per, "host_us")
                print(f"{shape:>8} M={m:<3} µs (× fp16's) " + "  ".join(
                    f"{name} {summary['host_us'][name]:6.1f} (×{1 / summary['speed_x_fp16'][name]:.2f})"
                    for name in VARIANTS), flush=True)
            for m in (int(r) for r in args.profile.split(",") if r and shape == "o"):
                x = torch.randn(m, 1, k, device="cuda", dtype=torch.float16)
                call = functools.partial(quant, x)
                host_us(call, args.calls)  # (plans made, kernels compiled)
                print(f"cProfile, {args.calls} W4A8 calls of the o projection at M = {m}:")
                print(own_time_profile(call, args.calls, 25))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

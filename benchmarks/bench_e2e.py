"""End-to-end latency of a LLaMA-2-7B-shaped model (random weights) in fp16 and W4A8 (needs CUDA).

The model is built from its config directly on the GPU (nothing is downloaded). Measured, per
variant (fp16, then every decoder linear replaced by `QuantLinear` with W4A8 dynamic, W4A8
static and W4A16 activations; a `+fused` variant runs q/k/v and gate/up as one GEMM each,
`fptq.fuse_shared_inputs`, and `fp16+fused` is the same for the fp16 model, on a copy; `+fused+prologue` also moves
the RMSNorms into the linears that read them, `fptq.fuse_prologues`, for the rest of the run):

- weight memory (all parameters and buffers; and the decoder linears alone),
- prefill latency: batch 1, 2048 tokens, one forward (`logits_to_keep=1`, as generation does),
- decode latency per token at batch 1 and 16: one decode step on a static KV cache of
  `--cache-len` positions, captured in a CUDA graph and replayed (eager as a fallback); `--decode-contexts`
  adds other context lengths / cache sizes (HF's static cache with SDPA attends over every position of the
  cache, so the KV bytes read per step grow with the cache size, not the context).

Timings are medians of CUDA-event timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn


def call_ms(fn, warmup=2, reps=7, host=None):
    """Milliseconds of each of `reps` calls of `fn` (CUDA events) after `warmup` calls; `host`: a list that gets
    each call's host time (until `fn` returns, unsynchronized): near the GPU time, the launches are the bound."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        t0 = time.perf_counter()
        fn()
        if host is not None:
            host.append((time.perf_counter() - t0) * 1e3)
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return times


def median_ms(fn, warmup=2, reps=7):
    return statistics.median(call_ms(fn, warmup, reps))


class GpuSampler:
    """`nvidia-smi` sampling SM clock, power and throttle reasons every 100 ms into `path` while in use (the
    compiled W4A8 prefill is bimodal, runs 124-127: is the slow mode a capped clock?); nothing if nvidia-smi is
    missing."""

    QUERY = "timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active"

    def __init__(self, path):
        self.path, self.proc = path, None

    def __enter__(self):
        import shutil
        import subprocess

        if self.path and shutil.which("nvidia-smi"):
            self.out = open(self.path, "a")
            self.proc = subprocess.Popen(["nvidia-smi", f"--query-gpu={self.QUERY}", "--format=csv,noheader", "-lms", "100"],
                                         stdout=self.out, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.out.close()


def weight_bytes(model):
    total = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    linears = 0
    for layer in model.model.layers:
        for mod in layer.modules():
            if mod is layer:
                continue
            if isinstance(mod, nn.Linear) or type(mod).__name__ == "QuantLinear":
                linears += sum(t.numel() * t.element_size() for t in list(mod.parameters()) + list(mod.buffers()))
    return total, linears


def kernel_table(replay, log, title, rows=25):
    """Profile a few replays of a captured step and log its kernels by total GPU time."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            replay()
        torch.cuda.synchronize()
    log(f"  kernels of {title} (5 replays):")
    log(prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows, max_name_column_width=70))


def rewind(cache, length):
    """Put a static KV cache back at `length` tokens. transformers 5's StaticCache writes each step at its own
    per-layer counter (`cumulative_length`, advanced in place), not at `cache_position`: without this every
    repeated decode step attends one more token than the last, and two runs of "the same" step differ."""
    for layer in getattr(cache, "layers", ()):
        if torch.is_tensor(getattr(layer, "cumulative_length", None)):
            layer.cumulative_length.fill_(length)


def decode_latency(model, batch, cache_len, context, log, compile_mode=None, profile_title=None, eager_out=None):
    """(ms per decode step, how) of one step on a static KV cache, captured in a CUDA graph (eager if that fails);
    `eager_out`: a dict that also gets the eager step's ms ("eager_ms", no graph: what `model.generate` runs without
    torch.compile, host bound) and its host ms per call ("eager_host_ms")."""
    from transformers import StaticCache

    fwd = model.forward
    if compile_mode:
        torch._dynamo.reset()
        fwd = torch.compile(model.forward, mode=None if compile_mode == "default" else compile_mode, dynamic=False)

    cfg = model.config
    cache = StaticCache(config=cfg, max_cache_len=cache_len)
    ids = torch.randint(0, cfg.vocab_size, (batch, context), device="cuda")
    with torch.no_grad():
        model(input_ids=ids, past_key_values=cache, cache_position=torch.arange(context, device="cuda"), use_cache=True, logits_to_keep=1)
        step_ids = torch.randint(0, cfg.vocab_size, (batch, 1), device="cuda")
        cpos = torch.tensor([context], device="cuda")

        def step():
            return fwd(input_ids=step_ids, past_key_values=cache, cache_position=cpos, use_cache=True, logits_to_keep=1).logits

        t0 = time.time()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        if eager_out is not None:  # (each call writes one position further: 23 of the cache's spare 64+)
            host = []
            eager_out["eager_ms"] = statistics.median(call_ms(step, 3, 20, host))
            eager_out["eager_host_ms"] = statistics.median(host)
            if eager_out.get("cprofile"):  # where the eager step's host time goes: 10 steps, functions by own time
                from probe_host import own_time_profile

                rewind(cache, context)
                eager_out["cprofile"] = own_time_profile(step, 10)
            rewind(cache, context)
        if compile_mode:  # the compiled step against eager from the same cache state (and eager against itself)

            def from_context(fn):
                rewind(cache, context)
                return fn().float()

            def eager():
                return model(input_ids=step_ids, past_key_values=cache, cache_position=cpos, use_cache=True, logits_to_keep=1).logits

            got, ref, ref2 = from_context(step), from_context(eager), from_context(eager)
            rewind(cache, context)
            diff = ((got - ref).norm() / ref.norm()).item()
            self_diff = ((ref2 - ref).norm() / ref.norm()).item()
            log(
                f"  compiled decode step (b{batch}) in {time.time() - t0:.0f}s; logits vs eager rel diff {diff:.1e} "
                f"(eager vs eager {self_diff:.1e})"
            )
        try:
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                step()
            ms = median_ms(g.replay, warmup=3, reps=20)
            how = "cuda graph"
            if profile_title:
                kernel_table(g.replay, log, f"{profile_title} decode b{batch}")
            del g
        except Exception as e:  # noqa: BLE001 - fall back to eager and say so
            log(f"  graph capture failed ({type(e).__name__}: {str(e)[:160]}); eager decode")
            torch.cuda.synchronize()
            ms = median_ms(step, warmup=2, reps=10)
            how = "eager"
    torch.cuda.empty_cache()
    return ms, how


class _TokenClock:
    """A `generate` streamer that notes when each token is ready (after a sync): the prompt, then every new token."""

    def __init__(self):
        self.times = []

    def put(self, value):
        torch.cuda.synchronize()
        self.times.append(time.perf_counter())

    def end(self):
        pass


def generate_latency(model, new_tokens, context, log) -> dict:
    """`model.generate` as a user runs it, greedy, batch 1, `context` prompt tokens, `new_tokens` new ones: with the
    default dynamic KV cache (eager: no graphs) and with `cache_implementation="static"` (transformers then compiles
    the decode step with CUDA graphs by itself). Per mode: time to the first new token (the prefill) and the median
    ms between later tokens; the second of two calls (the first compiles)."""
    ids = torch.randint(0, model.config.vocab_size, (1, context), device=model.device)
    result = {}
    for cache in ("dynamic", "static"):
        try:
            for _ in range(2):
                clock = _TokenClock()
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                with torch.no_grad():
                    model.generate(ids, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                   cache_implementation=cache, pad_token_id=0, streamer=clock)
            gaps = [b - a for a, b in zip(clock.times[2:], clock.times[3:])]  # (between new tokens 2, 3, ...)
            result[cache] = {"first_token_ms": (clock.times[1] - t0) * 1e3, "ms_per_token": statistics.median(gaps) * 1e3}
            log(f"  generate ({cache} cache): first token {result[cache]['first_token_ms']:.1f} ms, then "
                f"{result[cache]['ms_per_token']:.2f} ms per token ({new_tokens} new tokens)")
        except Exception as e:  # noqa: BLE001 - reported, the other numbers stand
            log(f"  generate ({cache} cache) failed: {type(e).__name__}: {str(e)[:300]}")
        torch._dynamo.reset()
    return result


def measure(model, name, args, log, results):
    torch.cuda.synchronize()
    total, linears = weight_bytes(model)
    r = {"variant": name, "weights_GB": total / 1e9, "linear_weights_GB": linears / 1e9}
    ids = torch.randint(0, model.config.vocab_size, (1, args.prefill), device="cuda")
    with torch.no_grad():
        r["prefill_ms"] = median_ms(lambda: model(input_ids=ids, use_cache=False, logits_to_keep=1), 1, 5)
        if args.compile_prefill and name in args.compile_variants:
            medians, every = [], []
            for i in range(args.prefill_compiles):  # (each compile its own process-like start: is the slow mode per compile?)
                torch._dynamo.reset()
                compiled = torch.compile(model.forward, dynamic=False, mode=args.prefill_mode)

                def fwd(compiled=compiled):
                    return compiled(input_ids=ids, use_cache=False, logits_to_keep=1)

                try:
                    t0 = time.time()
                    fwd()
                    log(f"  compiled prefill in {time.time() - t0:.0f}s")
                    before = torch.cuda.memory_stats()
                    tag = name.replace("+", "_") + (f"_{i}" if args.prefill_compiles > 1 else "")
                    with GpuSampler(f"{args.out}/smi_{tag}.csv" if args.sample_gpu else None):
                        host = []
                        calls = call_ms(fwd, 3, args.prefill_reps, host)  # (3: CUDA graph trees record on the 2nd call)
                    after = torch.cuda.memory_stats()
                    medians.append(statistics.median(calls))
                    every += calls
                    # (the slow mode's other suspect: the caching allocator going back to cudaMalloc in the timed calls)
                    retries = after.get("num_alloc_retries", 0) - before.get("num_alloc_retries", 0)
                    segments = after.get("segment.all.allocated", 0) - before.get("segment.all.allocated", 0)
                    r["prefill_alloc_retries"] = r.get("prefill_alloc_retries", 0) + retries
                    r["prefill_segments_added"] = r.get("prefill_segments_added", 0) + segments
                    log(f"  compiled prefill #{i} calls (ms): {' '.join(f'{t:.1f}' for t in calls)}; median "
                        f"{medians[-1]:.1f}; host (launch) ms: {' '.join(f'{t:.1f}' for t in host)}; allocator retries {retries}, "
                        f"new segments {segments}")
                    if args.profile:
                        kernel_table(fwd, log, f"{name} compiled prefill #{i}", rows=18)
                except Exception as e:  # noqa: BLE001 - reported, the eager numbers stand
                    log(f"  torch.compile prefill failed: {type(e).__name__}: {str(e)[:300]}")
                torch._dynamo.reset()
            if medians:
                r["prefill_compiled_ms"] = statistics.median(every)
                r["prefill_compiled_calls_ms"] = every
                r["prefill_compiled_medians_ms"] = medians
    for b in args.batches:
        eager = ({"cprofile": args.cprofile_eager} if args.eager_decode else None)
        r[f"decode_b{b}_ms"], r[f"decode_b{b}_how"] = decode_latency(model, b, args.cache_len, args.context, log,
                                                                     eager_out=eager)
        if eager:
            r[f"decode_b{b}_eager_ms"], r[f"decode_b{b}_eager_host_ms"] = eager["eager_ms"], eager["eager_host_ms"]
            log(f"  eager decode b{b}: {eager['eager_ms']:.2f} ms per step (host {eager['eager_host_ms']:.2f} ms)")
            if args.cprofile_eager:
                with open(f"{args.out}/cprofile_{name.replace('+', '_')}_b{b}.txt", "w") as f:
                    f.write(eager["cprofile"])
    if args.compile and name in args.compile_variants:
        for b in args.batches:
            try:
                title = f"{name} compiled" if args.profile else None
                ms, how = decode_latency(model, b, args.cache_len, args.context, log, args.compile, title)
                r[f"decode_b{b}_compiled_ms"], r[f"decode_b{b}_compiled_how"] = ms, f"torch.compile({args.compile}) + {how}"
            except Exception as e:  # noqa: BLE001 - reported, the eager numbers stand
                log(f"  torch.compile decode b{b} failed: {type(e).__name__}: {str(e)[:300]}")
        torch._dynamo.reset()
    for context, cache_len in args.decode_contexts:  # the decode step at other context lengths (compiled where asked)
        compile_mode = args.compile if args.compile and name in args.compile_variants else None
        for b in args.batches:
            try:
                ms, how = decode_latency(model, b, cache_len, context, log, compile_mode)
            except Exception as e:  # noqa: BLE001 - reported, the other numbers stand
                log(f"  decode b{b} at context {context} / cache {cache_len} failed: {type(e).__name__}: {str(e)[:300]}")
                continue
            r.setdefault("decode_sweep", []).append({"context": context, "cache_len": cache_len, "batch": b, "ms": ms,
                                                     "how": f"torch.compile({compile_mode}) + {how}" if compile_mode else how})
            log(f"  decode b{b} at context {context} / cache {cache_len}: {ms:.2f} ms ({r['decode_sweep'][-1]['how']})")
        torch._dynamo.reset()
    if args.generate:
        r["generate"] = generate_latency(model, args.generate, args.context, log)
    results.append(r)
    log(
        f"{name:14s} weights {r['weights_GB']:.2f} GB (linears {r['linear_weights_GB']:.2f})  "
        f"prefill {r['prefill_ms']:.1f} ms  "
        + (f"compiled prefill {r['prefill_compiled_ms']:.1f} ms  " if "prefill_compiled_ms" in r else "")
        + "  ".join(f"decode b{b} {r[f'decode_b{b}_ms']:.2f} ms ({r[f'decode_b{b}_how']})" for b in args.batches)
        + "".join(f"  compiled b{b} {r[f'decode_b{b}_compiled_ms']:.2f} ms" for b in args.batches if f"decode_b{b}_compiled_ms" in r)
    )
    return r


def quantize_model(model, act_mode, act_scale, group_size, scale_format="fp16"):
    from fptq.nn.quant_linear import QuantLinear

    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for cname, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    q = QuantLinear.from_linear(
                        child,
                        bits=4,
                        group_size=group_size,
                        scale_format=scale_format,
                        act_mode=act_mode,
                        act_scale=act_scale if act_mode == "static" else None,
                    )
                    setattr(parent, cname, q)
    torch.cuda.empty_cache()


def set_act_mode(model, act_mode, act_scale):
    from fptq.nn.quant_linear import QuantLinear

    for mod in model.modules():
        if isinstance(mod, QuantLinear):
            mod.act_mode = act_mode
            scale = torch.tensor(act_scale, dtype=torch.float32, device="cuda") if act_mode == "static" else None
            mod.register_buffer("act_scale", scale)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--prefill", type=int, default=2048)
    ap.add_argument("--context", type=int, default=512, help="tokens in the KV cache before the timed decode step")
    ap.add_argument("--cache-len", type=int, default=1024)
    ap.add_argument("--decode-contexts", default="",
                    help="CONTEXT:CACHE_LEN,...: also time the decode step at these context lengths in static caches of "
                         "these sizes (attention reads the whole cache), compiled where --compile covers the variant")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--group-size", type=int, default=128)
    ap.add_argument("--scale-format", default="fp16", choices=("fp16", "two-level"), help="group scales of the W4A8 model")
    ap.add_argument("--act-scale", type=float, default=0.05)
    ap.add_argument("--compile", default=None, help="also time the decode step under torch.compile(mode=...) ('default' for None)")
    ap.add_argument("--compile-variants", default="fp16,w4a8-dynamic,w4a8-static")
    ap.add_argument("--recompile-limit", type=int, default=8)
    ap.add_argument("--variants", default="w4a8-dynamic,w4a8-static,w4a16",
                    help="in this order; options after '+': fused (after the unfused ones), prologue (with fused; it stays "
                         "for the variants after it), pdl, nopdl, tN, ingraph, opaque, tiled, "
                         "tritondecode, tritonprefill, ws, k1, plain, fuseall, nofuse, onelaunch / twolaunch, noksub, noflags, narrow, "
                         "trigN, tritonlaunch, "
                         "noplans, nodirect "
                         "(e.g. w4a8-dynamic+fused+nopdl+t264)")
    ap.add_argument("--kernel-settings", default="",
                    help="kernel defaults as printed by bench_gemm --decode3 / --prefill-sweep, e.g. 'pdl=1 target=528 "
                         "budget=25165824 prefill=64,128,4,3,1,168 chunk=33554432'")
    ap.add_argument("--fp16-fused", action="store_true", help="also time fp16 with q/k/v and gate/up fused (a copy)")
    ap.add_argument("--compile-prefill", action="store_true",
                    help="also time the prefill under torch.compile (default mode) for --compile-variants")
    ap.add_argument("--profile", action="store_true", help="log the kernels of each compiled decode step / prefill (torch.profiler)")
    ap.add_argument("--prefill-reps", type=int, default=5, help="timed calls of the compiled prefill (each one logged)")
    ap.add_argument("--prefill-mode", default=None, choices=(None, "reduce-overhead", "max-autotune-no-cudagraphs"),
                    help="torch.compile mode of the compiled prefill (default: none; reduce-overhead: CUDA graphs)")
    ap.add_argument("--prefill-compiles", type=int, default=1,
                    help="compile the prefill this many times (each with --prefill-reps calls; --profile: a kernel table each)")
    ap.add_argument("--sample-gpu", action="store_true",
                    help="sample SM clock / power / throttle reasons with nvidia-smi during the compiled prefill "
                         "(OUT/smi_<variant>.csv)")
    ap.add_argument("--generate", type=int, default=0,
                    help="also time model.generate with this many new tokens after --context prompt tokens, dynamic "
                         "cache (eager) and static cache (compiled with CUDA graphs by transformers)")
    ap.add_argument("--cprofile-eager", action="store_true",
                    help="with --eager-decode: cProfile 10 eager steps per batch, written to OUT/cprofile_<variant>_b<B>.txt")
    ap.add_argument("--eager-decode", action="store_true",
                    help="also time the decode step eagerly (no CUDA graph, no compile: host bound), with its host time")
    ap.add_argument("--gemv", default=None, help="BLOCK_N,CHUNKS,SPLIT,WARPS: use the dp4a GEMV at M <= 4 with this config")
    args = ap.parse_args()
    if args.kernel_settings:
        from fptq.kernels import triton_w4a8 as tw

        # target: both decode kernels' program targets (what it meant before they were two); tma_target: the TMA one
        names = {"pdl": ("USE_PDL",), "target": ("DECODE_TARGET_PROGRAMS", "TMA_TARGET_PROGRAMS"),
                 "tma_target": ("TMA_TARGET_PROGRAMS",), "budget": ("PREFETCH_BUDGET",)}
        for item in args.kernel_settings.split():
            key, value = item.split("=")
            if key == "prefill":  # block_m,block_n,warps,stages,wgmma,maxnreg (0: none)
                bm, bn, w, st, wg, regs = map(int, value.split(","))
                cfg = tw.PrefillConfig(bm, bn, w, st, wgmma=bool(wg), maxnreg=regs or None)
                tw.PREFILL_CONFIGS = [(1 << 62, cfg)]
            elif key == "decode":  # the Gluon TMA decode kernel at M <= 16: block_n,warps,tma_stages
                bn, w, st = map(int, value.split(","))
                cfg = tw.KernelConfig(16, bn, w, 3, split_k=16, tma_stages=st)
                tw.CONFIGS[0] = (tw.CONFIGS[0][0], cfg)
            elif key == "chunk":
                from fptq.kernels import triton_prefill

                triton_prefill.CHUNK_BYTES = int(value)
            else:
                for name in names[key]:
                    setattr(tw, name, type(getattr(tw, name))(int(value)))
    if args.gemv:
        from fptq.kernels import triton_w4a8 as tw
        from fptq.kernels.triton_gemv import GemvConfig

        tw.USE_GEMV = True
        tw.GEMV_CONFIGS = [(4, GemvConfig(*map(int, args.gemv.split(","))))]
    args.compile_variants = args.compile_variants.split(",")
    # Dynamo's recompile limit (runs 7/8 needed it raised while select_backend broke the graph at every
    # QuantLinear; run 9 measured the same compiled times at the default limit)
    torch._dynamo.config.recompile_limit = args.recompile_limit
    torch._dynamo.config.accumulated_recompile_limit = max(args.recompile_limit * 4, 256)
    args.batches = [int(b) for b in args.batches.split(",") if b]  # empty: prefill only
    args.decode_contexts = [tuple(int(v) for v in pair.split(":")) for pair in args.decode_contexts.split(",") if pair]
    for context, cache_len in [(args.context, args.cache_len), *args.decode_contexts]:
        if args.batches and context + 64 > cache_len:  # (each replayed decode step writes one position further)
            ap.error(f"context {context} needs a cache of at least {context + 64} positions")
    logf = open(f"{args.out}/e2e_log.txt", "a")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=args.layers,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
        max_position_embeddings=4096,
    )
    cfg._attn_implementation = "sdpa"
    t0 = time.time()
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).eval()
    torch.set_default_dtype(torch.float32)
    log(f"built LLaMA-2-7B-shaped model ({args.layers} layers) on {torch.cuda.get_device_name()} in {time.time() - t0:.0f}s")
    results = []
    probe = torch.randint(0, cfg.vocab_size, (1, 64), device="cuda")
    with torch.no_grad():
        ref_logits = model(input_ids=probe).logits.float()
    fp16 = measure(model, "fp16", args, log, results)
    baselines = {"fp16": fp16}
    if args.fp16_fused:  # (the fair baseline for the W4A8 "+fused" variants: fp16 with the same GEMMs merged)
        import copy

        from fptq.nn.shared_input import fuse_shared_inputs

        fused16 = copy.deepcopy(model)
        fuse_shared_inputs(fused16)
        baselines["fp16+fused"] = measure(fused16, "fp16+fused", args, log, results)
        del fused16
        torch.cuda.empty_cache()
    t0 = time.time()
    quantize_model(model, "dynamic", None, args.group_size, args.scale_format)
    log(f"quantized to W4A8 g{args.group_size} ({args.scale_format} scales) in {time.time() - t0:.0f}s")
    with torch.no_grad():
        q_logits = model(input_ids=probe).logits.float()
    err = ((q_logits - ref_logits).norm() / ref_logits.norm()).item()
    log(f"W4A8 vs fp16 logits rel diff (random weights, RTN): {err:.3f}")
    from fptq.kernels import triton_w4a8 as tw

    modes = {"w4a8-dynamic": "dynamic", "w4a8-static": "static", "w4a8-fp8": "dynamic_fp8", "w4a16": "none"}
    from fptq.kernels import gluon_prefill as gp

    defaults = (tw.USE_PDL, tw.DECODE_TARGET_PROGRAMS, tw.TMA_TARGET_PROGRAMS, tw.QUANTIZE_IN_GRAPH, tw.USE_PREFILL,
                tw.CONFIGS[0], tw.PREFILL_CONFIGS, tw.TRACED_QUANT_MIN_M, tw.QUANT_PDL)
    gp_defaults = gp.K_PER_SLOT, gp.FUSED_UNPACK, gp.FUSED_MAX_M, gp.LAG_SCALING
    m1_default, wide_default, ksub_default, flags_default = tw.FUSED_DECODE_M1, tw.SWAP_WIDE, tw.FUSED_KSUB, tw.SPLIT_FLAGS
    trigger_default = tw.DECODE_TRIGGER
    from fptq.kernels import launch
    for name in args.variants.split(","):
        # options after '+': fused (q/k/v, gate/up as one GEMM), pdl / nopdl (tw.USE_PDL), tN
        # (tw.DECODE_TARGET_PROGRAMS = tw.TMA_TARGET_PROGRAMS = N), ingraph / opaque (tw.QUANTIZE_IN_GRAPH); else the
        # defaults
        base, *opts = name.split("+")
        mode = modes[base]
        (tw.USE_PDL, tw.DECODE_TARGET_PROGRAMS, tw.TMA_TARGET_PROGRAMS, tw.QUANTIZE_IN_GRAPH, tw.USE_PREFILL, tw.CONFIGS[0],
         tw.PREFILL_CONFIGS, tw.TRACED_QUANT_MIN_M, tw.QUANT_PDL) = defaults
        gp.K_PER_SLOT, gp.FUSED_UNPACK, gp.FUSED_MAX_M, gp.LAG_SCALING = gp_defaults
        tw.FUSED_DECODE_M1, tw.SWAP_WIDE, tw.FUSED_KSUB, tw.SPLIT_FLAGS = m1_default, wide_default, ksub_default, flags_default
        tw.DECODE_TRIGGER = trigger_default
        for opt in opts:  # trigN: the decode GEMM lets its dependent be placed at N (`DECODE_TRIGGER`; 0 never)
            if opt.startswith("trig") and opt[4:].isdigit():
                tw.DECODE_TRIGGER = int(opt[4:])
        launch.ENABLED = "tritonlaunch" not in opts  # (Triton's own launch path for every kernel, not the short one)
        tw.LAUNCH_PLANS = "noplans" not in opts  # (every eager call decides its launches again)
        launch.DIRECT = "nodirect" not in opts  # (kept kernels through Triton's launcher, not its C function directly)
        if "narrow" in opts:  # the swap kernel's 128-row weight tiles only (no 256-row candidate)
            tw.SWAP_WIDE = None
        if "onelaunch" in opts or "twolaunch" in opts:  # M = 1: activation quantization inside the decode GEMM or not
            tw.FUSED_DECODE_M1 = "onelaunch" in opts
        if "noksub" in opts:  # M = 1: the one-launch op split along K as before session 30 (no KSUB slots)
            tw.FUSED_KSUB = 0
        if "noflags" in opts:  # split-K launches reduced through arrival counters as before session 31 (no SPLIT_FLAGS)
            tw.SPLIT_FLAGS = False
        if "k1" in opts:  # one K step per ring slot of the warp-specialized prefill kernel
            gp.K_PER_SLOT = 1
        if "plain" in opts:  # each step scaled right after its own MMA (not under the next step's)
            gp.LAG_SCALING = False
        if "fuseall" in opts or "nofuse" in opts:  # unpack inside that kernel at every M / never
            gp.FUSED_UNPACK, gp.FUSED_MAX_M = "fuseall" in opts, 1 << 30
        if "tritondecode" in opts:  # M <= 16 through the Triton kernel instead of the Gluon one
            tw.CONFIGS[0] = (tw.CONFIGS[0][0], tw.KernelConfig(16, 64, 4, 3, split_k=8))  # the session-5 default
        if "ws" in opts:  # the warp-specialized kernel after an unpack pass instead of `gluon_swap` (packed
            # weights as wgmma's register operand, the default since run 79)
            from fptq.kernels.triton_prefill import WS_CONFIG

            tw.PREFILL_CONFIGS = [(1 << 62, WS_CONFIG)]
        if "tritonprefill" in opts:  # the unpacked path's Triton GEMM instead of the warp-specialized Gluon one
            from fptq.kernels.triton_prefill import PrefillConfig

            tw.PREFILL_CONFIGS = [(1 << 62, PrefillConfig())]
        if "tiled" in opts:  # large M through the tiled kernel instead of unpack-then-GEMM
            tw.USE_PREFILL = False
        if "opaque" in opts or "ingraph" in opts:
            tw.QUANTIZE_IN_GRAPH = "ingraph" in opts
        traced_from = next((int(o[6:]) for o in opts if o.startswith("traced") and o[6:].isdigit()), None)
        if traced_from is not None:  # tracedN: under torch.compile the quantization traced from N rows on (default 17)
            tw.TRACED_QUANT_MIN_M = traced_from
        if "pdl" in opts or "nopdl" in opts:
            tw.USE_PDL = "pdl" in opts
        if "noquantpdl" in opts:  # the quantization kernel launched plainly, not as a dependent of the kernel before
            tw.QUANT_PDL = False
        target = next((int(o[1:]) for o in opts if o[:1] == "t" and o[1:].isdigit()), None)
        if target is not None:  # both decode kernels' program targets
            tw.DECODE_TARGET_PROGRAMS = tw.TMA_TARGET_PROGRAMS = target
        if "fused" in opts:
            from fptq.nn.shared_input import fuse_shared_inputs, is_fused

            if not is_fused(model):
                set_act_mode(model, mode, args.act_scale)  # one spec per group, as FPTQ gives
                log(f"fused {fuse_shared_inputs(model)} shared-input groups")
        if "prologue" in opts:  # (after a fused variant) the norms inside the linears that read them
            from fptq.nn.prologue import fuse_prologues

            log(f"moved {fuse_prologues(model)} norms into their linears")
        set_act_mode(model, mode, args.act_scale)
        r = measure(model, name, args, log, results)
        r["speedup_prefill"] = fp16["prefill_ms"] / r["prefill_ms"]
        if "prefill_compiled_ms" in r and "prefill_compiled_ms" in fp16:
            r["speedup_prefill_compiled"] = fp16["prefill_compiled_ms"] / r["prefill_compiled_ms"]
        for b in args.batches:
            r[f"speedup_decode_b{b}"] = fp16[f"decode_b{b}_ms"] / r[f"decode_b{b}_ms"]
            if f"decode_b{b}_eager_ms" in r and f"decode_b{b}_eager_ms" in fp16:
                r[f"speedup_decode_b{b}_eager"] = fp16[f"decode_b{b}_eager_ms"] / r[f"decode_b{b}_eager_ms"]
            key = f"decode_b{b}_compiled_ms"
            if key in r and key in fp16:
                r[f"speedup_decode_b{b}_compiled"] = fp16[key] / r[key]
        for cache, gen in r.get("generate", {}).items():
            if cache in fp16.get("generate", {}):
                r[f"speedup_generate_{cache}"] = fp16["generate"][cache]["ms_per_token"] / gen["ms_per_token"]
        r["weight_ratio"] = r["weights_GB"] / fp16["weights_GB"]
        r["linear_weight_ratio"] = r["linear_weights_GB"] / fp16["linear_weights_GB"]
        for base_name, base in baselines.items():  # the decode sweep's speedups against each baseline
            times = {(d["context"], d["cache_len"], d["batch"]): d["ms"] for d in base.get("decode_sweep", ())}
            for d in r.get("decode_sweep", ()):
                if (key := (d["context"], d["cache_len"], d["batch"])) in times:
                    d[f"speedup_vs_{base_name}"] = times[key] / d["ms"]
            if base_name != "fp16":
                r[f"vs_{base_name}"] = {k: base[k] / r[k] for k in base if k.endswith("_ms") and isinstance(base[k], float)
                                        and isinstance(r.get(k), float)}
                log(f"  vs {base_name}: " + "  ".join(f"{k[:-3]} x{v:.2f}" for k, v in r[f"vs_{base_name}"].items()))
        for d in r.get("decode_sweep", ()):
            log(f"  decode b{d['batch']} context {d['context']} / cache {d['cache_len']}: {d['ms']:.2f} ms  "
                + "  ".join(f"x{d[k]:.2f} {k[len('speedup_vs_'):]}" for k in d if k.startswith("speedup_vs_")))
        log(
            f"  vs fp16: prefill x{r['speedup_prefill']:.2f}  "
            + (f"compiled prefill x{r['speedup_prefill_compiled']:.2f}  " if "speedup_prefill_compiled" in r else "")
            + "  ".join(f"decode b{b} x{r[f'speedup_decode_b{b}']:.2f}" for b in args.batches)
            + "".join(f"  compiled b{b} x{r[k]:.2f}" for b in args.batches if (k := f"speedup_decode_b{b}_compiled") in r)
            + "".join(f"  eager b{b} x{r[k]:.2f}" for b in args.batches if (k := f"speedup_decode_b{b}_eager") in r)
            + "".join(f"  generate ({c} cache) x{r[k]:.2f}" for c in ("dynamic", "static") if (k := f"speedup_generate_{c}") in r)
            + f"  weights x{r['weight_ratio']:.3f} (linears x{r['linear_weight_ratio']:.3f})"
        )
    with open(f"{args.out}/e2e.json", "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(), "args": vars(args), "logits_rel_diff": err, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()

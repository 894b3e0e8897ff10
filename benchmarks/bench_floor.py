"""Run 11: what does a Triton launch cost in the benchmark harness? Time, inside the same CUDA-graph
harness as bench_gemm.py, an empty Triton kernel, a Triton kernel that only streams the packed weight
bytes (int32 words summed per row), the activation-quantization kernel alone, and torch's own
reductions over the same bytes, at the 7B qkv/o (4096x4096) and 70B gate/up (28672x8192) weight sizes.
"""

from __future__ import annotations

import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, "benchmarks")
from bench_gemm import time_graph  # noqa: E402

from fptq.kernels import triton_w4a8 as tw  # noqa: E402


@triton.jit
def _empty(x_ptr):
    pass


@triton.jit
def _stream(w_ptr, out_ptr, K_WORDS, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.int32)
    for k0 in range(0, K_WORDS, BLOCK_K):
        acc += tl.load(w_ptr + rows[:, None].to(tl.int64) * K_WORDS + k0 + tl.arange(0, BLOCK_K)[None, :])
    tl.store(out_ptr + rows, tl.sum(acc, axis=1))


def main():
    print("GPU", torch.cuda.get_device_name())
    for n, k in ((4096, 4096), (11008, 4096), (28672, 8192)):
        kw = k // 8  # int32 words per row of packed int4

        def mk(fn, n=n, k=k, kw=kw):
            def make(copies):
                calls = []
                for _ in range(copies):
                    w = torch.randint(-2**31, 2**31 - 1, (n, kw), device="cuda", dtype=torch.int32)
                    out = torch.empty(n, device="cuda", dtype=torch.int32)
                    x = torch.randn(1, k, device="cuda", dtype=torch.float16)
                    calls.append(lambda w=w, out=out, x=x: fn(w, out, x))
                return calls
            return make

        nbytes = n * k // 2
        res = {
            "empty triton": time_graph(mk(lambda w, o, x: _empty[(1,)](w)), nbytes),
            "act quant M=1": time_graph(mk(lambda w, o, x: tw.quantize_activation_triton(x, 128, "dynamic")), nbytes),
        }
        for bn, bk, warps in ((16, 256, 4), (32, 128, 4), (64, 128, 8), (8, 512, 4)):
            def stream(w, o, x, bn=bn, bk=bk, warps=warps, n=n, kw=kw):
                return _stream[(n // bn,)](w, o, kw, BLOCK_N=bn, BLOCK_K=bk, num_warps=warps)

            res[f"triton stream bn{bn} bk{bk} w{warps}"] = time_graph(mk(stream), nbytes)
        res["torch w.sum(1)"] = time_graph(mk(lambda w, o, x: torch.sum(w, dim=1, out=o)), nbytes)
        res["torch copy"] = time_graph(mk(lambda w, o, x: w.clone()), 2 * nbytes)
        for name, t in res.items():
            print(f"{n}x{k} ({nbytes / 1e6:.1f} MB): {name:32s} {t:8.2f} us  {nbytes / t / 1e6:6.2f} TB/s")


if __name__ == "__main__":
    main()

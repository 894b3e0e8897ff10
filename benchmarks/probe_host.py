"""Host (CPU) cost of one prefill op, eager: wall time per call with the GPU kept busy or not, and a
cProfile of the warp-specialized path (run 51: the eager 2048-token prefill ran at 113 ms with the ws
kernel against 75 ms with the Triton kernel while both ops measure alike in CUDA graphs).

    PYTHONPATH=src python3 benchmarks/probe_host.py
"""

from __future__ import annotations

import cProfile
import pstats
import time

import torch

from fptq.kernels import triton_w4a8 as tw
from fptq.kernels.triton_prefill import PrefillConfig
from fptq.packing import pack_int4


def main() -> None:
    torch.manual_seed(0)
    m, n, k = 2048, 4096, 4096
    qweight = pack_int4(torch.randint(0, 16, (n, k), dtype=torch.uint8, device="cuda"))
    scales = (torch.rand(n, k // 128, device="cuda") * 0.01).half()
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    for label, cfg in (("triton", PrefillConfig()), ("ws", PrefillConfig(128, 128, 4, 6, ws=True))):
        def call(cfg=cfg):
            return tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode="dynamic", config=cfg)

        for _ in range(3):
            call()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(50):
            call()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        print(f"{label}: host {1e6 * (t1 - t0) / 50:.1f} us/call, wall {1e6 * (t2 - t0) / 50:.1f} us/call", flush=True)
        if label == "ws":
            pr = cProfile.Profile()
            pr.enable()
            for _ in range(20):
                call()
            pr.disable()
            torch.cuda.synchronize()
            pstats.Stats(pr).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()

"""Where the time of one prefill op goes: torch.profiler over CUDA-graph replays of the default op
(activation quantization, weight unpack pass, scale rows, GEMM), per kernel name (run 61).

    PYTHONPATH=src python3 benchmarks/probe_op_kernels.py [M N K ...]

With PROBE_NO_PROFILER=1 each op just runs twice (for Nsight Compute, which cannot share CUPTI with
torch.profiler: `bash benchmarks/gpu_run.sh ncu-quant`).
"""

from __future__ import annotations

import os
import sys

import torch

from fptq.kernels import triton_w4a8 as tw
from fptq.packing import pack_int4


def main() -> None:
    args = [int(v) for v in sys.argv[1:]] or [4096, 4096, 11008, 4096, 4096, 4096]
    for m, n, k in zip(args[0::3], args[1::3], args[2::3]):
        torch.manual_seed(0)
        qweight = pack_int4(torch.randint(0, 16, (n, k), dtype=torch.uint8, device="cuda"))
        scales = (torch.rand(n, k // 128, device="cuda") * 0.01).half()
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)

        def op(x=x, qweight=qweight, scales=scales):
            return tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode="dynamic")

        for _ in range(2 if os.environ.get("PROBE_NO_PROFILER") else 3):
            op()
        torch.cuda.synchronize()
        if os.environ.get("PROBE_NO_PROFILER"):
            continue
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                op()
            torch.cuda.synchronize()
        print(f"M={m} N={n} K={k}: per call", flush=True)
        for e in sorted(prof.key_averages(), key=lambda e: -e.device_time_total)[:8]:
            print(f"  {e.key[:60]:60s} {e.device_time_total / 10:8.1f} us  ({e.count // 10} per call)", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# GPU run driver (the H100 device machine): one call = correctness + timings, results under $OUT.
#   bash benchmarks/gpu_run.sh check-sweep   # correctness, config sweeps, torch.compile smoke test
#   bash benchmarks/gpu_run.sh gemm          # the full GEMM table (+ baselines)
#   bash benchmarks/gpu_run.sh e2e           # LLaMA-2-7B-shaped end to end
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee -a "$OUT/gpu_info.txt"
python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu_info.txt"
case "${1:-gemm}" in
  check-sweep)
    python3 -c "
import torch
f = torch.compile(lambda x: torch.nn.functional.gelu(x) * 2)
print('torch.compile ok:', f(torch.randn(8, device='cuda')).shape)" 2>&1 | tail -2 | tee -a "$OUT/gpu_info.txt"
    python3 benchmarks/bench_gemm.py --out "$OUT" --sweep --shapes 0,1,6 --ms 1,16,64,256,4096 "${@:2}"
    ;;
  decode)  # run 6: single-launch decode kernel: check, sweep, decode table; 2-layer torch.compile smoke
    timeout 420 python3 benchmarks/bench_gemm.py --out "$OUT" --decode-check-only --decode-sweep --old-decode --ms 1,4,16 "${@:2}"
    timeout 120 python3 benchmarks/bench_e2e.py --out "$OUT" --layers 2 --prefill 256 --compile default --variants w4a8-dynamic
    ;;
  all)
    timeout 420 python3 benchmarks/bench_gemm.py --out "$OUT" --sweep --extra "${@:2}"
    timeout 170 python3 benchmarks/bench_e2e.py --out "$OUT"
    ;;
  gemm)
    python3 benchmarks/bench_gemm.py --out "$OUT" "${@:2}"
    ;;
  e2e)
    python3 benchmarks/bench_e2e.py --out "$OUT" "${@:2}"
    ;;
esac

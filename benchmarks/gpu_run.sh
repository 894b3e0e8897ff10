#!/usr/bin/env bash
# GPU run driver (the H100 device machine): one call = correctness + timings, results under $OUT.
#   bash benchmarks/gpu_run.sh check-sweep   # correctness, config sweeps, torch.compile smoke test
#   bash benchmarks/gpu_run.sh gemm          # the full GEMM table (+ baselines)
#   bash benchmarks/gpu_run.sh e2e           # LLaMA-2-7B-shaped end to end
#   bash benchmarks/gpu_run.sh gpu-tests 1   # a quarter of the GPU-marked tests (then `gpu-tests 2`, 3, 4)
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
  final)  # run 7: GPU tests, CUDA calibration pipeline smoke test, e2e with and without torch.compile
    timeout 150 python3 -m pytest -q tests/kernels -m gpu 2>&1 | tail -5 | tee "$OUT/pytest_gpu.txt"
    timeout 120 python3 - <<'PY' 2>&1 | grep -v Warning | tee "$OUT/pipeline_smoke.txt"
import copy, os, torch, fptq
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
cfg = LlamaConfig(hidden_size=256, intermediate_size=704, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=4, vocab_size=1000, max_position_embeddings=256)
model = LlamaForCausalLM(cfg).half().eval()
fptq.quantize(model, None, fptq.QuantConfig(group_size=64), fptq.CalibConfig(source="random", samples=4, seqlen=64),
              device="cuda", progress=False)
ids = torch.randint(0, 1000, (2, 48))
ref_model = copy.deepcopy(model).cpu().float()
os.environ["FPTQ_KERNEL"] = "reference"
with torch.no_grad():
    ref = ref_model(input_ids=ids).logits.double()
del os.environ["FPTQ_KERNEL"]
model = model.cuda()
from fptq.kernels import select_backend
print("backend on CUDA:", select_backend(torch.zeros(1, 256, device="cuda").half(), 4, 64, "dynamic").name)
with torch.no_grad():
    out = model(input_ids=ids.cuda()).logits.double().cpu()
modes = sorted({m.act_mode for m in model.modules() if type(m).__name__ == "QuantLinear"})
print("act modes:", modes, "finite:", bool(torch.isfinite(out).all()))
print("PIPELINE rel diff cuda(triton, fp16) vs cpu(reference, fp32): %.2e" % ((out - ref).norm() / ref.norm()).item())
PY
    timeout 330 python3 benchmarks/bench_e2e.py --out "$OUT" --compile default --compile-variants fp16,w4a8-dynamic --variants w4a8-dynamic,w4a8-static
    ;;
  small-m)  # run 9: narrow split-K-free tiles at M <= 16; e2e compiled with Dynamo's default recompile limit
    timeout 300 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --small-m-sweep --shapes 0 --ms 1 "${@:2}"
    timeout 240 python3 benchmarks/bench_e2e.py --out "$OUT" --compile default --compile-variants fp16,w4a8-dynamic --variants w4a8-dynamic
    ;;
  gemv)  # run 10: the dp4a GEMV: GPU tests, sweep at M = 1/4, e2e decode with the winner
    timeout 200 python3 -m pytest -q tests/kernels/test_triton_gemv.py 2>&1 | tail -3 | tee "$OUT/pytest_gemv.txt"
    timeout 240 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --gemv-sweep --shapes 0 --ms 1 "${@:2}"
    best=$(grep -o 'GEMV_WINNER [0-9,]*' "$OUT/gemm_log.txt" | tail -1 | cut -d' ' -f2)
    [ -n "$best" ] && timeout 220 python3 benchmarks/bench_e2e.py --out "$OUT" --gemv "$best" --batches 1 \
        --variants w4a8-dynamic,w4a8-static --compile default --compile-variants fp16,w4a8-dynamic
    ;;
  decode2)  # run 12: one-pass activation quantization, re-timed harness; GEMV vs tiled at M <= 16; e2e b1
    timeout 60 python3 benchmarks/bench_floor.py | tee "$OUT/floor.txt"
    timeout 150 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --gemv-sweep --shapes 0 --ms 1 "${@:2}"
    best=$(grep -o 'GEMV_WINNER [0-9,]*' "$OUT/gemm_log.txt" | tail -1 | cut -d' ' -f2)
    timeout 90 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --variants w4a8-dynamic,w4a8-static
    [ -n "$best" ] && timeout 60 python3 benchmarks/bench_e2e.py --out "$OUT" --gemv "$best" --batches 1 --variants w4a8-dynamic
    ;;
  decode3)  # run 13: PDL + L2 prefetch, split-K by program count, fused q/k/v + gate/up; e2e
    timeout 100 python3 -m pytest -q tests/kernels/test_triton_w4a8.py -k "pdl or split or zeroes" 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    timeout 260 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --decode3 --shapes 0 --ms 1 "${@:2}"
    win=$(grep -o 'DECODE3_WINNER pdl=[01] target=[0-9]*' "$OUT/gemm_log.txt" | tail -1)
    pdl=$(echo "$win" | sed -n 's/.*pdl=\([01]\).*/\1/p'); tgt=$(echo "$win" | sed -n 's/.*target=\([0-9]*\).*/\1/p')
    opt="+t${tgt:-0}"; [ "$pdl" = 1 ] && opt="$opt+pdl"
    timeout 220 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --fp16-fused \
        --variants "w4a8-dynamic,w4a8-dynamic+fused,w4a8-dynamic+fused$opt,w4a8-static+fused$opt"
    ;;
  run14)  # GPU tests; split-K variants; per-channel ceiling at prefill M; eager e2e
    timeout 240 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --decode3 --per-channel-probe --shapes 0 --ms 1 "${@:2}"
    timeout 180 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --fp16-fused \
        --variants "w4a8-dynamic+fused,w4a8-static+fused"
    ;;
  run15)  # capped L2 prefetch with fewer splits; eager e2e with the winner
    timeout 120 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k pdl 2>&1 | tail -2 | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --decode3 --shapes 0 --ms 1
    win=$(grep -o 'DECODE3_WINNER.*' "$OUT/gemm_log.txt" | tail -1 | cut -d' ' -f2-)
    echo "settings: $win"
    timeout 150 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --kernel-settings "$win" \
        --variants "w4a8-dynamic+fused,w4a8-static+fused"
    ;;
  run16)  # workspace split-K; in-graph quantization under torch.compile (run 16 ran with it on by default)
    timeout 130 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    timeout 100 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --decode3 --shapes 0 --ms 1
    timeout 360 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --compile default \
        --compile-variants fp16,w4a8-dynamic+fused+opaque,w4a8-dynamic+fused+ingraph \
        --variants "w4a8-dynamic+fused+opaque,w4a8-dynamic+fused+ingraph"
    ;;
  run17)  # decode tile width x program target at M = 1 on every shape
    timeout 150 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --decode4 --shapes 0 --ms 1
    ;;
  compiled)  # decode under torch.compile: fp16 (as is and fused) vs W4A8 fused; args: kernel settings
    timeout 580 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --fp16-fused --compile default \
        --compile-variants fp16,fp16+fused,w4a8-dynamic+fused --variants "w4a8-dynamic+fused" --kernel-settings "${2:-}"
    ;;
  run18)  # session 5: GPU tests of the per-call split-K counters and the fp8 dispatch; kernel profile of compiled decode
    timeout 150 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 400 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1 --compile default --profile \
        --compile-variants fp16,w4a8-dynamic+fused --variants "w4a8-dynamic+fused"
    ;;
  run19)  # unpack-then-GEMM prefill path: GPU tests, sweep at prefill M, eager e2e with it and without
    timeout 150 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py --tb=short 2>&1 | tail -25 | tee "$OUT/pytest_gpu.txt"
    timeout 330 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --prefill-sweep --shapes 0 --ms 1
    timeout 150 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1 --variants "w4a8-dynamic+fused,w4a8-dynamic+fused+tiled"
    ;;
  run20|run21|run24|run25)  # Gluon wgmma prefill kernel: GPU tests, prefill sweep, eager e2e with the winner and the tiled kernel
    timeout 150 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "wgmma or large or fp8" --tb=short 2>&1 | tail -25 | tee "$OUT/pytest_gpu.txt"
    timeout 300 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --prefill-sweep --shapes 0 --ms 1
    win=$(grep -o 'PREFILL_WINNER.*' "$OUT/gemm_log.txt" | tail -1 | sed 's/.*: prefill=/prefill=/')
    echo "settings: $win"
    timeout 150 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1 --kernel-settings "$win" \
        --variants "w4a8-dynamic+fused,w4a8-dynamic+fused+tiled"
    ;;
  gpu-tests)  # every GPU-marked test in four parts, one device call each (the whole suite took ~22 minutes in runs
    # 231-234; two halves ran past a call's 600 s in run 226, and a third part past the inner 500 s in run 232):
    # `bash benchmarks/gpu_run.sh gpu-tests 1`, then 2, 3, 4 (every fourth test id, so that the slow swap-kernel cases
    # fall in all parts; `gpu-tests PART PARTS` for another split; `gpu-ids FILE` for the ids a cut part missed)
    parts=${3:-4}
    python3 -m pytest -q -m gpu --collect-only tests 2>/dev/null | grep "::" > "$OUT/ids_all.txt"
    awk -v part="${2:-1}" -v parts="$parts" 'NR % parts == part % parts' "$OUT/ids_all.txt" > "$OUT/ids.txt"
    echo "part ${2:-1} of $parts: $(wc -l < "$OUT/ids.txt") of $(wc -l < "$OUT/ids_all.txt") GPU tests"
    [ -s "$OUT/ids.txt" ] || { echo "no GPU tests collected"; exit 1; }  # (an empty list would run every test)
    # (-v: each test's outcome on its own line, kept even if the time limit cuts the run short)
    timeout 500 python3 -m pytest -v -rf --tb=short --durations=10 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -30
    ;;
  ncu)  # Nsight Compute on one launch of each prefill GEMM variant and cuBLAS int8 / fp16 (M N K)
    ncu --clock-control none --section SpeedOfLight --section WarpStateStats --section Occupancy --section SchedulerStats ${NCU_DETAILS:-} \
        --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis -k 'regex:gemm|Kernel|nvjet|cutlass|sm90' \
        python3 benchmarks/profile_prefill.py ${2:-4096} ${3:-4096} ${4:-4096} 2>&1 | tee "$OUT/ncu.txt" | grep -v "^==PROF==" | head -c 200000
    ;;
  ncu-swap)  # run 166: Nsight Compute on the installed swap GEMM alone (two-level g128) and cuBLAS fp16 (M N K): tensor
    # pipe, shared-memory and L2 throughput, warp stalls, per cycle and away from the power cap (one launch each)
    timeout 300 ncu --clock-control none --section SpeedOfLight --section ComputeWorkloadAnalysis \
        --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
        -k 'regex:swap|nvjet|sm90|gemm|cutlass' python3 benchmarks/profile_swap.py ${2:-1024} ${3:-5120} ${4:-5120} \
        > "$OUT/ncu.txt" 2>&1
    grep -v "^==PROF==" "$OUT/ncu.txt" | grep -iE "^  [a-z_]|duration|throughput|pipe|stall|issue|elapsed|busy|bank" \
        | head -150
    ;;
  ncu-swap-src)  # run 167: the same kernel's per-SASS-instruction stall samples (CSV) and full details, one launch
    ncu --clock-control none --section WarpStateStats --section SourceCounters --section SchedulerStats -k regex:swap \
        --launch-skip 1 --launch-count 1 -o "$OUT/swap" python3 benchmarks/profile_swap.py ${2:-1024} ${3:-5120} ${4:-5120} \
        > "$OUT/ncu_run.txt" 2>&1
    ncu -i "$OUT/swap.ncu-rep" --print-details all 2>&1 | head -c 150000 > "$OUT/ncu_details.txt"
    ncu -i "$OUT/swap.ncu-rep" --page source --print-source sass --csv > "$OUT/swap_sass.csv" 2>&1
    rm -f "$OUT/swap.ncu-rep"; ls -la "$OUT"; grep -iE "stall|warp cycles" "$OUT/ncu_details.txt" | head -40
    ;;
  ncu-ws)  # Nsight Compute on one launch of the warp-specialized prefill kernel (default settings; M N K): details and
    # per-SASS-instruction stall samples (CSV) for reading where the warps wait
    ncu --clock-control none --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section SourceCounters \
        --section ComputeWorkloadAnalysis -k regex:gemm_ws --launch-skip 1 --launch-count 1 -o "$OUT/ws" \
        python3 benchmarks/profile_prefill.py ${2:-4096} ${3:-4096} ${4:-4096} > "$OUT/ncu_run.txt" 2>&1
    ncu -i "$OUT/ws.ncu-rep" --print-details all 2>&1 | head -c 150000 > "$OUT/ncu.txt"
    ncu -i "$OUT/ws.ncu-rep" --page source --print-source sass --csv > "$OUT/ws_sass.csv" 2>&1
    rm -f "$OUT/ws.ncu-rep"; ls -la "$OUT"; grep -i "stall\|issue\|pipe" "$OUT/ncu.txt" | head -60
    ;;
  ncu-decode)  # Nsight Compute on one launch of each M <= 16 decode GEMM variant and cuBLAS fp16 (M N K)
    ncu --clock-control none --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
        --section MemoryWorkloadAnalysis -k 'regex:w4a8_kernel|decode_|gemv|gemm|Kernel|nvjet|cutlass' \
        python3 benchmarks/profile_decode.py ${2:-1} ${3:-28672} ${4:-8192} 2>&1 | tee -a "$OUT/ncu.txt" | grep -v "^==PROF==" | head -c 120000
    ;;
  run28)  # where the unpacked prefill path starts paying (PREFILL_MIN_M); e2e with a 256-token prefill
    timeout 200 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --prefill-threshold --shapes 0 --ms 1
    timeout 150 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1 --prefill 256 --variants "w4a8-dynamic+fused"
    ;;
  run30)  # prefill under torch.compile: fp16 vs W4A8 (layer as one opaque op / quantization traced into the graph)
    timeout 560 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1 --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+opaque,w4a8-dynamic+fused+ingraph \
        --variants "w4a8-dynamic+fused+opaque,w4a8-dynamic+fused+ingraph"
    ;;
  run31|run33|run35)  # Gluon mma.sync decode kernels: GPU tests, sweep against the Triton kernel at M <= 16
    timeout 200 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "gluon or pdl or large or split" --tb=short 2>&1 | tail -25 | tee "$OUT/pytest_gpu.txt"
    timeout 300 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --mma-decode --shapes 0 --ms 1
    ;;
  run35probe)
    timeout 200 python3 benchmarks/probe_decode.py 2>&1 | tee "$OUT/probe.txt"
    ;;
  run34)  # what limits the decode GEMMs: scales per step vs per channel, read floor; ncu of the TMA kernel
    timeout 200 python3 benchmarks/probe_decode.py 2>&1 | tee "$OUT/probe.txt"
    bash benchmarks/gpu_run.sh ncu-decode 1 28672 8192 > /dev/null 2>&1
    ;;
  run31e2e)  # e2e decode: Gluon kernel (settings in $2) vs the Triton kernel, eager+graph and compiled
    timeout 400 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --kernel-settings "${2:-}" --compile default \
        --compile-variants fp16,w4a8-dynamic+fused,w4a8-dynamic+fused+tritondecode \
        --variants "w4a8-dynamic+fused,w4a8-dynamic+fused+tritondecode"
    ;;
  session6)  # the end state of session 6: GPU tests, the decode GEMM table, e2e decode (dynamic and static)
    timeout 200 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1,16
    timeout 330 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --compile default \
        --compile-variants fp16,w4a8-dynamic+fused,w4a8-static+fused --variants "w4a8-dynamic+fused,w4a8-static+fused"
    ;;
  ncu-quant)  # Nsight Compute on the activation-quantization kernel at prefill sizes (M = 4096, K = 4096 / 11008)
    PROBE_NO_PROFILER=1 ncu --clock-control none --section SpeedOfLight --section WarpStateStats --section Occupancy \
        --section SchedulerStats --section MemoryWorkloadAnalysis -k regex:act_quant -c 4 \
        python3 benchmarks/probe_op_kernels.py 4096 4096 4096 4096 4096 11008 2>&1 | tee "$OUT/ncu.txt" | grep -v "^==PROF==" | head -c 120000
    ;;
  session7a)  # session 7, first call: the unverified end of session 6 (quantization split capped at 16 programs)
    timeout 200 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 120 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1,16
    timeout 250 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --compile default \
        --compile-variants fp16,w4a8-dynamic+fused --variants "w4a8-dynamic+fused"
    ;;
  session7)  # the end state of session 7: GPU tests, the prefill GEMM table, e2e prefill A/B (ws k2 / k1 / Triton GEMM)
    timeout 220 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 100 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1024,4096
    timeout 120 python3 benchmarks/probe_prefill.py --ms 1024,2048,4096 --no-kernel 2>&1 | tee "$OUT/probe.txt"
    timeout 260 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+ingraph,w4a8-dynamic+fused+ingraph+k1,w4a8-dynamic+fused+ingraph+tritonprefill \
        --variants "w4a8-dynamic+fused+ingraph,w4a8-dynamic+fused+ingraph+k1,w4a8-dynamic+fused+ingraph+tritonprefill"
    ;;
  session7final)  # GPU tests after the review fixes; e2e prefill default vs the Triton GEMM; host time per op
    timeout 220 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 60 python3 benchmarks/probe_host.py 2>&1 | head -2 | tee "$OUT/host.txt"
    timeout 200 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+ingraph,w4a8-dynamic+fused+ingraph+tritonprefill \
        --variants "w4a8-dynamic+fused+ingraph,w4a8-dynamic+fused+ingraph+tritonprefill"
    ;;
  session8a)  # session 8, first call: GPU tests (incl. the post-run-63 refactor), the ws kernel's consumers with the
    # column halves pipelined (default) vs whole tiles, kernel + op; e2e prefill A/B
    timeout 240 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/probe_prefill.py --ms 2048,4096 --variants default,ws128x128s6uk2w,triton 2>&1 | tee "$OUT/probe.txt"
    timeout 200 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+ingraph,w4a8-dynamic+fused+ingraph+whole \
        --variants "w4a8-dynamic+fused+ingraph,w4a8-dynamic+fused+ingraph+whole"
    ;;
  session8b)  # (run 65; its h / halfscales options were removed after it) GPU tests; the ws kernel with the scaling one step behind the MMA and fp32 scale rows, each alone
    # and together, vs the run-63 default (ph); e2e prefill A/B
    timeout 400 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 240 python3 benchmarks/probe_prefill.py --ms 2048,4096 \
        --variants ws128x128s6uk2,ws128x128s6uk2h,ws128x128s6uk2p,ws128x128s6uk2ph,triton 2>&1 | tee "$OUT/probe.txt"
    timeout 200 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+ingraph,w4a8-dynamic+fused+ingraph+plain+halfscales \
        --variants "w4a8-dynamic+fused+ingraph,w4a8-dynamic+fused+ingraph+plain+halfscales"
    ;;
  session8c)  # the ws kernel with float8 e4m3 operands (W4A8-FP8: fp32 partial sums, one FFMA per element and step)
    # vs int8, kernel + op; e2e prefill int8 vs fp8 activations
    timeout 200 python3 benchmarks/probe_prefill.py --ms 2048,4096 \
        --variants ws128x128s6uk2,ws128x128s6uk2f,ws128x128s6uk2pf 2>&1 | tee "$OUT/probe.txt"
    timeout 240 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+ingraph,w4a8-fp8+fused --variants "w4a8-dynamic+fused+ingraph,w4a8-fp8+fused"
    ;;
  session8d)  # W4A8-FP8 with its e4m3 quantization traced into the graph (QUANTIZE_IN_GRAPH): GPU test, e2e prefill
    timeout 200 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "fp8" 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 300 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+ingraph,w4a8-fp8+fused+ingraph \
        --variants "w4a8-dynamic+fused+ingraph,w4a8-fp8+fused+ingraph"
    ;;
  session8tests)  # all GPU tests at the end of session 8
    timeout 420 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py 2>&1 | tail -6 | tee "$OUT/pytest_gpu.txt"
    ;;
  session8final)  # the end state of session 8: GEMM table at prefill M, prefill kernels (one / two K steps per slot),
    # e2e prefill int8 and fp8 activations (quantization in the graph)
    timeout 150 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1024,4096
    timeout 120 python3 benchmarks/probe_prefill.py --ms 1024,4096 --variants ws128x128s6uk2,ws128x128s6uk1,ws128x128s6uk2f \
        2>&1 | tee "$OUT/probe.txt"
    timeout 300 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+ingraph,w4a8-fp8+fused+ingraph \
        --variants "w4a8-dynamic+fused+ingraph,w4a8-fp8+fused+ingraph"
    ;;
  session8q)  # the quantization kernel's fma-corrected division: exactness on the GPU, speed alone and in the ops, e2e
    timeout 200 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "exact or in_the_graph or quant" 2>&1 | tail -4 \
        | tee "$OUT/pytest_gpu.txt"
    timeout 120 python3 benchmarks/probe_quant_large.py --fma 2>&1 | tee "$OUT/quant.txt"
    timeout 150 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1024,4096
    timeout 250 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+ingraph,w4a8-fp8+fused+ingraph \
        --variants "w4a8-dynamic+fused+ingraph,w4a8-fp8+fused+ingraph"
    ;;
  session9a)  # next session's first call: re-time the activation quantization in / out of the compiled graph (run 75's
    # opaque prefill number is suspect), warm compile caches first (a throwaway 2-layer run), decode and prefill
    mkdir -p "$OUT/warm"; timeout 120 python3 benchmarks/bench_e2e.py --out "$OUT/warm" --layers 2 --batches 1 --compile default --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused,w4a8-dynamic+fused+opaque --variants "w4a8-dynamic+fused,w4a8-dynamic+fused+opaque" \
        > /dev/null 2>&1
    timeout 460 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --compile default --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused,w4a8-dynamic+fused+opaque,w4a8-dynamic+fused+ingraph \
        --variants "w4a8-dynamic+fused,w4a8-dynamic+fused+opaque,w4a8-dynamic+fused+ingraph"
    ;;
  session9t)  # session 9's first call: all GPU tests (the offline-only changes of session 8, the swap kernel), then
    # the prefill kernels alone: permuted scale rows (v) and the swap kernel (sw) against the ws kernel, int8 / fp8
    timeout 340 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py -p no:warnings 2>&1 | tail -25 \
        | tee "$OUT/pytest_gpu.txt"
    timeout 240 python3 benchmarks/probe_prefill.py --ms 2048,4096 \
        --variants ws128x128s6uk2,ws128x128s6uk2v,sw128s6,sw64s8,ws128x128s6uk2f,ws128x128s6uk2vf 2>&1 | tee "$OUT/probe.txt"
    ;;
  session9s)  # run 78: the swap kernel's consumers (one or two K steps per slot, scaling lagged or not): GPU tests of
    # the prefill kernels (SCALE_PERM removed), kernel / op timings against the ws kernel
    timeout 330 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "prefill_wgmma" -p no:warnings 2>&1 | tail -15 \
        | tee "$OUT/pytest_gpu.txt"
    timeout 240 python3 benchmarks/probe_prefill.py --ms 2048,4096 \
        --variants ws128x128s6uk2,sw128s6,sw128s6l,sw128s6k2,sw64s8k2l,ws128x128s6uk2f 2>&1 | tee "$OUT/probe.txt"
    ;;
  session9e)  # run 79: the last swap GPU test config (run 78's pytest ran out of time), e2e prefill ws vs swap (k2)
    # (run then with a 'swap' option; swap is the default since, 'ws' the option)
    timeout 120 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "prefill_wgmma and cfg6" -p no:warnings 2>&1 | tail -5 \
        | tee "$OUT/pytest_gpu.txt"
    mkdir -p "$OUT/warm"; timeout 90 python3 benchmarks/bench_e2e.py --out "$OUT/warm" --layers 2 --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused,w4a8-dynamic+fused+ws --variants "w4a8-dynamic+fused+ws" > /dev/null 2>&1
    timeout 300 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+ws,w4a8-dynamic+fused --variants "w4a8-dynamic+fused+ws,w4a8-dynamic+fused"
    ;;
  session9f)  # run 80: the swap kernel as the installed prefill default: GPU tests through the default path, GEMM table
    timeout 170 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py tests/test_shared_input.py -k "gpu_large or shared" \
        -p no:warnings 2>&1 | tail -5 | tee "$OUT/pytest_gpu.txt"
    timeout 200 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1024,4096
    ;;
  session9g)  # run 81: the remaining GPU tests with the swap default (prefill_wgmma passed in runs 78-79); from which M
    # the swap path pays (no unpack pass: maybe earlier than PREFILL_MIN_M's 512 / 1024 rows)
    timeout 200 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py -k "not prefill_wgmma" -p no:warnings 2>&1 \
        | tail -5 | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/probe_prefill.py --ms 64,128,256,512,1024 --variants default,sw128s6k2,sw64s8k2 --no-kernel 2>&1 \
        | tee "$OUT/probe.txt"
    ;;
  session9h)  # run 82: the swap path from 256 rows through the default dispatch: GPU tests (M = 256), GEMM table at 256 / 512
    timeout 100 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "gpu_large" -p no:warnings 2>&1 | tail -3 \
        | tee "$OUT/pytest_gpu.txt"
    timeout 100 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 128,256,512
    ;;
  session10a)  # next session's first call: the swap kernel's session-9 offline changes (scale rows read under the
    # wgmma, PREFETCH_WEIGHTS, GROUP_SUMS): its GPU tests, the 256-row dispatch, kernel / op probe, per channel
    timeout 320 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "(prefill_wgmma and (cfg5 or cfg6)) or gpu_large" \
        -p no:warnings 2>&1 | tail -5 | tee "$OUT/pytest_gpu.txt"
    timeout 140 python3 benchmarks/probe_prefill.py --ms 2048,4096 --variants ws128x128s6uk2,sw128s6k2,sw128s6k2p 2>&1 \
        | tee "$OUT/probe.txt"
    timeout 100 python3 benchmarks/probe_prefill.py --ms 2048 --group -1 --variants ws128x128s6uk2,sw128s6k2,sw128s6k2g 2>&1 \
        | tee "$OUT/probe_per_channel.txt"
    ;;
  session10b)  # run 83 (PREFETCH_WEIGHTS / GROUP_SUMS on): every other GPU test, the GEMM table (the issue's M but 4 / 64 / 8192)
    timeout 330 python3 -m pytest -q -m gpu tests/kernels tests/test_shared_input.py -k "not (prefill_wgmma and (cfg5 or cfg6))" \
        -p no:warnings 2>&1 | tail -5 | tee "$OUT/pytest_gpu.txt"
    timeout 200 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1,16,256,1024,4096
    ;;
  session10d)  # run 85: the quantization kernel reading 2-byte rows as int32 words (QUANT_WORDS): exactness, speed
    # alone (words vs element loads), GEMM-table ops, eager e2e prefill
    timeout 170 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "exact or in_the_graph or gpu_large or pdl_decode" \
        -p no:warnings 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 130 python3 benchmarks/probe_quant_large.py --words 2>&1 | tee "$OUT/quant.txt"
    timeout 90 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1,1024,4096
    timeout 100 python3 benchmarks/bench_e2e.py --out "$OUT" --batches "" --variants "w4a8-dynamic+fused"
    ;;
  session10e)  # run 88: the swap tile by rounds of tiles (`swap_tile`), the swap kernel from 256 rows at K > 16384
    timeout 90 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "gpu_large" -p no:warnings 2>&1 | tail -3 \
        | tee "$OUT/pytest_gpu.txt"
    timeout 70 python3 benchmarks/probe_prefill.py --ms 256 --variants default,sw64s8k2p,sw128s6k2p --no-kernel 2>&1 | tee "$OUT/probe.txt"
    timeout 60 python3 benchmarks/probe_prefill.py --long-k --ms 256,512 --variants default,sw128s6k2p --no-kernel 2>&1 \
        | tee "$OUT/probe_longk.txt"
    ;;
  session11a)  # next session's first call: medium M (64-192 rows) — the tiled kernel against the swap kernel's two
    # tiles on every probe shape (a row threshold for wide layers?), then the full GEMM table with the W4A16 baseline
    timeout 150 python3 benchmarks/probe_prefill.py --ms 64,128,192 --variants default,sw64s8k2p,sw128s6k2p --no-kernel 2>&1 \
        | tee "$OUT/probe.txt"
    timeout 100 python3 benchmarks/probe_prefill.py --long-k --ms 64,128,192 --variants default,sw64s8k2p,sw128s6k2p --no-kernel \
        2>&1 | tee "$OUT/probe_longk.txt"
    timeout 300 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --extra
    ;;
  session11b)  # then: the swap kernel reading the scales directly (DIRECT_SCALES, written offline in session 10) — its GPU
    # tests (swap configs in ten modes, three with DS) and the bf16 quantization exactness case
    timeout 540 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "(prefill_wgmma and (cfg5 or cfg6)) or exact" \
        -p no:warnings 2>&1 | tail -5 | tee "$OUT/pytest_gpu.txt"
    ;;
  session11c)  # and its speed: kernel and op against the installed schedule, 128- and 64-token tiles, per channel
    timeout 150 python3 benchmarks/probe_prefill.py --ms 256,1024,4096 --variants sw128s6k2p,sw128s6k2pd 2>&1 | tee "$OUT/probe.txt"
    timeout 80 python3 benchmarks/probe_prefill.py --ms 256 --variants sw64s8k2p,sw64s8k2pd --no-kernel 2>&1 | tee "$OUT/probe64.txt"
    timeout 100 python3 benchmarks/probe_prefill.py --ms 2048 --group -1 --variants sw128s6k2pg,sw128s6k2pgd 2>&1 \
        | tee "$OUT/probe_per_channel.txt"
    ;;
  session11x)  # run 89: the bf16 quantization exactness case; DIRECT_SCALES timing (11c); medium M on six shapes (11a's probes)
    timeout 120 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "exact" -p no:warnings 2>&1 | tail -3 \
        | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/probe_prefill.py --ms 256,1024,4096 --variants sw128s6k2p,sw128s6k2pd 2>&1 | tee "$OUT/probe_ds.txt"
    timeout 80 python3 benchmarks/probe_prefill.py --ms 256 --variants sw64s8k2p,sw64s8k2pd --no-kernel 2>&1 | tee "$OUT/probe_ds64.txt"
    timeout 100 python3 benchmarks/probe_prefill.py --ms 2048 --group -1 --variants sw128s6k2pg,sw128s6k2pgd 2>&1 \
        | tee "$OUT/probe_ds_per_channel.txt"
    timeout 100 python3 benchmarks/probe_prefill.py --ms 64,128,192 --variants default,sw64s8k2p,sw128s6k2p --no-kernel 2>&1 \
        | tee "$OUT/probe_medium.txt"
    timeout 60 python3 benchmarks/probe_prefill.py --long-k --ms 64,128,192 --variants default,sw64s8k2p,sw128s6k2p --no-kernel \
        2>&1 | tee "$OUT/probe_medium_longk.txt"
    ;;
  session11y)  # run 90: GPU tests of the swap kernel's ten modes (three with DIRECT_SCALES at every M, per channel
    # included) and the new medium-M dispatch (default against both forced swap tiles, ops)
    timeout 430 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "(prefill_wgmma and (cfg5 or cfg6)) or large" \
        -p no:warnings 2>&1 | tail -5 | tee "$OUT/pytest_gpu.txt"
    timeout 80 python3 benchmarks/probe_prefill.py --ms 64,128,192,256 --variants default,sw64s8k2pd,sw128s6k2pd --no-kernel 2>&1 \
        | tee "$OUT/probe_medium.txt"
    timeout 60 python3 benchmarks/probe_prefill.py --long-k --ms 64,128,192 --variants default,sw64s8k2pd,sw128s6k2pd --no-kernel \
        2>&1 | tee "$OUT/probe_medium_longk.txt"
    ;;
  session11f)  # run 92: the full GEMM table (every M of the issue, W4A16 / static / fp8 / g64 extras) with the medium-M
    # dispatch and DIRECT_SCALES; then a compiled 2048-token prefill with per-channel weights (fp16 in the same run)
    timeout 330 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --extra
    mkdir -p "$OUT/per_channel"
    timeout 260 python3 benchmarks/bench_e2e.py --out "$OUT/per_channel" --group-size -1 --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session11g)  # run 93: per-channel weights end to end, decode b1 / b16 (compiled) and prefill, fp16 in the same run
    timeout 420 python3 benchmarks/bench_e2e.py --out "$OUT" --group-size -1 --batches 1,16 --compile default --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session12a)  # run 95: two-level scales in the swap kernel (TL): its GPU tests, the swap kernel's regression test, and
    # the GEMM ops at prefill M, g128 per-group vs two-level vs fp16 / int8 in the same run
    timeout 300 python3 -m pytest -q -x tests/kernels/test_triton_w4a8.py -k "two_level_swap or (prefill_wgmma and swap)" 2>&1 | tail -5 | tee "$OUT/pytest_gpu.txt"
    timeout 280 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --two-level --ms 64,256,1024,4096,8192
    ;;
  session12b)  # run 96: compiled 2048-token prefill and decode with two-level g128 scales, fp16 in the same run
    timeout 420 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --compile default \
        --compile-prefill --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session12c)  # run 97: two-level (TL) token tiles at 512-2048 rows next to fp16 / int8 / per channel / fp16 scales
    timeout 300 python3 benchmarks/probe_two_level.py --tiles | tee "$OUT/probe_two_level.txt"
    ;;
  session12d)  # run 98: TL group scales one slot ahead vs before the slot (GPU test of both, then timings)
    timeout 200 python3 -m pytest -q -x tests/kernels/test_triton_w4a8.py -k "two_level_swap" 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    timeout 300 python3 benchmarks/probe_two_level.py --shapes 0,1,2,3,4 --ms 1024,4096 | tee "$OUT/probe_two_level.txt"
    ;;
  session12e)  # run 99: the GEMM table at prefill M with the final TL rule (two-level column), then a compiled 2048-token
    # prefill with two-level g128 scales (fp16 in the same run)
    timeout 250 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --two-level --ms 256,1024,4096,8192
    mkdir -p "$OUT/e2e"
    timeout 300 python3 benchmarks/bench_e2e.py --out "$OUT/e2e" --scale-format two-level --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session14b)  # run 117: the one-launch M = 1 decode (FUSED_DECODE_M1): its GPU tests and the decode-dispatch ones, the stream-K
    # test (flags now in `scratch`), then the fused op against the two launches (probe_fused_decode.py)
    timeout 300 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "fused or gluon_tma or pdl_decode or long_k_stays or swap_stream_k" 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 200 python3 benchmarks/probe_fused_decode.py --json "$OUT/fused.json" 2>&1 | tee "$OUT/probe_fused_decode.txt"
    ;;
  session14d)  # run 118: compiled decode b1, two-level g128: fp16, the two launches, the one-launch M = 1 op (same run)
    timeout 500 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1 --prefill 256 --compile default \
        --compile-variants fp16,w4a8-dynamic+fused+twolaunch,w4a8-dynamic+fused+onelaunch \
        --variants w4a8-dynamic+fused+twolaunch,w4a8-dynamic+fused+onelaunch
    ;;
  session14e)  # run 119: with the one-launch M = 1 op the default — the GPU tests of every decode / split-K / graph path and the
    # two-level swap test, then stream-K on 13B down / q/k/v/o at 256-1024 rows
    timeout 420 python3 -m pytest -q -m gpu tests/kernels tests/test_two_level.py -k "decode or pdl or split or tma or graph or two_level or fused or quantization or stream_k" 2>&1 | tail -6 | tee "$OUT/pytest_gpu.txt"
    timeout 120 python3 benchmarks/probe_stream_k.py --shapes 3,5120x13824 --ms 256,512,768,1024 --no-check | tee "$OUT/probe_stream_k.txt"
    ;;
  session14f)  # run 120: run 119's GPU tests again on the warm machine (run 119 stopped at its time limit after 33 passed), then the
    # GEMM table at 1024 / 4096 rows with the GEMM alone on pre-quantized activations (two-level column)
    timeout 330 python3 -m pytest -q -m gpu tests/kernels tests/test_two_level.py -k "decode or pdl or split or tma or graph or two_level or fused or quantization or stream_k" 2>&1 | tail -6 | tee "$OUT/pytest_gpu.txt"
    timeout 200 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --two-level --gemm-alone --ms 1024,4096 2>&1 | grep "M=" | tail -16
    ;;
  session14g)  # run 121: runs 119-120's GPU tests, verbose (both stopped at their limit after 32-33 passed, none failed)
    timeout 520 python3 -m pytest -v -m gpu tests/kernels tests/test_two_level.py -k "decode or pdl or split or tma or graph or two_level or fused or quantization or stream_k" 2>&1 | grep -E "PASS|FAIL|ERROR|SKIP|passed|failed|Warning" | tee "$OUT/pytest_gpu.txt" | tail -15
    ;;
  session14h)  # run 123: 256-row weight tiles in the swap kernel (WIDE): its GPU test, then wide vs 128-row tiles as ops
    timeout 200 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "swap_wide" 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    timeout 330 python3 benchmarks/probe_wide.py --json "$OUT/wide.json" | tee "$OUT/probe_wide.txt"
    ;;
  session14i)  # run 124: compiled 2048-token prefill, two-level g128: fp16, 256-row tiles by swap_tile (default), 128-row only;
    # the SW power-cap counters before / after
    nvidia-smi -q -d PERFORMANCE | grep -i -A1 "power cap" | tee "$OUT/perf_before.txt"
    timeout 480 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused,w4a8-dynamic+fused+narrow --variants w4a8-dynamic+fused,w4a8-dynamic+fused+narrow
    nvidia-smi -q -d PERFORMANCE | grep -i -A1 "power cap" | tee "$OUT/perf_after.txt"
    ;;
  session14j)  # run 125: run 124 in the other order (128-row tiles first) — its 128-row variant ran into the power cap
    nvidia-smi -q -d PERFORMANCE | grep -i -A1 "power cap" | tee "$OUT/perf_before.txt"
    timeout 480 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches "" --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused+narrow,w4a8-dynamic+fused --variants w4a8-dynamic+fused+narrow,w4a8-dynamic+fused
    nvidia-smi -q -d PERFORMANCE | grep -i -A1 "power cap" | tee "$OUT/perf_after.txt"
    ;;
  session14k)  # run 126: after the review fixes — WIDE (spy on the launch), stream-K (per-call flags), the one-launch decode
    # (own fallback key, scratch), two-level pipelines and swap dispatch (256-row tiles by default from 1024 rows)
    timeout 540 python3 -m pytest -v -m gpu tests/kernels tests/test_two_level.py -k "swap_wide or swap_stream_k or fused_decode_m1 or pipeline_two_level or two_level_swap" 2>&1 | grep -E "PASS|FAIL|ERROR|passed|failed" | tee "$OUT/pytest_gpu.txt" | tail -12
    ;;
  session14l)  # run 127: compiled 2048-token prefill, one W4A8 variant per process (fp16 first in each): 128-row tiles, then
    # the default (256-row tiles by swap_tile), a 20 s pause between; the SW power-capping counter logged around each
    for v in w4a8-dynamic+fused+narrow w4a8-dynamic+fused; do
      d="$OUT/${v//+/_}"; mkdir -p "$d"; nvidia-smi -q -d PERFORMANCE | grep -i "SW Power Capping" | tee -a "$OUT/perf.txt"
      timeout 250 python3 benchmarks/bench_e2e.py --out "$d" --scale-format two-level --batches "" --compile-prefill \
          --compile-variants fp16,$v --variants $v 2>&1 | grep -E "compiled prefill|vs fp16"
      sleep 20
    done
    nvidia-smi -q -d PERFORMANCE | grep -i "SW Power Capping" | tee -a "$OUT/perf.txt"
    ;;
  session19g)  # run 176: the other GPU tests that launch the swap kernel, with TL 4 (LOADER_SCALES) installed
    timeout 480 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py tests/test_two_level.py \
        tests/kernels/test_launch.py tests/kernels/test_launch_plans.py -k "swap_stream_k or (two_level_swap and cfg1) \
        or swap_pdl or swap_under_cudagraph_trees or swap_short_launches or pipeline_two_level or repeat_launches or \
        deciding_path" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error|assert" "$OUT/pytest_gpu.txt" | tail -40
    ;;
  session20a)  # run 182: the activation quantization alone at the GEMM table's 1024 / 4096-row shapes against its byte
    # floor; the compiled 2048-token prefill with CUDA graphs against fp16 and fp16 with q/k/v and gate/up fused
    timeout 150 python3 benchmarks/probe_quant_large.py --shapes \
        1024:4096,1024:5120,1024:8192,1024:11008,1024:28672,4096:4096,4096:5120,4096:11008,4096:28672 | tee "$OUT/quant.txt"
    timeout 420 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches "" --fp16-fused \
        --compile-prefill --prefill-mode reduce-overhead --prefill-reps 20 \
        --compile-variants fp16,fp16+fused,w4a8-dynamic+fused --variants w4a8-dynamic+fused | grep -v "^  compiled prefill #"
    ;;
  session20b)  # run 183: compiled decode b1 / b16 (context 512 in a 1024-position static cache) against fp16 and fused fp16
    timeout 560 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --fp16-fused --compile default --compile-variants fp16,fp16+fused,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session20c)  # run 184: compiled decode b16 at short and long contexts (static caches of 192 and 2112 positions)
    timeout 560 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 16 --prefill 256 \
        --context 128 --cache-len 192 --decode-contexts 2048:2112 --fp16-fused --compile default \
        --compile-variants fp16,fp16+fused,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session20d)  # run 185: the kernels of the compiled decode steps b1 / b16 at context 128 (cache 192): fused fp16, W4A8
    timeout 560 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --context 128 --cache-len 192 --fp16-fused --compile default --profile \
        --compile-variants fp16+fused,w4a8-dynamic+fused --variants w4a8-dynamic+fused > "$OUT/log.txt" 2>&1
    grep -E "compiled b|vs fp16|Self CUDA time total" "$OUT/log.txt"
    ;;
  session20e)  # run 186: the GEMM-only op at decode sizes on the kept zero counters (GPU test); compiled decode b16 at
    # context 128 (cache 192) with the quantization traced from 2 rows on (traced2) against the opaque op (the default)
    timeout 200 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py \
        -k "kept_counters or fused_decode_m1_in_cuda_graphs or quantization_in_the_graph" 2>&1 | tail -5 | tee "$OUT/pytest_gpu.txt"
    timeout 380 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 16 --prefill 256 \
        --context 128 --cache-len 192 --fp16-fused --compile default \
        --compile-variants fp16+fused,w4a8-dynamic+fused,w4a8-dynamic+fused+traced2 \
        --variants w4a8-dynamic+fused,w4a8-dynamic+fused+traced2 2>&1 | grep -E "compiled b|vs |failed|Error"
    ;;
  session20f)  # run 187: the quantization kernel as a programmatic dependent of the kernel before it (QUANT_PDL): GPU
    # tests of the PDL / quantization / CUDA-graph paths; ops at 16 / 1024 rows against it off; compiled decode b16
    timeout 240 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py \
        -k "pdl or quantization or cuda_graph or kept_counters or plan" 2>&1 | tail -6 | tee "$OUT/pytest_gpu.txt"
    timeout 200 python3 benchmarks/probe_swap_settings.py --variants "installed;tw.QUANT_PDL=False" --ms 16,1024 \
        --shapes 0,1,3 --no-gemm | tee "$OUT/ab.txt"
    timeout 300 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 16 --prefill 256 \
        --context 128 --cache-len 192 --compile default \
        --compile-variants w4a8-dynamic+fused,w4a8-dynamic+fused+noquantpdl \
        --variants w4a8-dynamic+fused,w4a8-dynamic+fused+noquantpdl 2>&1 | grep -E "compiled b|failed|Error"
    ;;
  session20g)  # run 188: the GEMM table at M = 1 / 4 / 16 with QUANT_PDL (two-level column; fp16, int8 in the same run)
    timeout 300 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --two-level --ms 1,4,16 2>&1 | grep "M=" \
        | tee "$OUT/table.txt"
    ;;
  session20h)  # run 189: the review's fixes (no PDL on layer tensors the call copied; the kept counters asserted by a
    # launch spy; ROCm guard) — the PDL / quantization / CUDA-graph / plan GPU tests and the two new ones
    timeout 300 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py \
        -k "pdl or quantization or cuda_graph or kept_counters or plan or copied_by_the_call" 2>&1 | tail -8 \
        | tee "$OUT/pytest_gpu.txt"
    ;;
  session26e)  # run 235: at M = 1 / 4 / 16, the op (two-level g128) against the GEMM alone on pre-quantized
    # activations (what a one-launch op at 4-16 rows could reach at most), every shape, cuBLAS fp16 in the same run
    timeout 420 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1,4,16 --two-level --gemm-alone \
        2>&1 | grep -E "two-level|GEMM alone" | sed -e 's/ int8 [0-9.]*us x[0-9.]*//' | tee "$OUT/summary.txt"
    ;;
  session28a)  # run 241: FUSED_PAIR (two K steps a weight-ring slot of the one-launch M = 1 op): the fused-decode GPU
    # tests on the refactored kernel (pair off), then bit-exactness pair vs installed and the timings at M = 1
    [ "${2:-}" = "sweep" ] || timeout 240 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py \
        -k "fused_decode_m1 or fused_row_readings or decode_gluon_tma" > "$OUT/pytest_gpu.txt" 2>&1
    grep -sE "passed|failed|^E |FAILED" "$OUT/pytest_gpu.txt" | tail -12
    timeout 300 python3 benchmarks/bench_gemm.py --no-check --pair-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | tail -80
    ;;
  session28b)  # run 244: FUSED_PAIR installed (pairs where `_pairs_pay`): the one-launch op's GPU tests and the M = 1
    # ops on every shape against cuBLAS fp16
    timeout 260 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k "fused_decode_m1 or \
fused_row_readings or fused_pairs or decode_gluon_tma or short_launches" > "$OUT/pytest_gpu.txt" 2>&1
    grep -sE "passed|failed|^E |FAILED" "$OUT/pytest_gpu.txt" | tail -12
    timeout 90 python3 benchmarks/bench_gemm.py --no-check --ms 1 --two-level --out "$OUT" 2>&1 | grep "x[0-9.]*fp16" \
        | tail -8
    ;;
  session28c)  # run 245: the two GPU tests run 244's time limit cut (-v), then the 7B-shaped decode (CUDA graph, b1 /
    # b16) with pairs off / on
    timeout 150 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k "fused_pairs or \
short_launches" > "$OUT/pytest_gpu.txt" 2>&1
    grep -sE "PASSED|FAILED|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -12
    mkdir -p /tmp/e2e
    for pair in 0 1; do
      timeout 115 python3 -c "
import runpy, sys
import fptq.kernels.triton_w4a8 as tw
tw.FUSED_PAIR = $pair
sys.argv = ['bench_e2e.py', '--out', '/tmp/e2e', '--scale-format', 'two-level', '--batches', '1,16', '--prefill', '256',
            '--variants', 'w4a8-dynamic+fused+prologue']
runpy.run_path('benchmarks/bench_e2e.py', run_name='__main__')" 2>&1 | grep -i "decode" | tail -4 | sed "s|^|pair=$pair |" \
        | tee -a "$OUT/ab.txt"
    done
    ;;
  session29a)  # runs 248-249 (the code of bd63a03): session 28's 2-16-row pairs again, with the GEMM-only op's
    # activation descriptor one step wide (run 246's failure): the TMA decode kernel's GPU tests; `sweep`:
    # `bench_gemm.py --pair-sweep` (then at M = 1 / 4 / 16; after the revert of the 2-16-row pairs, M = 1)
    [ "${2:-}" = "sweep" ] || timeout 330 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k \
"fused_pairs or fused_decode_m1 or decode_gluon_tma or pdl_decode or gemm_op_at_decode_sizes" > "$OUT/pytest_gpu.txt" 2>&1
    grep -sE "FAILED|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -12
    [ "${2:-}" = "tests" ] || timeout 420 python3 benchmarks/bench_gemm.py --no-check --pair-sweep --shapes 0 \
        --ms 1 --out "$OUT" 2>&1 | grep -v "^  " | grep -E "pair|PAIR" | tail -80
    ;;
  session29b)  # run 250: the 7B-shaped decode step (CUDA graph, uncompiled) at three KV-cache sizes: context 128 in a
    # 192-position static cache, 512 in 1024 (the default), 2048 in 2112; stock fp16, fp16 with q/k/v and gate/up merged
    timeout 560 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --fp16-fused --decode-contexts 128:192,2048:2112 --variants w4a8-dynamic+fused+prologue 2>&1 \
        | grep -iE "decode|weights|vs fp16" | tee "$OUT/summary.txt"
    ;;
  session29c)  # run 255: session24b's Nsight Compute on the one-launch M = 1 op, now paired (FUSED_PAIR), and again
    # without pairs in the same run (`profile_decode.py`'s last variant), 70B down and gate/up, cuBLAS fp16
    bash benchmarks/gpu_run.sh session24b
    ;;
  session29d)  # run 256: the TMA decode kernel's ring depth 3 / 4 / 5 / 6 with the paired one-launch op (M = 1) and at
    # M = 4 (unpaired), every shape, two-level g128, cuBLAS fp16 in the same run
    timeout 500 python3 benchmarks/bench_gemm.py --no-check --stages-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "stages|STAGES|WRONG" | tail -60
    ;;
  session29e)  # run 257: the decode kernel on a box-major copy of the weights (one contiguous block a ring slot) against
    # the packed row-major layout, M = 1 (paired one-launch op) and 4 (two launches), every shape, bit for bit and timed
    timeout 540 python3 benchmarks/probe_tiled_weights.py --ms "${2:-1,4}" --json "$OUT/tiled.json" 2>&1 \
        | grep -vE "^\s*$" | tail -40
    ;;
  session29f)  # run 258: the prefill swap kernel on the box-major copy (128-byte boxes) against row-major, M = 1024 /
    # 4096, the 8 LLaMA-2 shapes, two-level g128 (the layout a decode-friendly format would give the prefill)
    timeout 540 python3 benchmarks/probe_tiled_weights.py --ms "${2:-1024,4096}" --two-level --shapes 0,1,2,3,4,5,6,7 \
        --json "$OUT/tiled.json" 2>&1 | grep -vE "^\s*$" | tail -40
    ;;
  session32a)  # run 274: the GPU tests of the code not yet run on a GPU (session 31's last changes: the bounded wait,
    # canonical NaNs, the decode_flags key, the quantization kernel's zeroing, the caller-passed partials), then static
    # against dynamic activations and the GEMM alone at 1 / 4 / 16 rows, every shape (`bench_gemm.py --act-sweep`)
    cp benchmarks/results/ids_session31b.txt "$OUT/ids.txt"
    timeout 240 python3 -m pytest -v -rf --tb=short --durations=8 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -20
    timeout 330 python3 benchmarks/bench_gemm.py --no-check --act-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^act M|WRONG|Error|error|took" | tail -40
    ;;
  session32b)  # run 275: the TMA decode kernel's program target (K split) again with the flagged split launches, at
    # 1 / 4 / 16 rows, every shape (`bench_gemm.py --target-sweep`)
    timeout 560 python3 benchmarks/bench_gemm.py --no-check --target-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^target M|TARGET|WRONG|Error|error|took" | tail -45
    ;;
  session32c)  # run 276: the decode GEMM letting the next op's kernel be placed early (DECODE_TRIGGER): the chain test
    # (each op's input the previous op's output, eager and in a CUDA graph), then the trigger against none at 1 / 4 / 16
    # rows, every shape (`bench_gemm.py --trigger-sweep`)
    # (run 276 ran it as test_gpu_decode_trigger_chain_agrees, before it covered the swap kernel too)
    echo tests/kernels/test_triton_w4a8.py::test_gpu_trigger_chain_agrees > "$OUT/ids.txt"
    timeout 150 python3 -m pytest -v -rf --tb=short --durations=8 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -12
    timeout 400 python3 benchmarks/bench_gemm.py --no-check --trigger-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^trigger M|TRIGGER|WRONG|Error|error|took" | tail -45
    ;;
  session32d)  # run 277: DECODE_TRIGGER 2 installed, the prefill swap kernel's trigger new: the chain test (1 / 4 / 16 / 300
    # rows), the GPU tests of results/ids_session31b.txt, the swap trigger against none at 256 / 1024 rows
    (echo tests/kernels/test_triton_w4a8.py::test_gpu_trigger_chain_agrees; cat benchmarks/results/ids_session31b.txt) \
        > "$OUT/ids.txt"
    timeout 260 python3 -m pytest -v -rf --tb=short --durations=8 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -14
    timeout 150 python3 benchmarks/bench_gemm.py --no-check --swap-trigger-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^swaptrig M|SWAPTRIG|WRONG|Error|error|took" | tail -20
    ;;
  session32e)  # run 278: the 7B-shaped decode step (CUDA graph, uncompiled) with the decode trigger and without
    timeout 300 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --variants w4a8-dynamic+fused+prologue,w4a8-dynamic+fused+prologue+trig0 2>&1 \
        | grep -iE "decode|weights|vs fp16" | tee "$OUT/summary.txt"
    ;;
  session32f)  # run 279: the 2-16-row op with / without each programmatic dependent launch, and the GEMM alone with /
    # without PDL, at 4 / 16 rows, every shape (`bench_gemm.py --pdl-sweep`)
    timeout 500 python3 benchmarks/bench_gemm.py --no-check --pdl-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^pdl |PDL_|WRONG|Error|error|took" | tail -60
    ;;
  session32g)  # run 280: the 2-16-row op with / without PDL on wide layers of 1.5-5 rounds (`--waves-sweep`)
    timeout 400 python3 benchmarks/bench_gemm.py --no-check --waves-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^waves |WAVES_|WRONG|Error|error|took" | tail -40
    ;;
  session32h)  # run 282: the PDL loss on wide layers against the quantization programs' warps (`--placement-probe`)
    timeout 300 python3 benchmarks/bench_gemm.py --no-check --placement-probe --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^placement |PLACEMENT_|WRONG|Error|error|took" | tail -20
    ;;
  session32i)  # run 283: 2-4 rows of static activations in one launch (FUSED_STATIC_ROWS, new): its GPU test, then the
    # outputs and the ops against the two launches at 2 / 4 rows, every shape (`bench_gemm.py --static-rows-sweep`)
    echo tests/kernels/test_triton_w4a8.py::test_gpu_fused_static_rows_agree > "$OUT/ids.txt"
    timeout 100 python3 -m pytest -v -rf --tb=short --durations=3 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -12
    timeout 120 python3 benchmarks/bench_gemm.py --no-check --static-rows-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^static rows|^srows M|SROWS_|WRONG|Error|error|took" | tail -70
    ;;
  session33a)  # prepared in session 32, not yet run: the flagged reduction's peers a few at a time (FLAG_PEER_GROUP):
    # its GPU test, then all at once against 4 / 8 at a time on the 16-slice layers at 1 / 4 / 16 rows
    echo tests/kernels/test_triton_w4a8.py::test_gpu_flag_peer_groups_agree > "$OUT/ids.txt"
    timeout 120 python3 -m pytest -v -rf --tb=short --durations=3 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -12
    timeout 200 python3 benchmarks/bench_gemm.py --no-check --peers-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^peers M|PEERS_|WRONG|Error|error|took" | tail -20
    ;;
  session31d)  # run 272: the KSUB GPU tests with run 271's narrower rules and the flags test, then the M = 1 rule
    # against off (the flagged split launch) again
    printf '%s\n' tests/kernels/test_triton_w4a8.py::test_gpu_fused_ksub_agrees \
        tests/kernels/test_triton_w4a8.py::test_gpu_decode_ksub_agrees \
        tests/kernels/test_triton_w4a8.py::test_gpu_split_flags_agree > "$OUT/ids.txt"
    timeout 200 python3 -m pytest -v -rf --tb=short --durations=8 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -12
    timeout 200 python3 benchmarks/bench_gemm.py --no-check --ksub-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^ksub M|KSUB|WRONG|Error|error|TOO|FELL" | tail -20
    ;;
  session31c)  # run 271: the two tests run 270's timeout cut (fused row readings, prologue M = 1), then the KSUB rules
    # against the split launches now that those reduce without a counter (SPLIT_FLAGS): M = 1 and 2 / 4 / 8 rows
    printf '%s\n' tests/kernels/test_triton_w4a8.py::test_gpu_fused_row_readings_agree \
        tests/kernels/test_triton_w4a8.py::test_gpu_prologue_m1 > "$OUT/ids.txt"
    timeout 130 python3 -m pytest -v -rf --tb=short --durations=8 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -12
    timeout 200 python3 benchmarks/bench_gemm.py --no-check --ksub-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "^ksub M|KSUB|WRONG|Error|error|TOO|FELL" | tail -20
    mv "$OUT/gemm_log.txt" "$OUT/gemm_log_ksub.txt"; mv "$OUT/gemm.json" "$OUT/gemm_ksub.json"
    timeout 200 python3 benchmarks/bench_gemm.py --no-check --dksub-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "dksub M|DKSUB|WRONG|Error|error|TOO|FELL" | tail -40
    ;;
  session31a)  # run 269: the new / changed GPU tests first (KSUB since run 268's review, SPLIT_FLAGS, the kept buffers:
    # the first 6 of results/ids_session31.txt), then SPLIT_FLAGS against the counter (outputs at 1 / 2 / 4 / 16 rows, ops
    # at 1 / 4 / 16 alternated twice, every shape)
    # (a smoke test first: a reduction that never ends would hang everything after it)
    timeout 90 python3 -c "
import torch
from fptq.kernels import triton_w4a8 as tw
tw.FUSED_KSUB = 0
for n, k, m in ((4096, 4096, 1), (4096, 4096, 4), (1000, 11008, 16)):
    q = torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device='cuda')
    s = (torch.rand(n, k // 128, device='cuda') * 0.01).half()
    x = torch.randn(m, k, device='cuda', dtype=torch.float16)
    outs = []
    for on in (False, True):
        tw.SPLIT_FLAGS = on
        outs.append(tw.w4a8_linear(x, q, s, None, group_size=128, act_mode='dynamic'))
    torch.cuda.synchronize()
    print('smoke', n, k, m, 'equal' if torch.equal(*outs) else 'DIFFERENT')
" 2>&1 | tail -5 | tee "$OUT/smoke.txt"
    grep -q "smoke 1000 11008 16" "$OUT/smoke.txt" || { echo "SMOKE FAILED"; exit 1; }
    head -6 benchmarks/results/ids_session31.txt > "$OUT/ids.txt"
    timeout 200 python3 -m pytest -v -rf --tb=short --durations=8 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -30
    timeout 300 python3 benchmarks/bench_gemm.py --no-check --flags-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "flags M|FLAGS|WRONG|Error|error|TOO|FELL" | tail -60
    ;;
  session31b)  # run 270: the 7B-shaped decode step (CUDA graph, uncompiled) with and without SPLIT_FLAGS, stock fp16 and
    # fp16 merged in the same run; then the flags test (fixed after run 269) and the other GPU tests of
    # results/ids_session31.txt (the 2-16-row and one-launch paths)
    timeout 240 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --fp16-fused --variants w4a8-dynamic+fused+prologue,w4a8-dynamic+fused+prologue+noflags 2>&1 \
        | grep -iE "decode|weights|vs fp16" | tee "$OUT/summary.txt"
    (sed -n 5p benchmarks/results/ids_session31.txt; tail -n +7 benchmarks/results/ids_session31.txt) > "$OUT/ids.txt"
    timeout 330 python3 -m pytest -v -rf --tb=short --durations=8 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session30a)  # run 260: how fast anything can read each layer's packed int4 weights once in the GEMM harness (TMA rings
    # of 64 B ... 1 KB row segments, plain loads), against cuBLAS fp16 and our op at M = 1: the ceiling of the M <= 16 target
    timeout 560 python3 benchmarks/probe_stream_floor.py --shapes "${2:-all}" --json "$OUT/floor.json" 2>&1 \
        | grep -vE "^\s*$" | tail -40
    ;;
  session30b)  # run 262: the one-launch M = 1 op unsplit with KSUB K steps a slot (FUSED_KSUB 2 / 4 / 8, ring 3-6)
    # against the installed split launch: outputs compared on every shape and mode, then timed, every shape
    timeout 560 python3 benchmarks/bench_gemm.py --no-check --ksub-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "ksub|KSUB|WRONG|Error|error" | tail -80
    ;;
  session30f)  # run 268: DECODE_KSUB's rule against off (outputs, ops at 2 / 4 / 8 rows alternated), then the GPU tests of
    # the 2-16-row path and the KSUB ones (results/ids_session30c.txt)
    timeout 200 python3 benchmarks/bench_gemm.py --no-check --dksub-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "dksub M|DKSUB|WRONG|Error|error|TOO|FELL" | tail -40
    timeout 360 python3 -m pytest -v -rf --tb=short --durations=8 @benchmarks/results/ids_session30c.txt \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session30e)  # run 267: the 2-16-row GEMM unsplit with KSUB steps a slot over 16 / KSUB rows (DECODE_KSUB 4 / 2) against
    # the split launch: outputs at M = 2 / 3 / 4 / 8, then the ops at M = 2 / 4 / 8, every shape
    timeout 560 python3 benchmarks/bench_gemm.py --no-check --dksub-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "dksub M|DKSUB|WRONG|Error|error|TOO|FELL" | tail -60
    ;;
  session30d)  # run 266: KSUB with the codes made slot by slot (LAZY) on rows past 8192 columns and everywhere (the code
    # of 7023657; LAZY removed after this run: 2x slower)
    timeout 400 python3 benchmarks/bench_gemm.py --no-check --ksub-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "ksub|KSUB|WRONG|Error|error" | tail -60
    ;;
  session30c)  # run 263: the KSUB rule against the split launch (outputs, timings alternated), then the 7B-shaped decode
    # step (CUDA graph, uncompiled) with and without KSUB, stock fp16 and fp16 merged in the same run
    timeout 300 python3 benchmarks/bench_gemm.py --no-check --ksub-sweep --shapes 0 --ms 1 --out "$OUT" 2>&1 \
        | grep -v "^  " | grep -E "ksub|KSUB|WRONG|Error|error" | tail -60
    timeout 280 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --fp16-fused --variants w4a8-dynamic+fused+prologue,w4a8-dynamic+fused+prologue+noksub 2>&1 \
        | grep -iE "decode|weights|vs fp16" | tee "$OUT/summary.txt"
    ;;
  session29g)  # run 259: the prefill swap kernel on the box-major copy at 4096 rows again, six alternated rounds a layout,
    # the four MLP shapes (run 258's 4096-row timings were inside their own noise)
    timeout 540 python3 benchmarks/probe_tiled_weights.py --ms 4096 --two-level --shapes 1,4,6,7 --rounds 6 \
        --json "$OUT/tiled.json" 2>&1 | grep -vE "^\s*$" | tail -20
    ;;
  session27a)  # run 236: programs per row of the quantization kernel at 4 / 16 rows (QUANT_MAX_PROGRAMS budgets):
    # the kernel alone and the op, codes checked against the default, cuBLAS fp16 in the same run
    timeout 420 python3 benchmarks/probe_quant_parts.py --budgets 16,32,64,128,16 --ms 4,16 2>&1 | tee "$OUT/parts.txt"
    ;;
  session27b)  # run 237: budgets 16 / 32 alternated, at 2 / 4 / 8 / 16 rows (run 236: 32 helped 70B down at 4 rows and
    # hurt every shape at 16)
    timeout 420 python3 benchmarks/probe_quant_parts.py --budgets 16,32,16,32 --ms 2,4,8,16 2>&1 | tee "$OUT/parts.txt"
    ;;
  session27c)  # run 238: the new quantization budget by M (32 programs at 2-4 rows): the quantization GPU tests, then
    # the ops at 1 / 2 / 4 / 8 / 16 rows on every shape (two-level g128) against cuBLAS fp16
    timeout 200 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k "quant or parts or rows" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |FAILED" "$OUT/pytest_gpu.txt" | tail -12
    timeout 300 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --ms 1,2,4,8,16 --two-level 2>&1 \
        | grep -E "two-level" | sed -e 's/ int8 [0-9.]*us x[0-9.]*//' | tee "$OUT/summary.txt"
    ;;
  session27d)  # run 239: budgets 16 / 32 alternated at 2 / 4 rows on the shapes runs 236-237 left out (70B gate/up
    # looked slower at 4 rows in run 238) and the fused ones
    timeout 420 python3 benchmarks/probe_quant_parts.py --budgets 16,32,16,32 --ms 2,4 \
        --shapes "70B gate/up,7B q/k/v fused,7B gate+up fused,70B gate+up fused,70B down" 2>&1 | tee "$OUT/parts.txt"
    ;;
  session27e)  # run 240: warps of the quantization kernel's programs at 4 / 16 rows (default: 16 for rows held past
    # 16384 columns), budget 16: fewer warps take less SM room from the GEMM's early programs (runs 236-239)
    timeout 420 python3 benchmarks/probe_quant_parts.py --budgets 16 --warps 0,8,4,0,8 --ms 4,16 \
        --shapes "70B down,7B down,70B gate/up,13B gate/up,7B q/k/v/o" 2>&1 | tee "$OUT/warps.txt"
    ;;
  gpu-ids)  # the GPU tests listed in a file of test ids (one a line), e.g. those a cut `gpu-tests` part did not reach
    cp "$2" "$OUT/ids.txt"
    timeout 500 python3 -m pytest -v -rf --tb=short --durations=10 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session26d)  # run 230: the quantization kernel's one-pass rows padded to a power of two against two passes over
    # unpadded blocks (`probe_quant_large.py --passes`)
    timeout 300 python3 benchmarks/probe_quant_large.py --passes 2>&1 | tee "$OUT/quant.txt"
    ;;
  session26c)  # run 229: the activation-quantization kernel alone at prefill sizes against its byte floor and against
    # a cast of the same bytes (`x.to(torch.int8)`: a memory-bound kernel of that size, launch and tail included)
    timeout 300 python3 benchmarks/probe_quant_large.py --shapes \
        1024:4096,1024:5120,1024:8192,1024:11008,1024:28672,4096:4096,4096:5120,4096:11008,2048:4096 \
        2>&1 | tee "$OUT/quant.txt"
    ;;
  session26b)  # run 228: the GPU tests run 226 did not reach (since session 23), after the launch test as the first of
    # an id list in a fresh process (as in run 226, where it failed)
    printf '%s\n' tests/kernels/test_launch.py::test_gpu_repeat_launches_skip_the_binder \
        tests/kernels/test_triton_w4a8.py::test_gpu_silu_every_gate_value \
        "tests/kernels/test_triton_w4a8.py::test_gpu_gemm_op_at_decode_sizes_takes_the_kept_counters[16]" \
        tests/kernels/test_triton_w4a8.py::test_gpu_fp8_per_channel_long_k \
        "tests/kernels/test_triton_w4a8.py::test_gpu_fp8_quantization_in_the_graph[600]" > "$OUT/ids.txt"
    timeout 500 python3 -m pytest -v -rf --tb=long --durations=10 @"$OUT/ids.txt" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|^E |passed|failed|s call" "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session26a)  # run 227: the launch test that failed as run 226's first test, alone in a fresh process; the one-launch
    # op's readings test (revised in session 25: one launch, K tail, groups of 256, the 64-step hold limit; now also the
    # held load masked to the slice's steps, HOLD == 2); the prologue sweep with "hold masked"
    timeout 90 python3 -m pytest -v --tb=long -p no:cacheprovider \
        tests/kernels/test_launch.py::test_gpu_repeat_launches_skip_the_binder > "$OUT/pytest_launch.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED" "$OUT/pytest_launch.txt" | tail -30
    timeout 240 python3 -m pytest -v --tb=short tests/kernels/test_triton_w4a8.py -k "fused_row_readings" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED" "$OUT/pytest_gpu.txt" | tail -12
    timeout 220 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --prologue-sweep --shapes 7 --ms 1 \
        --two-level 2>&1 | grep "^prologue" | sed -e 's/ fp16 [0-9.]*us//' | tee "$OUT/summary.txt"
    ;;
  session25e)  # run 225: the GPU tests outside the kernels' own file (pipelines through QuantConfig, prologue and shared
    # inputs on CUDA) and the launch-key tests (the one-launch op's new constexprs against Triton's binder)
    timeout 560 python3 -m pytest -q --tb=short --durations=8 -m gpu tests/test_two_level.py tests/test_prologue.py \
        tests/test_shared_input.py tests/kernels/test_launch.py tests/kernels/test_launch_plans.py \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED|s call" "$OUT/pytest_gpu.txt" | tail -20
    ;;
  session25d)  # run 224: the 7B-shaped model's decode (CUDA graph, b1 / b16) with the new one-launch reading against the
    # session's start (`_ab_old/src`, an untracked copy made for this run), alternated
    mkdir -p /tmp/e2e
    for tree in src _ab_old/src src _ab_old/src; do
      PYTHONPATH=$tree timeout 130 python3 benchmarks/bench_e2e.py --out "/tmp/e2e" --scale-format two-level \
          --batches 1,16 --prefill 256 --fp16-fused --variants w4a8-dynamic+fused+prologue 2>&1 | tail -8 \
          | sed "s|^|$tree |" | tee -a "$OUT/ab.txt"
    done
    ;;
  session25c)  # run 223: the installed hold (split launches) + unrolled absmax: the one-token GPU tests, then the
    # prologue sweep (installed / session 24's reading / unroll only / 4096-column passes / installed again)
    timeout 300 python3 -m pytest -q -s --tb=short tests/kernels/test_triton_w4a8.py -k "fused_decode_m1 or \
        prologue_m1 or fused_row_readings or gpu_prologue_rows or pdl_decode or decode_long_k or kept_counters" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED" "$OUT/pytest_gpu.txt" | tail -12
    timeout 250 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --prologue-sweep --shapes 7 --ms 1 \
        --two-level 2>&1 | grep "^prologue" | sed -e 's/ fp16 [0-9.]*us//' | tee "$OUT/summary.txt"
    ;;
  session25b)  # run 222: the prologue sweep again with an unsplit row's scale from the held words (FUSED_WHOLE), twice
    for i in 1 2; do
      mkdir -p "/tmp/p$i"
      timeout 280 python3 benchmarks/bench_gemm.py --out "/tmp/p$i" --no-check --prologue-sweep --shapes 7 --ms 1 \
          --two-level 2>&1 | grep "^prologue" | sed -e 's/ fp16 [0-9.]*us//' -e "s/^/$i /" | tee -a "$OUT/summary.txt"
    done
    ;;
  session25a)  # run 221: how the one-launch M = 1 op reads the row after its PDL wait (`bench_gemm.py --prologue-sweep`:
    # the slice held in registers, unrolled absmax passes, wider quantization passes), bit for bit and timed, every shape
    timeout 560 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --prologue-sweep --shapes 7 --ms 1 \
        --two-level 2>&1 | tee "$OUT/summary.txt" | grep -v "^prologue M="
    grep "^prologue M=" "$OUT/summary.txt" | sed -e 's/ fp16 [0-9.]*us//'
    ;;
  session24a)  # run 214: the TMA decode kernel's tile width / ring depth / program target on two-level scales
    # (`bench_gemm.py --tma-sweep`), then the M <= 16 table of 70B q/o and down with both scale formats
    timeout 560 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --tma-sweep --shapes 5,7 --ms 1,4,16 \
        --two-level 2>&1 | grep -v "^tma M=" > "$OUT/summary.txt"
    cat "$OUT/summary.txt"
    ;;
  session24f)  # run 219: the one-launch op's absmax on the 16-bit patterns (fewer registers): its GPU tests (a row with
    # NaNs, -0, a subnormal), then ops at M = 1 on every shape, this code against the session's start (`_ab_old/src`,
    # an untracked copy made for this run), alternated twice
    timeout 300 python3 -m pytest -q -s --tb=short tests/kernels/test_triton_w4a8.py \
        -k "fused_decode_m1 or prologue_m1 or gpu_prologue_rows" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED" "$OUT/pytest_gpu.txt" | tail -12
    for i in 1 2; do
      for tree in src _ab_old/src; do
        tag=$(echo $tree | tr '/' _)
        mkdir -p "/tmp/$tag$i"
        PYTHONPATH=$tree timeout 100 python3 benchmarks/bench_gemm.py --out "/tmp/$tag$i" --no-check --ms 1 \
            --two-level 2>&1 | grep "two-level" | sed "s|^|$tree $i |" | tee -a "$OUT/ab.txt"
      done
    done
    ;;
  session24e)  # run 218: the TMA decode kernel's program target 264 / 396 / 528 / 660 at M = 1 / 16, every shape
    timeout 300 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --target-sweep --shapes 7 --ms 1 \
        --two-level 2>&1 | tee "$OUT/summary.txt" | grep -v "^target M="
    grep "^target M=" "$OUT/summary.txt" | sed -e 's/ x[0-9.]*//g' -e 's/ fp16 [0-9.]*us//'
    ;;
  session24d)  # run 217: the staged group scales' bound (TMA_MAX_GROUPS 64 / 128: 70B down's K split 4 / 3 / 2) at
    # M = 1 / 4 / 16 (`bench_gemm.py --groups-sweep`), two-level scales
    timeout 300 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --groups-sweep --shapes 7 --ms 1 \
        --two-level 2>&1 | tee "$OUT/summary.txt" | grep -v "^groups M=" 
    grep "^groups M=" "$OUT/summary.txt"
    ;;
  session24c)  # run 216: the TMA decode kernel's L2 prefetch of the weights past its ring (PF_LINES): the decode GPU
    # tests, then `bench_gemm.py --prefetch-sweep` (steps and budget, every shape, M = 1 / 4 / 16, two-level scales).
    # Slower everywhere: removed after the run (the code: commit 839b0a9)
    timeout 280 python3 -m pytest -q -s --tb=short tests/kernels/test_triton_w4a8.py -k "pdl_decode or decode_long_k \
        or decode_gluon_tma or fused_decode_m1 or prologue_m1 or prologue_rows or decode_short or kept_counters \
        or no_pdl_on" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED" "$OUT/pytest_gpu.txt" | tail -12
    timeout 300 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --prefetch-sweep --shapes 5,7 --ms 1,16 \
        --two-level 2>&1 | grep -v "^prefetch M=" > "$OUT/summary.txt"
    cat "$OUT/summary.txt"
    ;;
  session24b)  # run 215: Nsight Compute on the installed M = 1 op (the TMA kernel) and cuBLAS fp16 on 70B down and
    # gate/up: where the 2.1 TB/s goes (memory pipes, stalls per SASS instruction)
    for shape in "1 8192 28672" "1 28672 8192"; do
      tag=$(echo $shape | tr ' ' _)
      timeout 200 ncu --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \
          --section MemoryWorkloadAnalysis_Tables --section WarpStateStats --section SchedulerStats --section Occupancy \
          --section LaunchStats -k 'regex:decode_tma|nvjet|gemv' -o "$OUT/d$tag" \
          python3 benchmarks/profile_decode.py $shape > "$OUT/ncu_run_$tag.txt" 2>&1
      ncu -i "$OUT/d$tag.ncu-rep" --print-details all 2>&1 | head -c 400000 > "$OUT/ncu_$tag.txt"
      rm -f "$OUT/d$tag.ncu-rep"
    done
    timeout 200 ncu --clock-control none --section WarpStateStats --section SourceCounters -k regex:decode_tma \
        --launch-skip 1 --launch-count 1 -o "$OUT/src" python3 benchmarks/profile_decode.py 1 8192 28672 \
        > "$OUT/ncu_src_run.txt" 2>&1
    ncu -i "$OUT/src.ncu-rep" --page source --print-source sass --csv 2>&1 | gzip > "$OUT/down_sass.csv.gz"
    rm -f "$OUT/src.ncu-rep"; ls -la "$OUT"
    grep -iE "^  [a-z_]|duration|dram throughput|memory throughput|l2 hit|l1/tex hit|stall|achieved occupancy|registers" \
        "$OUT"/ncu_1_*.txt | head -120
    ;;
  session23g)  # run 213: after the final cleanup (`_silu_glu` keeps divisions 0 / 2 only): every gate value through
    # the kernel, the SiLU / norm prologue rows, tiny fused models; `probe_silu.py` on the two divisions
    timeout 200 python3 -m pytest -q -s --tb=short tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        -k "silu or gpu_prologue_rows or prologue_model" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED|bit-exact|rel " "$OUT/pytest_gpu.txt" | tail -24
    timeout 100 python3 benchmarks/probe_silu.py --rows 16,2048 --json "$OUT/silu.json" 2>&1 | tee "$OUT/silu.txt"
    ;;
  session23f)  # run 212: after the review: the prologue / SiLU GPU tests (one-token and two-pass SiLU cases, bit for
    # bit), the one-token dispatch, fused models
    timeout 240 python3 -m pytest -q -s --tb=short tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        -k "prologue or normalizes_rows or silu or quantization_kernel_error or fused_model or fused_decode_m1" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED|bit-exact|rel " "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session23e)  # run 210: the final code (SILU_MAX_K 32768, SILU_DIV 2, SILU_MIN_ROWS 1): every GPU-marked test
    timeout 560 python3 -m pytest -q -m gpu --tb=short tests > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED" "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session23d)  # run 209: SiLU rows past one pass in blocks of SILU_MAX_K columns at 16 warps; the kernel alone with
    # SILU_MAX_K 16384 (70B down in two passes) against 32768 (one pass: 112 registers offline); the ops on the downs
    timeout 120 python3 benchmarks/probe_silu.py --rows 1,16,2048 --max-k 16384,32768 --variants 1/2,1/0 \
        --json "$OUT/silu.json" 2>&1 | tee "$OUT/silu.txt"
    timeout 100 python3 benchmarks/probe_prologue.py --kind silu --rows 1,16,2048 --torch-norm \
        --json "$OUT/prologue_silu.json" 2>&1 | tee "$OUT/prologue_silu.txt"
    timeout 100 python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import probe_prologue as p
p.tw.SILU_MAX_K = 32768; sys.argv = ['probe_prologue.py', '--kind', 'silu', '--rows', '1,16,2048', '--torch-norm']
sys.exit(p.main())" 2>&1 | tee "$OUT/prologue_silu_one_pass.txt"
    ;;
  session23c)  # run 208: SiLU with the fast division (SILU_DIV 2) and one token inside too (SILU_MIN_ROWS 1): GPU
    # tests (every gate value through the kernel, prologue rows, tiny models); the ops; eager steps / prefills
    # interleaved (norms alone moved vs norms + SiLU * up); CUDA-graph decode b1 / b16 without compile
    timeout 200 python3 -m pytest -q -s --tb=short tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        -k "prologue or normalizes_rows or silu or quantization_kernel_error or fused_model" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED|bit-exact|rel " "$OUT/pytest_gpu.txt" | tail -24
    timeout 100 python3 benchmarks/probe_prologue.py --kind silu --rows 1,16,2048 --torch-norm \
        --json "$OUT/prologue_silu.json" 2>&1 | tee "$OUT/prologue_silu.txt"
    timeout 150 python3 benchmarks/probe_eager.py --model 32 --rows 1,16 --prefill 256,2048 --rounds 7 --calls 3 \
        --variants fp16,norms,prologue --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    timeout 200 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --fp16-fused --variants w4a8-dynamic+fused+prologue 2>&1 | tail -14
    ;;
  session23b)  # run 207: SiLU's division (`_silu_glu` DIV) and exp: every 16-bit gate value against F.silu per
    # variant, the quantization kernel alone per variant at 16 / 2048 rows; the prologue GPU test again (70B down)
    timeout 200 python3 -m pytest -q -s --tb=short tests/kernels/test_triton_w4a8.py -k "gpu_prologue_rows" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED|bit-exact|rel " "$OUT/pytest_gpu.txt" | tail -24
    timeout 240 python3 benchmarks/probe_silu.py --rows 16,2048 --json "$OUT/silu.json" 2>&1 | tee "$OUT/silu.txt"
    ;;
  session23a)  # run 206: SiLU * up in two passes past SILU_MAX_K (70B down), the quantization kernel's errors not
    # blamed on the Gluon decode kernel; GPU tests of the prologue paths; SiLU * up before the down projections at 1 /
    # 16 / 2048 rows: torch ops, compiled, inside as installed, inside at any row count (M = 1 too), on a ready input
    timeout 240 python3 -m pytest -q -s --tb=short tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        -k "prologue or normalizes_rows or silu or quantization_kernel_error or fused_model" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED|bit-exact|rel " "$OUT/pytest_gpu.txt" | tail -24
    timeout 200 python3 benchmarks/probe_prologue.py --kind silu --rows 1,16,2048 --torch-norm \
        --json "$OUT/prologue_silu.json" 2>&1 | tee "$OUT/prologue_silu.txt"
    ;;
  session22g)  # run 205: SiLU * up inside or not, interleaved: W4A8 with the norms alone moved against the norms and
    # SiLU * up (and fp16), eager b16 steps and prefills of 256 / 2048 tokens
    timeout 200 python3 benchmarks/probe_eager.py --model 32 --rows 16 --prefill 256,2048 --rounds 9 --calls 3 \
        --variants fp16,norms,prologue --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    ;;
  session22f)  # run 204: SiLU * up inside the down projection's quantization kernel at more than one row (SILU,
    # `GatedMLP`): GPU tests; eager steps / prefills interleaved; CUDA-graph decode b1 / b16 and the compiled step
    timeout 170 python3 -m pytest -q -s --tb=short tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        -k "prologue or normalizes_rows" 2>&1 | grep -E "passed|failed|^E |FAILED|bit-exact|rel " | tail -24 \
        | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/probe_eager.py --model 32 --rows 1,16 --prefill 256,2048 --rounds 7 --calls 3 \
        --variants fp16,w4a8,prologue --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    timeout 260 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --fp16-fused --compile default --compile-variants w4a8-dynamic+fused+prologue \
        --variants w4a8-dynamic+fused+prologue 2>&1 | grep -v "^  compiled prefill #" | tail -20
    ;;
  session22e)  # run 203: the final code's compiled decode step (the norm traced, as before) against fused fp16
    timeout 560 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --fp16-fused --compile default --compile-variants fp16+fused,w4a8-dynamic+fused+prologue \
        --variants w4a8-dynamic+fused+prologue 2>&1 | grep -v "^  compiled prefill #" | tail -30
    ;;
  session22d)  # run 202: uncompiled `model.generate` (dynamic cache, batch 1, 32 new tokens) of fp16 / W4A8 / W4A8 with the
    # norms inside, interleaved round by round (run 201 timed it once, one model after the other)
    timeout 400 python3 benchmarks/probe_eager.py --model 32 --rows 1 --rounds 5 --calls 3 --generate 32 \
        --variants fp16,w4a8,prologue --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    ;;
  session22c)  # run 201: `model.generate` as a user runs it (batch 1, 512-token prompt, 64 new tokens), eager with the
    # dynamic cache and compiled with the static cache: fp16 against W4A8 with the norms inside (load_quantized's setup)
    # (first: the review fixes' tests on the GPU — the one-launch test now forbids the two launches, the kept plan
    # follows a `.data` swap, and the unmarked NORM tests, bit for bit in bf16 on a GPU)
    timeout 150 python3 -m pytest -q --tb=short tests/kernels/test_triton_w4a8.py tests/test_prologue.py -k "prologue or \
        normalizes_rows" 2>&1 | grep -E "passed|failed|^E |FAILED" | tail -12 | tee "$OUT/pytest_gpu.txt"
    timeout 420 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1 --prefill 256 \
        --generate 64 --variants w4a8-dynamic+fused+prologue 2>&1 | tail -30
    ;;
  session22b)  # run 200: the fixed prologue-rows test; all-static W4A8 (FPTQ's usual layers) with and without the norms
    # inside: CUDA-graph decode b1 / b16 and the eager prefill of 2048 tokens, against fp16 in the same run
    timeout 100 python3 -m pytest -q -s --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k "prologue_rows" \
        2>&1 | grep -E "passed|failed|^E |bit-exact|rel " | tail -10 | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 2048 \
        --fp16-fused --variants w4a8-static+fused,w4a8-static+fused+prologue 2>&1 | tail -30
    ;;
  session22a)  # run 199: the RMSNorm inside the quantization kernel at more than one row (`_act_quant_kernel` NORM):
    # GPU tests of the prologue paths (2-2048 rows), fused M = 1, plans, PDL decode; the ops at 1 / 16 / 2048 rows with
    # the eager torch norm, a compiled norm, the norm inside, on a ready row; eager steps and prefills interleaved;
    # CUDA-graph decode b1 / b16 without compile
    timeout 180 python3 -m pytest -v -s --tb=short -m gpu tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        tests/test_shared_input.py tests/kernels/test_launch_plans.py -k "prologue or fused_decode_m1 or \
        decode_short_launches or fused_model or plan or pdl_decode" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED|bit-exact|rel " "$OUT/pytest_gpu.txt" | tail -24
    timeout 100 python3 benchmarks/probe_prologue.py --rows 1,16,2048 --torch-norm --json "$OUT/prologue.json"
    timeout 150 python3 benchmarks/probe_eager.py --model 32 --rows 1,16 --prefill 256,2048 --rounds 7 --calls 3 \
        --variants fp16,w4a8,prologue --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    timeout 120 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --fp16-fused --variants w4a8-dynamic+fused,w4a8-dynamic+fused+prologue 2>&1 | tail -30
    ;;
  session21a)  # run 191: prologues (RMSNorm, SiLU * up) in the one-launch M = 1 op: its GPU tests, the fused M = 1 and
    # CUDA-graph neighbours, the tiny models with prologues against without
    timeout 400 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        tests/test_shared_input.py -k "prologue or fused_decode_m1 or decode_short_launches or fused_model" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error" "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session21b)  # run 192: compiled decode b1 / b16 (context 512, cache 1024): fp16, fused fp16, W4A8 fused, then with the
    # prologues moved into the linears
    timeout 580 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --fp16-fused --compile default --compile-variants fp16,fp16+fused,w4a8-dynamic+fused,w4a8-dynamic+fused+prologue \
        --variants w4a8-dynamic+fused,w4a8-dynamic+fused+prologue
    ;;
  session21c)  # run 193: why the compiled b1 step got slower with prologues (run 192): the prologue op against the
    # compiled prologue kernel + op and the plain op; the kernels of both compiled b1 steps; the fixed GPU test
    timeout 100 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k "prologue_m1" 2>&1 | tail -3 \
        | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/probe_prologue.py --json "$OUT/prologue.json"
    timeout 300 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1 --prefill 256 \
        --compile default --profile --compile-variants w4a8-dynamic+fused,w4a8-dynamic+fused+prologue \
        --variants w4a8-dynamic+fused,w4a8-dynamic+fused+prologue > "$OUT/log.txt" 2>&1
    grep -E "compiled b|Self CUDA time total|_decode_tma|triton_|act_quant|aten|elementwise|reduce" "$OUT/log.txt" | head -60
    ;;
  session21d)  # run 194: the RMSNorm prologue alone, fused in eager calls only: GPU tests, the op probe, decode b1 / b16
    # eager, CUDA graph and compiled without and with the prologues (fp16 and fused fp16 alongside)
    timeout 150 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        tests/test_shared_input.py -k "prologue or fused_decode_m1 or decode_short_launches or fused_model" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error" "$OUT/pytest_gpu.txt" | tail -20
    timeout 60 python3 benchmarks/probe_prologue.py --json "$OUT/prologue.json"
    timeout 380 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --prefill 256 \
        --eager-decode --fp16-fused --compile default --compile-variants fp16+fused,w4a8-dynamic+fused,w4a8-dynamic+fused+prologue \
        --variants w4a8-dynamic+fused,w4a8-dynamic+fused+prologue 2>&1 | grep -v "^  compiled prefill #"
    ;;
  session21e)  # run 195: the RMSNorm prologue with passes of at most 4096 columns (13B's registers): its GPU test, the op
    # probe, whole eager decode steps of the 7B shape, fp16 / W4A8 / W4A8 with prologues interleaved round by round
    timeout 100 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        -k "prologue" 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    timeout 60 python3 benchmarks/probe_prologue.py --json "$OUT/prologue.json"
    timeout 300 python3 benchmarks/probe_eager.py --model 32 --rows 1,16 --rounds 11 --calls 5 \
        --variants fp16,w4a8,prologue --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    ;;
  session21f)  # run 196: after the review (the norm inside `w4a8_linear` itself, kernel shapes and weight alignment
    # checked): the GPU tests of the prologue, fused M = 1, plans and PDL decode paths; the op probe; eager 32-layer
    # decode steps and prefills (256 / 2048 tokens), fp16 / W4A8 / W4A8 with the norms inside, interleaved
    timeout 240 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        tests/test_shared_input.py tests/kernels/test_launch_plans.py -k "prologue or fused_decode_m1 or \
        decode_short_launches or fused_model or plan or pdl_decode" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error" "$OUT/pytest_gpu.txt" | tail -30
    timeout 60 python3 benchmarks/probe_prologue.py --json "$OUT/prologue.json"
    timeout 240 python3 benchmarks/probe_eager.py --model 32 --rows 1,16 --prefill 256,2048 --rounds 9 --calls 3 \
        --variants fp16,w4a8,prologue --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    ;;
  session21g)  # run 197: static int8 activations in the one-launch M = 1 op (the layer's scale, no absmax): the GPU
    # tests of the one-launch op (dynamic and static, with and without the norm inside), plans, PDL decode, the tiny
    # models; compiled decode b1 of an all-static W4A8 model, two launches against one
    timeout 170 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py tests/test_prologue.py \
        tests/test_shared_input.py tests/kernels/test_launch_plans.py -k "prologue or fused_decode_m1 or \
        decode_short_launches or fused_model or plan or pdl_decode" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "passed|failed|^E |Error|FAILED" "$OUT/pytest_gpu.txt" | tail -20
    timeout 230 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1 --prefill 256 \
        --compile default --compile-variants w4a8-static+fused+twolaunch,w4a8-static+fused \
        --variants w4a8-static+fused+twolaunch,w4a8-static+fused 2>&1 | grep -v "^  compiled prefill #"
    ;;
  session21h)  # run 198: compiled decode b1 of an all-static W4A8 model (one launch per op since run 197) against fp16
    # and fused fp16 in the same run
    timeout 280 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1 --prefill 256 \
        --fp16-fused --compile default --compile-variants fp16,fp16+fused,w4a8-static+fused \
        --variants w4a8-static+fused 2>&1 | grep -v "^  compiled prefill #"
    ;;
  session20i)  # run 190: rows up to 32768 columns quantized in one pass (ONE_PASS_MAX_K, 16 warps): exact codes
    # (28672 one pass, 36864 two), the kernel alone at K = 28672 / 11008, 70B down ops against the old limit
    timeout 150 python3 -m pytest -q --tb=short -m gpu tests/kernels/test_triton_w4a8.py \
        -k "quantization_codes_are_exact or pdl_decode" 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    timeout 60 python3 benchmarks/probe_quant_large.py --shapes 16:28672,1024:28672,4096:28672,4096:11008 \
        | tee "$OUT/quant.txt"
    timeout 150 python3 benchmarks/probe_swap_settings.py --variants "installed;tw.ONE_PASS_MAX_K=16384" \
        --ms 16,1024,4096 --shapes 7 --no-gemm | tee "$OUT/ab.txt"
    ;;
  session19l)  # run 181: the GEMM table at 1024 / 4096 / 8192 rows (fp16-scaled and two-level ops, the two-level GEMM
    # alone, cuBLAS fp16 and int8) with round 19's kernel
    timeout 480 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --two-level --gemm-alone --ms 1024,4096,8192 \
        2>&1 | grep "M=" | tee "$OUT/table.txt"
    ;;
  session19k)  # run 180: the review's fixes — the swap tests that assert the TL of each launch, TL 4 against TL 1
    timeout 540 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py \
        -k "swap_wide or swap_stream_k or swap_pdl or (two_level_swap and cfg0)" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error|assert" "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session19j)  # run 179: Nsight Compute on the TL 4 kernel (runs 166-167's two profiles, 13B q/k/v/o at 1024 rows)
    bash "$0" ncu-swap 1024 5120 5120
    bash "$0" ncu-swap-src 1024 5120 5120
    ;;
  session19i)  # run 178: the two-level swap test (both token tiles) with run 176's test bug fixed
    timeout 420 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k "two_level_swap" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error|assert" "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session19h)  # run 177: the compiled 2048-token prefill with CUDA graphs (as run 129), fp16 and W4A8 in one process
    timeout 500 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches "" --compile-prefill \
        --prefill-mode reduce-overhead --prefill-reps 20 --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session19f)  # run 175: TL 4 (gluon_swap.LOADER_SCALES: the loader copies the group scales into shared memory): the
    # two-level swap test cfg0 and the 256-row test with it, then installed vs it at 1024 / 4096 rows
    timeout 280 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py \
        -k "(two_level_swap and cfg0) or swap_wide" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error|assert" "$OUT/pytest_gpu.txt" | tail -30
    timeout 290 python3 benchmarks/probe_swap_settings.py --variants "installed;LOADER_SCALES=True" --ms 1024,4096 \
        --shapes all --json "$OUT/swap_settings.json" | tee "$OUT/swap_settings.txt"
    ;;
  session19e)  # run 174: stream-K at 2.42 rounds (13B q/k/v/o at 1024 rows) with the round-18/19 kernel
    timeout 200 python3 benchmarks/probe_swap_settings.py --variants "installed;STREAM_K=(0.5,2.5)" --ms 1024 \
        --shapes 3 --json "$OUT/swap_settings.json" | tee "$OUT/swap_settings.txt"
    timeout 200 python3 benchmarks/probe_swap_settings.py --variants "STREAM_K=(0.5,2.5);installed" --ms 1024 \
        --shapes 3 --json "$OUT/swap_settings2.json" | tee "$OUT/swap_settings2.txt"
    ;;
  session19d)  # run 173: the other GPU tests that launch the swap kernel (TL 3 rule), then a second sample of run 172
    timeout 400 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py tests/test_two_level.py \
        tests/kernels/test_launch.py tests/kernels/test_launch_plans.py -k "swap_pdl or swap_under_cudagraph_trees or \
        swap_short_launches or pipeline_two_level or repeat_launches or deciding_path" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error|assert" "$OUT/pytest_gpu.txt" | tail -40
    timeout 150 python3 benchmarks/probe_swap_settings.py --variants "installed;TL_UNDER=False" --ms 512,1024 \
        --shapes 1,3,4 --json "$OUT/swap_settings.json" | tee "$OUT/swap_settings.txt"
    ;;
  session19c)  # run 172: the TL 3 rule (TL_UNDER on 128-row tiles): the swap tests that launch it, then installed vs
    # without it at 512 / 1024 rows
    timeout 300 python3 -m pytest -v --tb=short -m gpu tests/kernels/test_triton_w4a8.py \
        -k "swap_wide or swap_stream_k or (two_level_swap and cfg1)" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error|assert" "$OUT/pytest_gpu.txt" | tail -30
    timeout 260 python3 benchmarks/probe_swap_settings.py --variants "installed;TL_UNDER=False" --ms 512,1024 \
        --shapes all --json "$OUT/swap_settings.json" | tee "$OUT/swap_settings.txt"
    ;;
  session19b)  # run 171: TL 3 (gluon_swap.TL_UNDER: the next slot's group scales requested under the current slot's
    # wgmmas): the fixed two-level swap test (cfg0), then installed vs TL 3 + CH at every K
    timeout 240 python3 -m pytest -v -x --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k "two_level_swap and cfg0" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error|assert" "$OUT/pytest_gpu.txt" | tail -30
    timeout 330 python3 benchmarks/probe_swap_settings.py --variants "installed;TL_UNDER=True,TL_AHEAD=1073741824" \
        --ms 1024,4096 --shapes all --json "$OUT/swap_settings.json" | tee "$OUT/swap_settings.txt"
    ;;
  session19a)  # run 170: run 169's test_gpu_two_level_swap failure, with its message (cfg0 alone, then cfg1)
    timeout 280 python3 -m pytest -v -x --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k "two_level_swap and cfg0" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error|assert" "$OUT/pytest_gpu.txt" | tail -30
    timeout 200 python3 -m pytest -v -x --tb=short -m gpu tests/kernels/test_triton_w4a8.py -k "two_level_swap and cfg1" \
        > "$OUT/pytest_gpu1.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E |Error|assert" "$OUT/pytest_gpu1.txt" | tail -30
    ;;
  session18e)  # run 169: CHAIN_STEPS only with the scales requested per slot (TL 1): the two-level swap tests, then
    # installed vs without it on q/k/v/o and down shapes at 1024 rows
    timeout 150 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py -k "two_level_swap" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -20
    timeout 150 python3 benchmarks/probe_swap_settings.py --variants "installed;CHAIN_STEPS=False" --ms 1024 \
        --shapes 0,2,3,5 --json "$OUT/swap_settings.json" | tee "$OUT/swap_settings.txt"
    ;;
  session18d)  # run 168: a slot's two wgmmas chained without a wait between them (`gluon_swap.CHAIN_STEPS`): the
    # two-level / wide / PDL / stream-K swap tests (VERIFY on), then installed vs without it vs the scales one slot ahead
    timeout 240 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py \
        -k "two_level_swap or swap_wide or swap_pdl or swap_stream_k" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -20
    timeout 300 python3 benchmarks/probe_swap_settings.py --variants "installed;CHAIN_STEPS=False;TL_AHEAD=0" \
        --ms 1024,4096 --shapes all --json "$OUT/swap_settings.json" | tee "$OUT/swap_settings.txt"
    ;;
  session18a)  # run 163: session 17's final tidy (the default prefill config decided once per call) on the GPU: the swap,
    # plan and two-level tests (VERIFY on); then what bounds the swap kernel (timing-only variants, SM clock / power)
    timeout 240 python3 -m pytest -v -m gpu tests/kernels/test_launch_plans.py tests/kernels/test_triton_w4a8.py \
        tests/test_two_level.py -k "plans or swap_pdl or swap_wide or swap_short or two_level_swap or pipeline_two_level" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -40
    timeout 330 python3 benchmarks/probe_swap_bound.py --ms 1024,4096 --shapes 0,3 \
        --json "$OUT/swap_bound.json" | tee "$OUT/swap_bound.txt"
    ;;
  session17j)  # run 162: QuantLinear's eager forward reads its tensors from the module's dicts: host µs per eager linear and
    # whole eager decode steps (variants interleaved)
    timeout 120 python3 benchmarks/probe_eager.py --rows 1,16 --rounds 9 --calls 50 --json "$OUT/probe_eager.json" \
        | tee "$OUT/probe_eager.txt"
    timeout 240 python3 benchmarks/probe_eager.py --model 32 --rows 1,16 --rounds 7 --calls 5 \
        --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    ;;
  session17i)  # run 160: the GEMM table on the final code of round 17 (two-level column = the default format)
    timeout 480 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --two-level --ms 1,16,64,256,1024,4096
    ;;
  session17h)  # run 158: review fixes (PDL only where the quantization kernel is right before the swap GEMM: DS, no SK;
    # gdc_wait on its own in gluon_prefill): the swap PDL test (new: 5-slot tiles, plan replays), PDL / fused decode
    timeout 400 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py -k "swap_pdl or pdl_decode or fused_decode" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -30
    ;;
  session17g)  # run 157: stream-K as whole rounds of tiles then the last one to two rounds shared (the test forces it over 5 /
    # 7 SMs: many rounds now run the hybrid), then whole tiles / stream-K / the installed schedule as ops
    timeout 240 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py -k "swap_stream_k" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -20
    timeout 330 python3 benchmarks/probe_stream_k.py --ms 512,1024,2048 --installed --json "$OUT/stream_k.json" \
        | tee "$OUT/stream_k.txt"
    ;;
  session17f)  # run 156: the swap PDL test with its CUDA-graph replays, and the one prefill_wgmma config run 155 did not reach
    timeout 400 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py -k "swap_pdl or (prefill_wgmma and cfg6)" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -40
    ;;
  session17e)  # run 154: the GPU tests not run in runs 150-153 (fp8, decode dispatch, quantization codes, GEMV)
    timeout 380 python3 -m pytest -v -m gpu tests/kernels -k "fp8 or decode_gluon_tma or decode_long_k or quantization_codes \
        or gemv" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -40
    ;;
  session17d)  # run 153: the rest of run 152's tests (its pytest ran out of time on a cold machine)
    timeout 420 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py tests/test_two_level.py \
        tests/test_shared_input.py -k "stream_k or cudagraph_trees or two_level_swap or swap_pdl or pipeline_two_level \
        or fused_model" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -40
    ;;
  session17c)  # run 152: SWAP_PDL off under stream-K; the swap / large / two-level / prefill tests on the default dispatch
    # (now with PDL), then the ops again at 256 / 1024 rows
    timeout 400 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py tests/test_two_level.py \
        -k "large or prefill_wgmma or stream_k or cudagraph_trees or two_level_swap or swap_pdl or pipeline_two_level" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -40
    timeout 150 python3 benchmarks/probe_swap_pdl.py --ms 256,1024 --json "$OUT/swap_pdl.json" | tee "$OUT/swap_pdl.txt"
    ;;
  session17b)  # run 151: the swap prefill op as a programmatic dependent of its quantization (`SWAP_PDL`): the PDL swap test
    # (bit for bit, five calls back to back), swap / plan / decode tests (VERIFY on); then ops with and without PDL
    timeout 320 python3 -m pytest -v -m gpu tests/kernels/test_launch_plans.py tests/kernels/test_triton_w4a8.py \
        -k "swap_pdl or plans or swap_short or swap_wide or fused_decode or pdl_decode or decode_short" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -40
    timeout 250 python3 benchmarks/probe_swap_pdl.py --ms 64,256,1024,4096 --json "$OUT/swap_pdl.json" \
        | tee "$OUT/swap_pdl.txt"
    ;;
  session17a)  # run 150: session 16's last changes on the GPU (review-2 fixes, the final tidy): the plan, launch, decode, swap
    # GPU tests (VERIFY on); then host µs per eager linear at M = 1 / 16 / 128 / 512 and cProfiles of the o projection
    timeout 330 python3 -m pytest -v -m gpu tests/kernels/test_launch_plans.py tests/kernels/test_launch.py \
        tests/kernels/test_triton_w4a8.py -k "plans or launch or decode_short or fused_decode or swap_short or swap_wide" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -40
    timeout 200 python3 benchmarks/probe_eager.py --rows 1,16,128,512 --rounds 9 --calls 50 --profile 16,512 \
        --json "$OUT/probe_eager.json" | tee "$OUT/probe_eager.txt"
    ;;
  session16j)  # run 149: the tiled Triton GEMM (M 17-255 and off-Hopper decode) through `fptq.kernels.launch` and in plans
    # (`_TiledLaunch`): the kernel GPU tests but the long prefill ones (VERIFY on), then eager prefills 128 / 512 and
    # decode steps, variants interleaved
    timeout 300 python3 -m pytest -v -m gpu tests/kernels/test_launch_plans.py tests/kernels/test_triton_w4a8.py \
        -k "not (prefill_wgmma or large or two_level_swap or stream_k or cudagraph_trees)" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -30; grep -c PASSED "$OUT/pytest_gpu.txt"
    timeout 200 python3 benchmarks/probe_eager.py --model 32 --rows 1 --prefill 64,128,512 --rounds 9 --calls 5 \
        --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    ;;
  session16i)  # run 148: after the review (a replayed plan's output now (M, N) viewed in the caller's shape; OOM not a
    # Gluon failure; tables compared by their rows): the plan tests with (M, 1, K) and (1, M, K) inputs, decode / swap
    # launch tests (VERIFY on); then whole eager decode steps and eager prefills, variants interleaved
    timeout 330 python3 -m pytest -v -m gpu tests/kernels/test_launch_plans.py tests/kernels/test_triton_w4a8.py \
        -k "plans or decode_short or fused_decode or swap_short or swap_wide" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -30
    timeout 240 python3 benchmarks/probe_eager.py --model 32 --rows 1,16 --prefill 128,512,2048 --rounds 11 --calls 5 \
        --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    ;;
  session16h)  # run 147: whole eager decode steps and eager prefills (128 / 512 / 2048 tokens: a first token's work) of the
    # 32-layer 7B shape, fp16 and the W4A8 variants interleaved round by round
    timeout 450 python3 benchmarks/probe_eager.py --model 32 --rows 1,16 --prefill 128,512,2048 --rounds 15 --calls 5 \
        --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    ;;
  session16g)  # run 146: launch plans for the swap prefill op too (`_launch_swap`, `gluon_swap.SwapLaunch`): the plan / swap /
    # prefill / compiled GPU tests (VERIFY on), then host µs per eager linear at M = 1 / 16 / 512 (variants interleaved)
    timeout 380 python3 -m pytest -v -m gpu tests/kernels/test_launch_plans.py tests/kernels/test_triton_w4a8.py \
        tests/test_two_level.py -k "plans or swap or (test_gpu_large and 1024) or pipeline_two_level or compiled" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -40
    timeout 150 python3 benchmarks/probe_eager.py --rows 1,16,512 --rounds 11 --json "$OUT/probe_eager.json" \
        | tee "$OUT/probe_eager.txt"
    ;;
  session16f)  # run 144: whole eager decode steps (32-layer 7B shape, dynamic cache), fp16 / W4A8 variants interleaved
    timeout 400 python3 benchmarks/probe_eager.py --model 32 --rows 1,16 --rounds 20 --calls 5 \
        --json "$OUT/probe_eager_model.json" | tee "$OUT/probe_eager_model.txt"
    ;;
  session16e)  # run 143: host µs per eager decode linear, variants interleaved round by round (the CPU drifts): fp16,
    # W4A8 (plans + direct launches), without direct launches, without plans; M = 1 and 16 at the 7B shapes
    timeout 400 python3 benchmarks/probe_eager.py --json "$OUT/probe_eager.json" | tee "$OUT/probe_eager.txt"
    ;;
  session16d)  # run 142: kept kernels launched through Triton's C launcher directly (launch._Direct): the launch tests
    # (short launches against Triton's path, bit for bit; VERIFY on), then eager decode b1 / b16 and generate (dynamic
    # cache) without / with the direct launch, fp16 in the same run
    timeout 300 python3 -m pytest -v -m gpu tests/kernels/test_launch.py tests/kernels/test_launch_plans.py \
        tests/kernels/test_triton_w4a8.py -k "launch or plans or fused_decode or two_level_swap" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -30
    timeout 250 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --eager-decode \
        --generate 64 --variants w4a8-dynamic+fused+nodirect,w4a8-dynamic+fused
    ;;
  session16c)  # run 141: where the eager decode step's host time goes (cProfile, fp16 and W4A8 with plans), then the GPU
    # tests not run on the plans code yet (every M <= 16 int8 call on Hopper goes through `_launch_two` now), VERIFY on
    timeout 150 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1 --eager-decode \
        --cprofile-eager --variants w4a8-dynamic+fused
    timeout 420 python3 -m pytest -v -m gpu tests/ -k "not (prefill_wgmma or swap_stream_k or swap_wide or swap_short \
        or cudagraph_trees or repeat_launches or plans or decode_short or fused_decode_m1_in_cuda_graphs)" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -30; grep -c PASSED "$OUT/pytest_gpu.txt"
    ;;
  session16b)  # run 140: per-layer launch plans (QuantLinear keeps its M <= 16 launches per call signature): their GPU
    # tests and the decode launch tests (VERIFY on), then eager decode b1 / b16 and generate with and without plans, fp16
    # in the same run
    timeout 300 python3 -m pytest -v -m gpu tests/kernels/test_launch_plans.py tests/kernels/test_triton_w4a8.py \
        -k "plans or decode_short or fused_decode_m1_in_cuda_graphs" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -30
    timeout 260 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --eager-decode \
        --generate 64 --variants w4a8-dynamic+fused+noplans,w4a8-dynamic+fused
    ;;
  session16a)  # run 139: the swap key's descriptor part (launch.descriptor_key, after run 138) with launch.VERIFY on:
    # every test that launches the swap kernel, the short-launch tests, then the decode ones
    timeout 560 python3 -m pytest -v -m gpu tests/kernels/test_launch.py tests/kernels/test_triton_w4a8.py tests/test_two_level.py \
        -k "swap or launch or stream_k or prefill_wgmma or (test_gpu_large and 1024) or pipeline_two_level or decode_short" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -40
    ;;
  session15k)  # run 138: the scale-row stand-in made outside CUDA-graph pools: the new cudagraph-trees test, the swap tests
    timeout 400 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py \
        -k "cudagraph_trees or swap_short or swap_wide or two_level_swap" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed|^E " "$OUT/pytest_gpu.txt" | tail -20
    ;;
  session15j)  # run 137: every GPU test but prefill_wgmma's seven configs with launch.VERIFY on (key completeness)
    timeout 560 python3 -m pytest -v -m gpu tests/ -k "not prefill_wgmma" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "FAILED|ERROR|passed|failed" "$OUT/pytest_gpu.txt" | tail -20
    ;;
  session15i)  # run 136: run 135's failures after their fixes (group-64 layers from 1024 rows; the pipeline test's spy)
    # (and the launch fixes of the review: per-call constexprs in every key, VERIFY on in the GPU tests)
    timeout 500 python3 -m pytest -v -m gpu tests/kernels/test_launch.py tests/kernels/test_triton_w4a8.py tests/test_two_level.py \
        -k "(test_gpu_large and (1024 or 8192)) or pipeline_two_level or short_launches or launch or fused_decode_m1 or swap_wide" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed" "$OUT/pytest_gpu.txt" | tail -20
    ;;
  session15h)  # run 135: the GPU tests not re-run on the final round-15 code (everything that quantizes activations went
    # through the short launch since run 132): -v, partial progress survives the timeout
    timeout 560 python3 -m pytest -v -m gpu tests/ \
        -k "not (prefill_wgmma or two_level_swap or stream_k or short_launches or fused_decode)" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed" "$OUT/pytest_gpu.txt" | tail -50
    ;;
  session15g)  # run 134: the fixed swap short-launch test, decode tests, prefill_wgmma's last two configs; then eager /
    # CUDA-graph decode b1 and model.generate (dynamic / static cache) with the decode layouts kept
    timeout 300 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py \
        -k "swap_short_launches or decode_short or fused_decode_m1 or (prefill_wgmma and (cfg5 or cfg6))" \
        > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed" "$OUT/pytest_gpu.txt" | tail -12
    timeout 260 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1 --eager-decode \
        --generate 64 --variants w4a8-dynamic+fused
    ;;
  session15f)  # run 133: the GPU tests run 132's selection did not reach (-v: partial progress survives a timeout), then
    # model.generate as a user runs it: dynamic cache (eager) and static cache (transformers compiles the decode step)
    timeout 330 python3 -m pytest -v -m gpu tests/kernels/test_triton_w4a8.py \
        -k "decode_short or fused_decode or two_level_swap or stream_k or short_launches" > "$OUT/pytest_gpu.txt" 2>&1
    grep -E "PASSED|FAILED|ERROR|passed|failed" "$OUT/pytest_gpu.txt" | tail -12
    timeout 240 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches "" --generate 64 \
        --variants w4a8-dynamic+fused
    ;;
  session15e)  # run 132: short launches in decode too: GPU tests (swap, decode, plans), then eager / CUDA-graph decode b1 / b16
    # and eager prefill with Triton's launch path and the short one, fp16 in the same run
    timeout 300 python3 -m pytest -q -m gpu tests/kernels/test_launch.py tests/kernels/test_triton_w4a8.py \
        -k "launch or two_level_swap or prefill_wgmma or fused_decode or stream_k" 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 260 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --eager-decode \
        --variants w4a8-dynamic+fused+tritonlaunch,w4a8-dynamic+fused
    ;;
  session15d)  # run 131: short launches (fptq.kernels.launch) and Library-defined ops: GPU tests of the paths touched,
    # host cost per op with / without the short launch, compiled prefill without CUDA graphs (2 compiles) and eager
    timeout 240 python3 -m pytest -q -m gpu tests/kernels/test_launch.py tests/kernels/test_triton_w4a8.py \
        -k "launch or swap or two_level or fp8_quantization or compiled" 2>&1 | tail -4 | tee "$OUT/pytest_gpu.txt"
    timeout 120 python3 benchmarks/probe_host.py --json "$OUT/host.json" | tee "$OUT/probe_host.txt"
    timeout 220 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches "" --compile-prefill \
        --prefill-compiles 2 --prefill-reps 20 --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session15c)  # run 130: the swap launch's host cost split (Triton launch, compiled-kernel launch, TMA encodings, op dispatch)
    timeout 200 python3 benchmarks/probe_host.py --json "$OUT/host.json" | tee "$OUT/probe_host.txt"
    ;;
  session15b)  # run 129: host cost per prefill op down the call chain (probe_host.py), then the compiled prefill with CUDA
    # graphs (torch.compile mode reduce-overhead), fp16 and W4A8 in the same process
    timeout 150 python3 benchmarks/probe_host.py --json "$OUT/host.json" | tee "$OUT/probe_host.txt"
    timeout 400 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches "" --compile-prefill \
        --prefill-mode reduce-overhead --prefill-reps 20 --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session15a)  # run 128: the bimodal compiled prefill: 3 compiles x 20 timed calls each, host (launch) time per call,
    # nvidia-smi sampled, allocator counters, a kernel table per compile
    timeout 560 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches "" --compile-prefill \
        --prefill-compiles 3 --prefill-reps 20 --profile --sample-gpu --compile-variants fp16,w4a8-dynamic+fused \
        --variants w4a8-dynamic+fused
    ;;
  session14a)  # run 116: the swap kernel's stream-K schedule: its GPU test, SK vs whole tiles as ops at prefill M (fp16 /
    # int8 in the same run), then the two-level swap test (the schedule's loops changed for every launch)
    timeout 200 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "swap_stream_k" 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    timeout 240 python3 benchmarks/probe_stream_k.py --json "$OUT/stream_k.json" | tee "$OUT/probe_stream_k.txt"
    timeout 130 python3 -m pytest -q -m gpu tests/kernels/test_triton_w4a8.py -k "two_level_swap" 2>&1 | tail -3 | tee -a "$OUT/pytest_gpu.txt"
    ;;
  session13a)  # run 103: Nsight Compute of the default decode kernel (warp states, source counters); run 103's staging
    # probe (gluon_decode.STAGING) was removed with that knob
    timeout 200 ncu --clock-control none --section WarpStateStats --section SourceCounters --section Occupancy \
        --section SpeedOfLight -k 'regex:decode_tma' -c 2 -o "$OUT/dec" python3 benchmarks/profile_decode.py 1 22016 4096 > "$OUT/ncu_run.txt" 2>&1
    ncu -i "$OUT/dec.ncu-rep" --print-details all 2>&1 | head -c 150000 > "$OUT/ncu.txt"
    ncu -i "$OUT/dec.ncu-rep" --page source --print-source sass --csv > "$OUT/dec_sass.csv" 2>&1
    rm -f "$OUT/dec.ncu-rep"; grep -i "stall\|duration\|throughput\|occupancy" "$OUT/ncu.txt" | head -60
    ;;
  session13b)  # run 104: decode programs x ring depth x tile width (probe_decode_split.py)
    timeout 500 python3 benchmarks/probe_decode_split.py | tee "$OUT/probe_decode_sweep.txt"
    ;;
  session13c)  # run 105: compiled decode b1 / b16, two-level g128, fp16 vs the old program target (t528) vs the new default
    timeout 560 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --compile default \
        --compile-variants fp16,w4a8-dynamic+fused+t528,w4a8-dynamic+fused --variants w4a8-dynamic+fused+t528,w4a8-dynamic+fused
    ;;
  session13d)  # run 106: GPU tests of the decode paths under the new split rule, GEMM table at M <= 16 (two-level column)
    timeout 330 python3 -m pytest -q -m gpu tests/kernels tests/test_two_level.py -k "decode or pdl or split or tma or graph or two_level" 2>&1 | tail -5 | tee "$OUT/pytest_gpu.txt"
    timeout 200 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --two-level --ms 1,4,16
    ;;
  session13e)  # run 108: the GEMV GPU test, then the e2e of the final tree (compiled prefill and decode b1 / b16, two-level g128)
    timeout 120 python3 -m pytest -q -m gpu tests/kernels/test_triton_gemv.py 2>&1 | tail -2 | tee "$OUT/pytest_gpu.txt"
    timeout 450 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1,16 --compile default \
        --compile-prefill --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session13f)  # run 111: M <= 16 GEMM ops of every path (--extra: static, g64, W4A16, tinygemm) at program targets 528 and 264
    for t in 528 264; do  # (run 111 had one target for both kernels; both are set here to repeat it)
      mkdir -p "$OUT/t$t"
      timeout 250 python3 -c "import runpy, sys; from fptq.kernels import triton_w4a8 as tw; tw.DECODE_TARGET_PROGRAMS = tw.TMA_TARGET_PROGRAMS = $t; \
sys.argv = ['bench_gemm.py', '--out', '$OUT/t$t', '--no-check', '--extra', '--ms', '1,16']; \
runpy.run_path('benchmarks/bench_gemm.py', run_name='__main__')" 2>&1 | grep "M=" | tee "$OUT/t$t/table.txt"
    done
    ;;
  session13g)  # run 112: GPU tests of the per-kernel decode target, ops at M = 1 / 16 (int8 on 264, W4A16 on 528 programs)
    timeout 400 python3 -m pytest -q -m gpu tests/kernels -k "gluon_tma or pdl_decode or quantization_codes" 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    timeout 150 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --extra --ms 1,16 --shapes 0,6 2>&1 | grep "M=" | head -4
    ;;
  session13h)  # run 113: kernel profile of the compiled decode step b1 (fp16 and the W4A8 default, two-level g128)
    timeout 500 python3 benchmarks/bench_e2e.py --out "$OUT" --scale-format two-level --batches 1 --prefill 256 --compile default \
        --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused --profile
    ;;
  session13i)  # run 115: the decode-dispatch GPU tests after the review fixes (incl. the long-K / wide layers on the TMA kernel)
    timeout 400 python3 -m pytest -q -m gpu tests/kernels -k "gluon_tma or pdl_decode or long_k_stays or quantization_codes" 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    ;;
  session12f)  # run 100: two-level scales at decode sizes: GPU tests, GEMM ops at M = 1 / 16 (fp16-scaled g128 and fp16 in
    # the same run), compiled decode b1 / b16 with two-level g128 (fp16 in the same run). Run 100 had the decode kernel's
    # TL mode (removed again: no gain, GPU_NOTES)
    timeout 200 python3 -m pytest -q -x tests/kernels/test_triton_w4a8.py -k "two_level" 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
    timeout 120 python3 benchmarks/bench_gemm.py --out "$OUT" --no-check --two-level --ms 1,16
    mkdir -p "$OUT/e2e"
    timeout 250 python3 benchmarks/bench_e2e.py --out "$OUT/e2e" --scale-format two-level --batches 1,16 --compile default \
        --compile-variants fp16,w4a8-dynamic+fused --variants w4a8-dynamic+fused
    ;;
  session10c)  # run 84: e2e compiled prefill and decode, fp16 vs the W4A8 default (compile caches warmed by 2 layers first)
    mkdir -p "$OUT/warm"; timeout 100 python3 benchmarks/bench_e2e.py --out "$OUT/warm" --layers 2 --batches 1 --compile default \
        --compile-prefill --compile-variants fp16,w4a8-dynamic+fused --variants "w4a8-dynamic+fused" > /dev/null 2>&1
    timeout 400 python3 benchmarks/bench_e2e.py --out "$OUT" --batches 1,16 --compile default --compile-prefill \
        --compile-variants fp16,w4a8-dynamic+fused --variants "w4a8-dynamic+fused"
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

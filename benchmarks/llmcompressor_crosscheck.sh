#!/usr/bin/env bash
# GPTQ / AWQ W4A16 g64 side by side with llm-compressor (see llmcompressor_crosscheck.py).
# Usage: benchmarks/llmcompressor_crosscheck.sh [WORK_DIR] [SAMPLES] [SEQLEN] [METHODS] [PPL_WINDOWS]
# Needs .venv (fptq) and .venv-llmc (python3 -m venv .venv-llmc; pip install torch==2.13.0 llmcompressor==0.14.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-runs/llmc_crosscheck}; SAMPLES=${2:-32}; SEQLEN=${3:-512}; METHODS=${4:-gptq,awq}; WINDOWS=${5:-16}
PY=.venv/bin/python; PYL=.venv-llmc/bin/python; S=benchmarks/llmcompressor_crosscheck.py
$PY $S prepare --work "$WORK" --samples "$SAMPLES" --seqlen "$SEQLEN"
for m in ${METHODS//,/ }; do
  # back to back in one run, so both see the same machine load
  if [ "$m" = gptq ]; then  # fptq's default (one calibration pass per block, as llm-compressor), then --true-sequential
    $PY $S ours --work "$WORK" --method gptq --act-order
    $PYL $S llmc --work "$WORK" --method gptq
    $PY $S ours --work "$WORK" --method gptq --act-order --true-sequential
  else
    $PY $S ours --work "$WORK" --method "$m"
    $PYL $S llmc --work "$WORK" --method "$m"
  fi
done
$PY $S report --work "$WORK" --methods "$METHODS" --ppl-windows "$WINDOWS"

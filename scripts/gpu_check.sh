#!/usr/bin/env bash
# The one command to run on a GPU machine: pretraining throughput of the real training loop (benchmarks/gpu.py:
# bf16 ZeRO-2 steps on a SmolLM2-135M-shaped and a Mistral-7B-shaped base with random weights, MFU, peak memory,
# exact-vs-lowrank SVD time). Installs nothing and downloads nothing.
#
# Needs, importable by $PYTHON: torch (CUDA build), transformers, the packages of pyproject.toml, and deepspeed
# (a wheel built without its compiled ops: DS_BUILD_OPS=0 pip install deepspeed; the loop uses torch's AdamW).
#
#   scripts/gpu_check.sh [extra benchmarks/gpu.py arguments, e.g. --svd lowrank --steps 5]
#
# GA_GPU_CHECK_TIMEOUT_S (default 540) stops the whole check; the script itself starts no training run whose SVD
# time alone (estimated from its SVD bench) would end it after --time-budget-s (400 s).
# Output goes to the terminal and, when $OUT is set, to $OUT/gpu_check.log.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TIMEOUT_S=${GA_GPU_CHECK_TIMEOUT_S:-540}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

LOG=/dev/null
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  LOG="$OUT/gpu_check.log"
fi

{
  nvidia-smi || echo "nvidia-smi failed"
  "$PYTHON" -c "import deepspeed" 2>/dev/null \
    || echo "deepspeed is not importable: install it first (DS_BUILD_OPS=0 pip install deepspeed)"
  timeout "$TIMEOUT_S" "$PYTHON" benchmarks/gpu.py "$@"
  rc=$?
  # On success the last line is benchmarks/gpu.py's JSON; otherwise say why it is missing.
  [ "$rc" -eq 124 ] && echo "gpu_check: stopped after ${TIMEOUT_S} s (GA_GPU_CHECK_TIMEOUT_S)"
  [ "$rc" -ne 0 ] && echo "gpu_check: exit status $rc"
  exit "$rc"
} 2>&1 | tee "$LOG"

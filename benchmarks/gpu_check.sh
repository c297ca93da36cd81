#!/usr/bin/env bash
# The GPU check, one command: bash benchmarks/gpu_check.sh [OUT_DIR] [--dry-run]
# Runs on a bare CUDA machine with torch, timm, transformers, safetensors, pyyaml, tqdm and opencv
# already installed (nothing is installed; swinseg comes from this checkout through PYTHONPATH).
# --dry-run: the same sections on the CPU with tiny sizes (CI). Output: OUT_DIR (default $OUT),
# gpu_check.json rewritten after every section (a check cut short keeps what it finished).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check_out}"
flags=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) flags+=(--dry-run) ;;
    *) out="$arg" ;;
  esac
done
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 510 "${PYTHON:-python3}" benchmarks/gpu_check.py --out "$out" "${flags[@]}" 2>&1 | tee "$out/gpu_check.log"

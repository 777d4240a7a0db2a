#!/usr/bin/env bash
# The GPU check in one command, on a lent device machine, from the repository root
# (docs/performance.md, "GPU check"; wheels from benchmarks/gpu_wheels.sh carried as `.whl`):
#
#   bash benchmarks/gpu_check.sh "$OUT"     # writes gpu.json, gpu.md, gpu.log and nvidia-smi.csv there
#
# About 2-3 minutes on one H100 (model build, 23 trainer steps, 2 x 2 x 6 answers); give the call a
# timeout of 300 s so a rerun still fits in the device time.
set -euo pipefail
out="${1:-benchmarks/results}"
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia-smi.csv" || true
python3 -m langchain_recipe.benchmarks.gpu --output "$out/gpu.json" "${@:2}" 2>&1 | tee "$out/gpu.log"

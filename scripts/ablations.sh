#!/usr/bin/env bash
# Issue 3 ablations: the same training budget (150 steps, batch 8, seed 0, dev evaluation of the
# last 30 ZsRE + 30 CounterFact dev edits every 50 steps) for each RecipeModel variant.
# Resumable: re-running continues each run from runs/ablation-<name>/checkpoint.
# Usage: bash scripts/ablations.sh [name ...]   (default: all variants, in this order)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
declare -A VARIANTS=(
  [statement-attention-3]='{}'
  [paper-mlp-3]='{"prompt_encoder_type": "mlp"}'
  [statement-attention-8]='{"num_prompt_tokens": 8}'
  [tuned-encoder]='{"train_encoder": true}'
  [statement-attention-16]='{"num_prompt_tokens": 16}'
)
ORDER=(statement-attention-3 paper-mlp-3 statement-attention-8 tuned-encoder statement-attention-16)
for name in "${@:-${ORDER[@]}}"; do
  echo "=== $name $(date -u +%H:%M:%S)"
  $PYTHON -m langchain_recipe.cli train \
    --output-dir "runs/ablation-$name" --max-steps 150 --max-minutes 45 --seed 0 \
    --config-json '{"eval_every": 50, "log_every": 10}' \
    --model-config-json "${VARIANTS[$name]}"
done

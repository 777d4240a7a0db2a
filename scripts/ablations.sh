#!/usr/bin/env bash
# Issue 3 ablations. Each variant changes one thing of the shipped recipe and trains under exactly
# the shipped run's protocol (seed 0, batch 8, the 600-step warm-up + cosine schedule, dev
# evaluation of the last 30 ZsRE + 30 CounterFact dev edits every 100 steps), stopped at
# STOP_AT_STEP. The shipped run's own curve (docs/training_log.jsonl) is the baseline.
# Resumable: re-running continues each run from runs/ablation-<name>/checkpoint, so raising
# STOP_AT_STEP later extends the curves.
# Usage: STOP_AT_STEP=100 bash scripts/ablations.sh [name ...]   (default: all, in this order)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
STOP_AT_STEP=${STOP_AT_STEP:-100}
declare -A VARIANTS=(
  [paper-mlp-3]='{"prompt_encoder_type": "mlp"}'
  [statement-attention-8]='{"num_prompt_tokens": 8}'
  [tuned-encoder]='{"train_encoder": true}'
  [statement-attention-16]='{"num_prompt_tokens": 16}'
  [negative-queue-8]='{"num_prompt_tokens": 8}'
)
# TrainingConfig fields of a variant (besides stop_at_step).
declare -A TRAINING=(
  [negative-queue-8]=', "negative_queue_size": 1024'
)
ORDER=(paper-mlp-3 statement-attention-8 tuned-encoder statement-attention-16 negative-queue-8)
for name in "${@:-${ORDER[@]}}"; do
  echo "=== $name $(date -u +%H:%M:%S)"
  $PYTHON -m langchain_recipe.cli train \
    --output-dir "runs/ablation-$name" --max-steps 600 --max-minutes 240 --seed 0 \
    --config-json "{\"stop_at_step\": $STOP_AT_STEP${TRAINING[$name]:-}}" \
    --model-config-json "${VARIANTS[$name]}"
done
echo "=== done $(date -u +%H:%M:%S)"

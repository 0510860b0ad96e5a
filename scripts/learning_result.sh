#!/usr/bin/env bash
# Reproduces docs/results/learning.md: a random-init small Qwen2.5-VL-architecture policy trained on CPU,
# SFT on shapes-world oracle trajectories, then multi-turn GRPO with editor noise; held-out success + Wilson CIs.
set -euo pipefail
OUT=${1:-runs/learning}
export TRL_EXPERIMENTAL_SILENCE=1
python -m train.learning --out "$OUT" --sft_steps 150 --grpo_steps 24 --group 8 --grpo_batch 16 \
    --eval_tasks 64 --sft_tasks 400 --grpo_tasks 64 --hidden 128 --layers 3 --budget 3 --noise 0.15
cp "$OUT/learning.png" docs/results/learning.png

#!/usr/bin/env bash
# Reproduces docs/results/learning.md: a random-init small Qwen2.5-VL-architecture policy trained on CPU (one thread),
# with a byte-level BPE tokenizer trained offline on its own SFT text, SFT on noise-free shapes-world oracle
# trajectories, then multi-turn GRPO (TRL environment_factory, editor images in the loss) with editor noise;
# held-out test-split success + Wilson 95% CIs for untrained / SFT / SFT+GRPO / the scripted oracle.
set -euo pipefail
OUT=${1:-runs/learning_bpe}
export TRL_EXPERIMENTAL_SILENCE=1
python -m mira_env.train.learning --out "$OUT" --threads 1 --difficulty 1 --resolution 56 --budget 3 --noise 0.15 \
    --tokenizer bpe --bpe_vocab 1024 --hidden 128 --layers 3 --sft_tasks 1000 --sft_steps 2500 --sft_batch 8 \
    --sft_lr 3e-3 --grpo_tasks 64 --grpo_steps 60 --group 8 --grpo_batch 16 --grpo_lr 5e-4 --beta 0.0 --eval_tasks 100
mkdir -p docs/results
cp "$OUT/learning.png" docs/results/learning_curve.png
cp "$OUT/results.json" docs/results/learning_results.json

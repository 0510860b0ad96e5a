#!/usr/bin/env bash
# Reproduces docs/results/learning.md: fresh `mira export` tasks -> SFT of a random-init small Qwen2.5-VL-architecture
# policy (BPE tokenizer trained on its own training text) in two stages, a short-context one (`mira train sft
# --sample_format single_turn`) then the tool conversation (`--sample_format multi_turn --loss_turns all`) -> GRPO
# (`mira train grpo`) under editor noise with oracle_progress + success bonus, episode advantage AND turn-level credit,
# the reward-hacking monitor as a callback -> every stage and the scripted oracle on the same 100 held-out test tasks
# with the same editor seeds (rollout engine), exact McNemar tests. About 50 minutes on 2 quiet CPU cores (cap: 60).
set -euo pipefail
OUT=${1:-runs/learning}
export TRL_EXPERIMENTAL_SILENCE=1
python experiments/learning.py --out "$OUT" --threads 2 --difficulty 1 --resolution 56 --budget 3 \
    --noise 0.25 --noise_kinds ignore \
    --short_tasks 27000 --short_steps 5000 --short_minutes 22 --short_batch 16 \
    --sft_tasks 8000 --sft_steps 1000 --sft_minutes 12 --sft_batch 8 --sft_lr 3e-3 --sft_scheduler cosine \
    --sft_loss_turns all --curve_every 200 --curve_tasks 24 \
    --grpo_tasks 480 --grpo_steps 120 --group 8 --grpo_batch 32 --grpo_lr 2e-4 --beta 0.0 --success_bonus 1.0 \
    --credits episode,turn --monitor_every 30 --eval_tasks 100 --hidden 128 --layers 3 --bpe_vocab 1024 --seed 0
mkdir -p docs/results
cp "$OUT/learning.png" docs/results/learning_curve.png
cp "$OUT/results.json" docs/results/learning_results.json

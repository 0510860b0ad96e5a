#!/usr/bin/env bash
# GPU check of the MIRA recipe on tiny replicas (at most ~5 minutes on one CUDA GPU):
#   1. DiffusersEditor (tiny InstructPix2Pix and QwenImageEdit) in bf16, with and without cpu_offload;
#   2. a batched VLMAgent generate (multi-turn conversation, both policy families);
#   3. one SFT step and one GRPO step (the editor's images reach the next turn and the loss) on Qwen2.5-VL.
# Figures go to stdout and to $OUT/gpu.md (default ./gpu_check_out/gpu.md).
#
# The device machine has torch and transformers but not diffusers, trl, gymnasium, datasets (and has no package
# registry): wheels are carried from the development machine. Once, there, in the repository root:
#     bash scripts/gpu_check.sh --fetch-wheels      # downloads them into .whl/ (ignored by git, < 64 MiB)
# then on the device (device tool: carry [".whl"]):
#     bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# name==version of what the device lacks (and their own needs that it lacks), for CPython 3.12 manylinux x86-64
WHEELS=(
  "diffusers==0.42.0" "trl==1.16.0" "gymnasium==1.2.0" "farama-notifications==0.0.4" "cloudpickle==3.1.1"
  "datasets==4.0.0" "pyarrow==21.0.0" "dill==0.3.8" "multiprocess==0.70.16" "xxhash==3.5.0" "accelerate==1.10.0"
  "peft==0.17.0" "open_clip_torch==3.1.0" "ftfy==6.3.1"
)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  mkdir -p .whl
  for wheel in "${WHEELS[@]}"; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$wheel"
  done
  du -sh .whl
  exit 0
fi

if [[ -d .whl ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD/.gpu_src${PYTHONPATH:+:$PYTHONPATH}"
fi
# the repository's packages under their installed names (mira_env, mira_env.agents, ...) without pip install -e
rm -rf .gpu_src && mkdir -p .gpu_src/mira_env
cp -r mira_env/. .gpu_src/mira_env/
for part in agents rewards train; do cp -r "$part" ".gpu_src/mira_env/$part"; done
export PYTHONPATH="$PWD/.gpu_src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRL_EXPERIMENTAL_SILENCE=1
OUT_DIR="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT_DIR"

timeout 300 python3 - "$OUT_DIR" <<'PY'
import sys, time, json, tempfile
from pathlib import Path

import torch

out_dir = Path(sys.argv[1])
rows = []


def record(name, seconds, detail=""):
    rows.append((name, seconds, detail))
    print(f"{name}: {seconds:.2f}s {detail}", flush=True)


assert torch.cuda.is_available(), "no CUDA device"
device = torch.cuda.get_device_name(0)
work = Path(tempfile.mkdtemp(prefix="mira_gpu_"))
from PIL import Image
import numpy as np

rng = np.random.default_rng(0)
images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(4)]

# 1. DiffusersEditor in bf16, with and without cpu_offload
from mira_env.editors.diffusers_editor import DiffusersEditor
from mira_env.tiny.pipelines import build_tiny_pipeline

for preset in ("instruct-pix2pix", "qwen-image-edit"):
    path = build_tiny_pipeline(preset, work / preset, seed=0)
    for offload in (False, True):
        editor = DiffusersEditor(str(path), num_inference_steps=2, max_area=64 * 64, device="cuda",
                                 torch_dtype="bfloat16", cpu_offload=offload)
        start = time.perf_counter()
        edited = editor.edit(images, ["make it red"] * 4, [0, 1, 2, 3])
        torch.cuda.synchronize()
        assert len(edited) == 4 and all(isinstance(e, Image.Image) for e in edited)
        record(f"DiffusersEditor {preset} bf16 cpu_offload={offload}", time.perf_counter() - start,
               f"batch 4, {edited[0].size}")

# 2. batched VLMAgent generate (multi-turn), both families
import gymnasium
import mira_env
from mira_env.agents.vlm import VLMAgent
from mira_env.tiny.vlm import build_tiny_vlm

tasks = [mira_env.Task(id=f"t{i}", instruction="make the square red", image=images[i]) for i in range(4)]
for kind in ("qwen2_5_vl", "qwen3_vl"):
    path = build_tiny_vlm(kind, work / kind)
    agent = VLMAgent(str(path), device="cuda", torch_dtype="bfloat16", max_new_tokens=16, batch_size=4)
    env = gymnasium.make("mira/ImageEdit-v0", editor="identity", tasks=tasks, height=64, width=64)
    observations, infos = [], []
    for i in range(4):
        obs, info = env.reset(seed=i, options={"task": i})
        observations.append(obs)
        infos.append({**info, "episode_id": f"e{i}"})
    start = time.perf_counter()
    actions = agent.act(observations, infos)
    torch.cuda.synchronize()
    record(f"VLMAgent {kind} batched generate (cuda, bf16)", time.perf_counter() - start,
           f"{len(actions)} answers in {agent.generate_calls} generate call(s)")

# 3. one SFT step and one GRPO step with editor images (Qwen2.5-VL replica, real upstream template)
from mira_env.records import EditingRecord, TrajectoryStep
from mira_env.train.data import record_samples
from mira_env.train.sft import resolve as sft_resolve, train_sft

record_ = EditingRecord(id="r0", complex_instruction="paint it red", source_image=images[0],
                        trajectory=[TrajectoryStep("paint it red", image=images[1])])
samples = record_samples(record_, system_prompt="")
base = build_tiny_vlm("qwen2_5_vl", work / "qwen2_5_vl")
model_args, data_args, config = sft_resolve({"model": str(base), "output_dir": str(work / "sft"), "max_steps": 1,
                                             "per_device_train_batch_size": 2, "bf16": True, "system_prompt": "",
                                             "save_strategy": "no"})
start = time.perf_counter()
result = train_sft(model_args, data_args, config, samples=samples)
record("SFT step (cuda, bf16)", time.perf_counter() - start, f"loss {result.metrics.get('train_loss')}")

from mira_env.env import EditEnv
from mira_env.train.grpo import build_dataset, resolve as grpo_resolve, train_grpo

shown = []


class CountingEditor:
    """A real editor (brightens a band) that counts the images it made."""

    from mira_env.editors.base import EditorInfo
    info = EditorInfo(name="band")

    def edit(self, imgs, instructions, seeds):
        outs = []
        for image in imgs:
            array = np.asarray(image.convert("RGB")).copy()
            array[: 8 + 8 * (len(shown) % 4)] = 255
            outs.append(Image.fromarray(array))
        shown.extend(outs)
        return outs


class EditReward:
    def score(self, items):
        from mira_env.reward_api import RewardOutput

        return [RewardOutput(float(len(i.trajectory)) + 0.01 * float(np.asarray(i.edited).mean()), {}) for i in items]


env = EditEnv(editor=CountingEditor(), tasks=tasks[:2], reward=EditReward(), max_steps=2, height=64, width=64)
dataset = build_dataset(env, num_rows=4, system_prompt="")
model_args, env_args, config = grpo_resolve({
    "model": str(work / "sft"), "output_dir": str(work / "grpo"), "max_steps": 1, "num_generations": 4,
    "per_device_train_batch_size": 4, "max_tool_calling_iterations": 2, "max_completion_length": 64,
    "bf16": True, "tasks": "custom", "reward": "composite", "system_prompt": "", "save_strategy": "no"})
start = time.perf_counter()
result = train_grpo(model_args, env_args, config, env=env, dataset=dataset)
torch.cuda.synchronize()
log = result.trainer.state.log_history[0]
record("GRPO step (cuda, bf16, 4 rollouts)", time.perf_counter() - start,
       f"tool call frequency {log.get('tools/call_frequency')}, editor images {len(shown)}")

lines = [f"# GPU check ({device})", "", "| check | seconds | detail |", "| --- | --- | --- |"]
lines += [f"| {name} | {seconds:.2f} | {detail} |" for name, seconds, detail in rows]
(out_dir / "gpu.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY

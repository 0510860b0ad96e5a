#!/usr/bin/env bash
# GPU check of the MIRA recipe on tiny replicas (at most ~5 minutes on one CUDA GPU):
#   1. DiffusersEditor (tiny InstructPix2Pix and QwenImageEdit) in bf16, with and without cpu_offload;
#   2. a batched VLMAgent generate (multi-turn conversation, both policy families);
#   3. SFT steps, then one GRPO step whose rollouts call the editor (its images reach the next turn and the loss),
#      on the Qwen2.5-VL replica with the real upstream template.
# Figures go to stdout and to $OUT/gpu.md (default /tmp/gpu_check_out/gpu.md).
#
# The device machine has torch and transformers but not diffusers, trl, gymnasium, datasets (and has no package
# registry): wheels are carried from the development machine. Once, there, in the repository root:
#     bash scripts/gpu_check.sh --fetch-wheels      # downloads them into .whl/ (ignored by git, < 64 MiB)
# then on the device (device tool: carry [".whl"]):
#     bash scripts/gpu_check.sh
# MIRA_GPU_CHECK_DEVICE=cpu runs the same steps on the CPU in float32 without cpu_offload (a dry run of the script;
# give it MIRA_GPU_CHECK_TIMEOUT=900, the 300 s budget is for the GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

# name==version of what the device lacks or has in other versions (the versions tested here), for CPython 3.12
# manylinux x86-64; torch, accelerate, peft, pyarrow, pandas, xxhash, cloudpickle, fsspec, httpx are there
WHEELS=(
  "diffusers==0.42.1" "trl==1.16.0" "gymnasium==1.4.0" "farama-notifications==0.0.6" "datasets==5.2.0"
  "dill==0.4.1" "multiprocess==0.70.19" "transformers==5.24.0" "tokenizers==0.23.3" "huggingface-hub==2.4.0"
  "safetensors==0.8.0"
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

if [[ -d .whl ]] && ! python3 -c "import diffusers, trl, gymnasium, datasets" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# the repository's packages under their installed names (mira_env, mira_env.agents, ...) without pip install -e
SRC="${TMPDIR:-/tmp}/mira_gpu_src"
rm -rf "$SRC" && mkdir -p "$SRC/mira_env"
cp -r mira_env/. "$SRC/mira_env/"
for part in agents rewards train; do cp -r "$part" "$SRC/mira_env/$part"; done
export PYTHONPATH="$SRC:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRL_EXPERIMENTAL_SILENCE=1
OUT_DIR="${OUT:-${TMPDIR:-/tmp}/gpu_check_out}"
mkdir -p "$OUT_DIR"

timeout "${MIRA_GPU_CHECK_TIMEOUT:-300}" python3 - "$OUT_DIR" <<'PY'
import sys, time, json, tempfile
from pathlib import Path

import os

import torch

out_dir = Path(sys.argv[1])
DEV = os.environ.get("MIRA_GPU_CHECK_DEVICE", "cuda")
ON_GPU = DEV.startswith("cuda")
DTYPE = "bfloat16" if ON_GPU else "float32"


def sync():
    if ON_GPU:
        torch.cuda.synchronize()
rows = []


def record(name, seconds, detail=""):
    rows.append((name, seconds, detail))
    print(f"{name}: {seconds:.2f}s {detail}", flush=True)


assert not ON_GPU or torch.cuda.is_available(), "no CUDA device (MIRA_GPU_CHECK_DEVICE=cpu for a dry run)"
device = torch.cuda.get_device_name(0) if ON_GPU else "cpu dry run"
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
    for offload in ((False, True) if ON_GPU else (False,)):
        editor = DiffusersEditor(str(path), num_inference_steps=2, max_area=64 * 64, device=DEV,
                                 torch_dtype=DTYPE, cpu_offload=offload)
        start = time.perf_counter()
        edited = editor.edit(images, ["make it red"] * 4, [0, 1, 2, 3])
        sync()
        assert len(edited) == 4 and all(isinstance(e, Image.Image) for e in edited)
        record(f"DiffusersEditor {preset} {DTYPE} cpu_offload={offload}", time.perf_counter() - start,
               f"batch 4, {edited[0].size}")

# 2. batched VLMAgent generate (multi-turn), both families
import gymnasium
import mira_env
from mira_env.agents.vlm import VLMAgent
from mira_env.tiny.vlm import build_tiny_vlm

tasks = [mira_env.Task(id=f"t{i}", instruction="make the square red", image=images[i]) for i in range(4)]
for kind in ("qwen2_5_vl", "qwen3_vl"):
    path = build_tiny_vlm(kind, work / kind)
    agent = VLMAgent(str(path), device=DEV, torch_dtype=DTYPE, max_new_tokens=16, batch_size=4)
    env = gymnasium.make("mira/ImageEdit-v0", editor="identity", tasks=tasks, height=64, width=64)
    observations, infos = [], []
    for i in range(4):
        obs, info = env.reset(seed=i, options={"task": i})
        observations.append(obs)
        infos.append({**info, "episode_id": f"e{i}"})
    start = time.perf_counter()
    actions = agent.act(observations, infos)
    sync()
    record(f"VLMAgent {kind} batched generate ({DEV}, {DTYPE})", time.perf_counter() - start,
           f"{len(actions)} answers in {agent.generate_calls} generate call(s)")

# 3. one SFT step and one GRPO step with editor images (Qwen2.5-VL replica, real upstream template)
from mira_env.records import EditingRecord, TrajectoryStep
from mira_env.train.data import record_samples
from mira_env.train.sft import resolve as sft_resolve, train_sft

# 60 SFT steps on two one-edit records (as tests/train/conftest.py): the policy then answers <edit>...</edit>, so the
# GRPO step below really calls the editor
samples = [s for i in range(2) for s in record_samples(
    EditingRecord(id=f"r{i}", complex_instruction="paint it red", source_image=images[i],
                  trajectory=[TrajectoryStep("paint it red", image=images[i + 2])]), system_prompt="")]
base = build_tiny_vlm("qwen2_5_vl", work / "qwen2_5_vl")
model_args, data_args, config = sft_resolve({"model_name_or_path": str(base), "output_dir": str(work / "sft"), "max_steps": 60,
                                             "learning_rate": 1e-2, "lr_scheduler_type": "constant",
                                             "per_device_train_batch_size": 4, "bf16": ON_GPU, "use_cpu": not ON_GPU,
                                             "system_prompt": "", "save_strategy": "no"})
start = time.perf_counter()
result = train_sft(model_args, data_args, config, samples=samples)
seconds = time.perf_counter() - start
record(f"SFT, 60 steps ({DEV}, {DTYPE})", seconds, f"{seconds / 60:.3f} s/step, mean loss "
       f"{result.metrics.get('train_loss'):.3f}")

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


# the SFT records' own task (instruction and source images): the policy answers it with <edit>paint it red</edit>
grpo_tasks = [mira_env.Task(id=f"g{i}", instruction="paint it red", image=images[i]) for i in range(2)]
env = EditEnv(editor=CountingEditor(), tasks=grpo_tasks, reward=EditReward(), max_steps=2, height=64, width=64)
dataset = build_dataset(env, num_rows=4, system_prompt="")
model_args, env_args, config = grpo_resolve({
    "model_name_or_path": str(work / "sft"), "output_dir": str(work / "grpo"), "max_steps": 1, "num_generations": 4,
    "per_device_train_batch_size": 4, "max_tool_calling_iterations": 2, "max_completion_length": 64,
    "bf16": ON_GPU, "use_cpu": not ON_GPU, "tasks": "custom", "reward": "composite", "system_prompt": "", "save_strategy": "no"})
start = time.perf_counter()
result = train_grpo(model_args, env_args, config, env=env, dataset=dataset)
sync()
log = result.trainer.state.log_history[0]
record(f"GRPO step ({DEV}, {DTYPE}, 4 rollouts)", time.perf_counter() - start,
       f"tool call frequency {log.get('tools/call_frequency')}, editor images {len(shown)}")
assert shown, "the GRPO rollouts never called the editor"

lines = [f"# GPU check ({device})", "", "| check | seconds | detail |", "| --- | --- | --- |"]
lines += [f"| {name} | {seconds:.2f} | {detail} |" for name, seconds, detail in rows]
(out_dir / "gpu.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY

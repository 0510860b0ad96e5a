"""Session fixtures for training tests: a tiny random Qwen2.5-VL, synthetic MIRA-Editing records, a real
stamping editor, and ONE short SFT run whose policy (it learned to answer ``<edit>...</edit>`` first,
``<STOP>`` after an edit) starts the GRPO tests, so their rollouts really call the edit tool.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from mira_env.editors.base import EditorInfo, check_batch
from mira_env.records import EditingRecord, TrajectoryStep
from mira_env.reward_api import RewardOutput
from mira_env.tasks import Task

COLORS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}


@pytest.fixture(scope="session", autouse=True)
def torch_one_thread():
    """Tiny models gain nothing from intra-op threads; on a shared 2-core box they thrash."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    from mira_env.tiny.vlm import build_tiny_vlm

    return build_tiny_vlm("qwen2_5_vl", tmp_path_factory.mktemp("tiny") / "qwen2_5_vl", seed=0)


def make_record(index: int, steps: list[str], size: int = 48) -> EditingRecord:
    """A record whose step k paints a horizontal band of the colour named in instruction k."""
    image = Image.new("RGB", (size, size), (index * 20 % 255, 90, 90))
    trajectory = []
    array = np.asarray(image).copy()
    for k, text in enumerate(steps):
        colour = next((rgb for name, rgb in COLORS.items() if name in text), (255, 255, 255))
        array[k * 8:(k + 1) * 8] = colour
        trajectory.append(TrajectoryStep(text, image=Image.fromarray(array.copy())))
    return EditingRecord(id=f"rec-{index}", complex_instruction=" then ".join(steps) or "do nothing",
                         source_image=image, trajectory=trajectory)


class StampEditor:
    """A real, deterministic editor: paints a band whose pixels depend on (instruction, seed, step).

    Every output differs from every other, so a test can tell which editor output reached which
    model input. It keeps every output it returned, in order.
    """

    def __init__(self) -> None:
        self.info = EditorInfo(name="stamp", deterministic=False)  # output depends on the call count
        self.outputs: list[Image.Image] = []

    def edit(self, images, instructions, seeds):
        check_batch(images, instructions, seeds)
        out = []
        for image, text, seed in zip(images, instructions, seeds):
            rng = np.random.default_rng([seed, len(text), len(self.outputs)])
            array = np.asarray(image.convert("RGB")).copy()
            row = len(self.outputs) % 5 * 8
            array[row:row + 8] = rng.integers(0, 256, (8, array.shape[1], 3))
            result = Image.fromarray(array.astype(np.uint8))
            self.outputs.append(result)
            out.append(result)
        return out


class EditCountReward:
    """A real reward function: 1 when the episode made exactly ``want`` edits and stopped, with parts."""

    def __init__(self, want: int = 1) -> None:
        self.want = want

    def score(self, items):
        outputs = []
        for item in items:
            edits = float(len(item.trajectory))
            stopped = float(item.terminated)
            total = float(edits == self.want) * (0.5 + 0.5 * stopped)
            outputs.append(RewardOutput(total, {"edits": edits, "stopped": stopped, "exact": float(edits == self.want)}))
        return outputs


def make_tasks(n: int = 4, size: int = 48) -> list[Task]:
    return [Task(id=f"task-{i}", instruction="paint it red",
                 image=Image.new("RGB", (size, size), (i * 40 % 255, 90, 90))) for i in range(n)]


@pytest.fixture(scope="session")
def sft_run(tiny_path, tmp_path_factory):
    """One SFT run on multi-turn samples (the GRPO conversation): ``(result, samples, initial_state)``."""
    import torch
    from transformers import AutoModelForImageTextToText

    from mira_env.train.data import record_samples
    from mira_env.train.sft import resolve, train_sft

    records = [make_record(i, ["paint it red"]) for i in range(2)]
    samples = [s for r in records for s in record_samples(r, format="multi_turn", system_prompt="", max_steps=2)]
    initial = {k: v.detach().clone() for k, v in AutoModelForImageTextToText.from_pretrained(tiny_path).state_dict().items()}
    out = tmp_path_factory.mktemp("sft")
    model_args, data_args, config = resolve({
        "model": str(tiny_path), "output_dir": str(out), "max_steps": 60, "per_device_train_batch_size": 4,
        "learning_rate": 1e-2, "save_steps": 30, "logging_steps": 1, "seed": 0, "sample_format": "multi_turn",
        "system_prompt": "", "lr_scheduler_type": "constant"})
    torch.manual_seed(0)
    result = train_sft(model_args, data_args, config, samples=samples)
    return result, samples, initial


class FirstStepWeights:
    """A ``TrainerCallback``: the model's weights when the first step of ``train()`` begins (after any resume load)."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Probe(TrainerCallback):
            def __init__(self) -> None:
                self.weights: dict | None = None
                self.step: int | None = None

            def on_step_begin(self, args, state, control, model=None, **kwargs):
                if self.weights is None:
                    self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                    self.step = state.global_step
                return control

        return _Probe()


def checkpoint_weights(folder) -> dict:
    """The weights a checkpoint folder holds, loaded the way a user loads them (``from_pretrained``)."""
    from transformers import AutoModelForImageTextToText

    return {k: v.detach().clone() for k, v in AutoModelForImageTextToText.from_pretrained(folder).state_dict().items()}

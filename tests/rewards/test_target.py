"""Target metrics (edited vs the task's ground-truth target): L1, L2 and CLIP-I."""

from __future__ import annotations

import numpy as np
import pytest

from mira_env.reward_api import RewardInput
from mira_env.rewards import build_reward
from mira_env.rewards.target import TargetClipImage, TargetPixelDistance
from mira_env.tasks.task import Task


def _item(source, edited, target):
    task = Task(id="t", instruction="add a hat", image=source, target_image=target)
    return RewardInput(source=source, edited=edited, instruction="add a hat", trajectory=["add a hat"], task=task)


def test_target_pixel_distances(images):
    source, near, far = images
    l1, l2 = TargetPixelDistance(1), TargetPixelDistance(2)
    items = [_item(source, near, near), _item(source, source, near), _item(source, near, None)]
    values = l1.score(items)
    expected = float(np.mean(np.abs(np.asarray(source, np.float32) - np.asarray(near, np.float32)) / 255.0))
    assert values[0] == 0.0 and values[1] == pytest.approx(expected, rel=1e-5)
    assert values[2] is None and values.reasons[2] == "task 't' has no target image"
    assert l2.score(items[:1])[0] == 0.0 and l2.name == "target_l2"


def test_a_resized_edit_is_compared_at_the_target_size(images):
    from PIL import Image

    source = images[0]
    ramp = np.linspace(0, 255, 48, dtype=np.float32)
    smooth = Image.fromarray(np.stack([np.tile(ramp, (48, 1))] * 3, axis=-1).astype(np.uint8))
    bigger = smooth.resize((96, 96), Image.Resampling.BICUBIC)
    assert TargetPixelDistance(1).score([_item(source, bigger, smooth)])[0] < 0.01


def test_target_clip_i(tiny_clip, images):
    source, near, far = images
    term = TargetClipImage(*tiny_clip, device="cpu")
    values = term.score([_item(source, far, far), _item(source, near, far), _item(source, near, None)])
    assert values[0] == pytest.approx(1.0, abs=1e-5) and values[1] < values[0]
    assert values[2] is None and values.reasons[2] == "task 't' has no target image"


def test_registered(images):
    source, near, _ = images
    reward = build_reward({"terms": ["target_l1", {"name": "target_l2", "weight": 0}]})
    out = reward.score([_item(source, near, near)])[0]
    assert out.components == {"target_l1": 0.0, "target_l2": 0.0}

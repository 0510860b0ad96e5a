"""Shared fixtures of the rewards tests: images, reward inputs and the tiny offline models (built once)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mira_env.reward_api import RewardInput
from mira_env.tasks.task import Task


def noise_image(seed: int, size: int = 48) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def make_item(source: Image.Image, edited: Image.Image, instruction: str = "make the circle red",
              trajectory=("make the circle red",), raw_actions=(), invalid_actions: int = 0,
              metadata: dict | None = None) -> RewardInput:
    task = Task(id=f"t{abs(hash(instruction)) % 10_000}", instruction=instruction, image=source,
                metadata=metadata or {})
    return RewardInput(source=source, edited=edited, instruction=instruction, trajectory=list(trajectory), task=task,
                       raw_actions=list(raw_actions), invalid_actions=invalid_actions)


@pytest.fixture(scope="session")
def images():
    """A noise source, a mildly perturbed copy, and an unrelated image."""
    source = noise_image(0)
    arr = np.asarray(source).astype(np.int16)
    arr[:12, :12] = 255 - arr[:12, :12]
    near = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    far = noise_image(1)
    return source, near, far


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """``(model_name, checkpoint_path)`` of the tiny open_clip model, built once per session."""
    from mira_env.tiny.reward_models import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def lpips_home(tmp_path_factory):
    """A TORCH_HOME with a random SqueezeNet checkpoint where torchvision looks for it."""
    from mira_env.tiny.reward_models import build_tiny_lpips_home

    return str(build_tiny_lpips_home(tmp_path_factory.mktemp("lpips_home")))

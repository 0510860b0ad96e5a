"""Session fixtures for agent tests: tiny random Qwen2.5-VL / Qwen3-VL builds and EditEnv observations.

``tiny_vlm_paths`` builds each kind ONCE per session (``mira_env.tiny.vlm.build_tiny_vlm``) into a
session temp folder; ``tiny_vlm`` loads one through ``AutoProcessor`` / ``AutoModelForImageTextToText``
(the path real hub ids take). Other test packages may reuse them with
``from tests.agents.conftest import *`` in their own conftest.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from PIL import Image

import mira_env
from mira_env.tiny.vlm import KINDS, build_tiny_vlm


@pytest.fixture(scope="module")
def torch_single_thread():
    """Run a module's tiny-model tests on one torch thread (restored after the module).

    Tiny models gain nothing from intra-op threads, and on a shared 2-core machine under load the
    OpenMP workers of several processes spin against each other (measured here: 16 generated tokens
    took 4 s with 2 threads vs 0.1 s with 1). Use with ``pytestmark = pytest.mark.usefixtures(...)``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_vlm_paths(tmp_path_factory) -> dict:
    """``{kind: path}`` for every tiny VLM kind, built once per session."""
    root = tmp_path_factory.mktemp("tiny_vlm")
    return {kind: build_tiny_vlm(kind, root / kind, seed=0) for kind in KINDS}


@pytest.fixture(scope="session")
def tiny_vlm_loaded(tiny_vlm_paths) -> dict:
    """``{kind: (model, processor)}``, loaded once per session (eval mode, CPU)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    loaded = {}
    for kind, path in tiny_vlm_paths.items():
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path).eval()
        loaded[kind] = (model, processor)
    return loaded


def make_tasks(n: int = 3) -> list:
    """``n`` tasks with distinct random 48x40 images (a fixed seed)."""
    rng = np.random.default_rng(0)
    return [mira_env.Task(id=f"t{i}", instruction=f"make the square {c} and add a circle",
                          image=Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)))
            for i, c in zip(range(n), ["red", "blue", "green", "yellow", "white"] * n)]


@pytest.fixture(scope="session")
def env_observations() -> list[dict]:
    """Three real EditEnv observations (identity editor, 32x32), one of them after two steps."""
    tasks = make_tasks(3)
    env = gymnasium.make("mira/ImageEdit-v0", editor="identity", tasks=tasks, height=32, width=32)
    observations = []
    for index in range(3):
        obs, _ = env.reset(seed=index, options={"task": index})
        if index == 2:
            env.step("make the square red")
            obs, *_ = env.step("add a circle")
        observations.append(obs)
    env.close()
    return observations

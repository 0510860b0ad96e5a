"""Session-scoped tiny diffusers pipelines, built once and shared by every test that needs one.

``tiny_pipeline_path(preset)`` builds the tiny random pipeline of ``preset`` (one of
``mira_env.tiny.pipelines.TINY_PRESETS``) the first time it is asked for and returns its folder;
``tiny_diffusers_editor(preset)`` returns a loaded :class:`DiffusersEditor` of it (2 steps, 64x64
working area), also built once per session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

TINY_EDIT_AREA = 64 * 64
TINY_STEPS = 2


@pytest.fixture(scope="session")
def tiny_pipeline_path(tmp_path_factory) -> Callable[[str], Path]:
    """A function ``preset -> folder`` of a tiny random pipeline saved with ``save_pretrained``."""
    pytest.importorskip("diffusers")
    from mira_env.tiny.pipelines import build_tiny_pipeline

    built: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("tiny_pipelines")

    def get(preset: str) -> Path:
        if preset not in built:
            built[preset] = build_tiny_pipeline(preset, root / preset, seed=0)
        return built[preset]

    return get


@pytest.fixture(scope="session")
def tiny_diffusers_editor(tiny_pipeline_path):
    """A function ``preset -> DiffusersEditor`` loaded from the tiny pipeline (cached per preset)."""
    from mira_env.editors.diffusers_editor import DiffusersEditor

    editors: dict[str, DiffusersEditor] = {}

    def get(preset: str) -> DiffusersEditor:
        if preset not in editors:
            editors[preset] = DiffusersEditor(str(tiny_pipeline_path(preset)), num_inference_steps=TINY_STEPS,
                                              max_area=TINY_EDIT_AREA, device="cpu")
        return editors[preset]

    return get

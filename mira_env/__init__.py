"""mira-env: instruction-guided image editing as a Gymnasium environment (after MIRA, arXiv 2511.21087).

``mira_env.make(tasks="shapes" | path | TaskSource, editor=..., reward=..., ...)`` builds any environment
(:mod:`mira_env.factory`). Importing this package registers the Gymnasium ids ``mira/ImageEdit-v0`` and ``mira/Shapes-v0``.
It never imports torch, diffusers or transformers; those load when a model-backed piece is built.
"""

from __future__ import annotations

import gymnasium

from mira_env.config import EditEnvConfig
from mira_env.editors.base import Editor, EditorInfo, IdentityEditor
from mira_env.env import EditEnv, StepTimings, step_seed
from mira_env.factory import make, make_batched
from mira_env.errors import ActionError, ConfigError, EditorError, MiraError, TaskError
from mira_env.reward_api import RewardFunction, RewardInput, RewardOutput
from mira_env.tasks import Task, TaskList, TaskSource, load_folder, load_hf_dataset, load_jsonl

__version__ = "0.1.0"

#: id -> (entry point, vector entry point: one BatchedEditEnv sharing one editor for ``gymnasium.make_vec``)
_IDS = {
    "mira/ImageEdit-v0": ("mira_env.env:EditEnv", "mira_env.vector:BatchedEditEnv"),
    "mira/Shapes-v0": ("mira_env.shapes.env:make_shapes_env", "mira_env.shapes.env:make_shapes_vector_env"),
}
for _id, (_entry, _vector_entry) in _IDS.items():
    if _id not in gymnasium.registry:
        gymnasium.register(id=_id, entry_point=_entry, vector_entry_point=_vector_entry, disable_env_checker=True)

__all__ = [
    "ActionError", "ConfigError", "EditEnv", "EditEnvConfig", "Editor", "EditorError", "EditorInfo",
    "IdentityEditor", "MiraError", "StepTimings", "RewardFunction", "RewardInput", "RewardOutput", "Task", "TaskError",
    "TaskList", "TaskSource", "load_folder", "load_hf_dataset", "load_jsonl", "make", "make_batched", "step_seed",
]

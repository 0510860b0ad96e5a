"""Tasks: the ``Task`` record, image normalisation and loaders."""

from mira_env.tasks.images import DEFAULT_MAX_PIXELS, image_strip, load_image, normalize_image, to_array
from mira_env.tasks.loaders import load_folder, load_hf_dataset, load_jsonl, resolve_tasks, task_from_record
from mira_env.tasks.task import Task, TaskList, TaskSource, find_task

__all__ = [
    "DEFAULT_MAX_PIXELS", "Task", "TaskList", "TaskSource", "find_task", "image_strip", "load_folder",
    "load_hf_dataset", "load_image", "load_jsonl", "normalize_image", "resolve_tasks", "task_from_record",
    "to_array",
]

"""The ``Task`` record: one source image and one complex instruction, plus what else is known."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from PIL import Image

from mira_env.errors import TaskError
from mira_env.tasks.images import DEFAULT_MAX_PIXELS, load_image, normalize_image


@dataclass(frozen=True, eq=False)
class Task:
    """One editing task: the source image I0 and the complex instruction C.

    The source is either held in memory (``image``) or loaded lazily from ``image_path`` (relative to
    ``root`` when given). ``atomic_instructions`` is a reference decomposition when one is known (the
    MIRA-Editing trajectory, the shapes-world program); ``variants`` are paraphrases of C.
    ``metadata`` carries anything else (dataset fields, shapes-world scenes).
    """

    id: str
    instruction: str
    image: Image.Image | None = None
    image_path: str | None = None
    root: str | None = None
    target_image: Image.Image | None = None
    target_path: str | None = None
    atomic_instructions: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise TaskError(f"task id must be a non-empty str, got {self.id!r}")
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise TaskError(f"task {self.id!r}: instruction must be a non-empty str, got {self.instruction!r}")
        if self.image is None and self.image_path is None:
            raise TaskError(f"task {self.id!r}: needs an image or an image_path")
        object.__setattr__(self, "atomic_instructions", tuple(self.atomic_instructions))
        object.__setattr__(self, "variants", tuple(self.variants))

    def load_source(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
        """The source image as normalised RGB; raises :class:`TaskError` naming this task on failure."""
        record = f"task {self.id!r}"
        if self.image is not None:
            return normalize_image(self.image, record=record, max_pixels=max_pixels)
        return load_image(self.image_path, record=record, root=self.root, max_pixels=max_pixels)

    def load_target(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image | None:
        """The target image when the task has one, else ``None``."""
        record = f"task {self.id!r} (target)"
        if self.target_image is not None:
            return normalize_image(self.target_image, record=record, max_pixels=max_pixels)
        if self.target_path is not None:
            return load_image(self.target_path, record=record, root=self.root, max_pixels=max_pixels)
        return None

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, instruction={self.instruction[:60]!r})"


@runtime_checkable
class TaskSource(Protocol):
    """A finite, indexable collection of tasks (a list, a dataset, a seeded generator)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Task: ...


class TaskList(Sequence[Task]):
    """A list of tasks with lookup by id; ids must be unique."""

    def __init__(self, tasks: Sequence[Task]):
        self._tasks = list(tasks)
        self._by_id: dict[str, int] = {}
        for index, task in enumerate(self._tasks):
            if not isinstance(task, Task):
                raise TaskError(f"TaskList item {index} is {type(task).__name__}, expected Task")
            if task.id in self._by_id:
                raise TaskError(f"duplicate task id {task.id!r} at items {self._by_id[task.id]} and {index}")
            self._by_id[task.id] = index

    def __len__(self) -> int:
        return len(self._tasks)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return TaskList(self._tasks[index])
        return self._tasks[index]

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def get(self, task_id: str) -> Task:
        """The task with id ``task_id``; raises :class:`TaskError` listing a few known ids."""
        try:
            return self._tasks[self._by_id[task_id]]
        except KeyError:
            known = ", ".join(repr(k) for k in list(self._by_id)[:5])
            raise TaskError(f"no task with id {task_id!r}; known ids start with {known}") from None


def find_task(tasks: TaskSource, task_id: str) -> Task:
    """Look a task up by id in any task source (``get`` when it has one, else a scan)."""
    getter = getattr(tasks, "get", None)
    if callable(getter):
        return getter(task_id)
    for index in range(len(tasks)):
        if tasks[index].id == task_id:
            return tasks[index]
    raise TaskError(f"no task with id {task_id!r} among {len(tasks)} tasks")

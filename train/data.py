"""MIRA-Editing records -> per-step SFT samples (start / continue / stop).

A trajectory of n atomic steps gives n + 1 samples. Sample k (k = 0..n) shows the policy the source
I0, the image after k steps Ik (I0 for k = 0) and the first k instructions; its target is the answer
the policy should give there: ``format_action(instruction k+1)``, or ``format_action("<STOP>")`` for
k = n. Two renderings of the same state:

- ``multi_turn`` (default): the conversation GRPO's tool loop builds and the agents play by default
  (:func:`mira_env.agents.prompt.build_conversation`): the k = 0 prompt, then for each executed step the
  policy's answer and the tool turn carrying the edited image. SFT, GRPO and evaluation see the same inputs.
- ``single_turn``: the :func:`mira_env.agents.prompt.build_messages` prompt (I0, Ik, C and the numbered
  history in one user message).

Samples are plain dicts ``{"prompt": messages, "completion": target, "images": [PIL, ...],
"record_id", "step", "kind", "tools"}`` whose image parts are ``{"type": "image"}`` placeholders
filled from ``images`` in order; :class:`SFTCollator` turns a batch into model inputs with the loss
on the target tokens only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from PIL import Image

from mira_env.actions import STOP, format_action
from mira_env.agents.prompt import DEFAULT_EDIT_BUDGET, Turn, build_conversation, build_messages
from mira_env.errors import TaskError, describe
from mira_env.records import EditingRecord, TrajectoryStep, read_records
from mira_env.validate import check_choice

FORMATS = ("single_turn", "multi_turn")
KINDS = ("start", "continue", "stop")
#: Which answers of a multi-turn conversation carry the loss: "last" (one sample per step) or "all" (one
#: sample per trajectory, the loss on every assistant answer).
LOSS_TURNS = ("last", "all")


class DataError(TaskError):
    """A record cannot be turned into SFT samples (missing image, empty instruction, bad field)."""


def _placeholders(messages: Sequence[dict]) -> tuple[list[dict], list[Image.Image]]:
    """Messages with every image part replaced by ``{"type": "image"}``, and the images in order."""
    out, images = [], []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if part.get("type") == "image":
                    images.append(part["image"])
                    parts.append({"type": "image"})
                else:
                    parts.append(dict(part))
            message = {**message, "content": parts}
        out.append(dict(message))
    return out, images


def _load(record: EditingRecord, what: str, loader) -> Image.Image:
    try:
        image = loader()
    except TaskError as exc:
        raise DataError(f"record {record.id!r}: cannot load {what}: {exc}") from exc
    if image is None:
        raise DataError(f"record {record.id!r}: {what} is missing")
    return image.convert("RGB") if image.mode != "RGB" else image


def record_samples(record: EditingRecord, *, format: str = "multi_turn", system_prompt: str | None = None,
                   max_steps: int | None = None, loss_turns: str = "last") -> list[dict]:
    """The n + 1 SFT samples of one record (see the module docstring), or its one trajectory sample.

    Args:
        record: a MIRA-Editing record with its source image and every step's image.
        format: ``"single_turn"`` or ``"multi_turn"``.
        system_prompt: passed to :func:`mira_env.agents.prompt.build_messages` (``""`` drops the system message).
        max_steps: the GRPO edit budget T shown in multi-turn tool results (default
            :data:`mira_env.agents.prompt.DEFAULT_EDIT_BUDGET`, GRPO's default).
        loss_turns: ``"last"``: the n + 1 per-step samples, each with the loss on its last answer;
            ``"all"`` (``multi_turn`` only): ONE sample, the stop sample's whole conversation, with the loss on
            every assistant answer (:class:`SFTCollator`). Each answer is predicted from exactly the context of
            its per-step sample (a causal model sees only the tokens before it), so the targets and contexts
            are the same as the n + 1 samples' with one forward pass instead of n + 1.
    """
    check_choice("format", format, FORMATS, error=DataError)
    check_choice("loss_turns", loss_turns, LOSS_TURNS, error=DataError)
    if loss_turns == "all" and format != "multi_turn":
        raise DataError(f"loss_turns='all' needs format='multi_turn' (a {format} sample holds one answer); "
                        "use loss_turns='last'")
    if not isinstance(record, EditingRecord):
        raise DataError(f"expected an EditingRecord, got {describe(record)}")
    if not isinstance(record.complex_instruction, str) or not record.complex_instruction.strip():
        raise DataError(f"record {record.id!r}: complex_instruction is empty")
    steps = list(record.trajectory)
    for index, step in enumerate(steps):
        if not isinstance(step.instruction, str) or not step.instruction.strip():
            raise DataError(f"record {record.id!r}: trajectory[{index}].instruction is empty")
        if step.instruction.strip().lower() == STOP.lower():
            raise DataError(f"record {record.id!r}: trajectory[{index}] is {STOP!r}; trajectories list the "
                            "executed edits only (the stop sample is added automatically)")
    source = _load(record, "source_image", record.load_source)
    images = [source] + [_load(record, f"trajectory[{i}].image", lambda i=i: record.load_step_image(i))
                         for i in range(len(steps))]
    instructions = [" ".join(step.instruction.split()) for step in steps]
    budget = max_steps if max_steps is not None else DEFAULT_EDIT_BUDGET
    if format == "multi_turn" and len(steps) > budget:
        raise DataError(f"record {record.id!r} has {len(steps)} steps, over the edit budget {budget}; raise "
                        "edit_budget (GRPO's max_tool_calling_iterations) to at least the longest trajectory")
    samples = []
    # a trajectory sample is the stop sample (k = n): its conversation holds every earlier answer
    for k in ([len(steps)] if loss_turns == "all" else range(len(steps) + 1)):
        target = format_action(instructions[k]) if k < len(steps) else format_action(STOP)
        kind = "start" if k == 0 else ("stop" if k == len(steps) else "continue")
        if k == 0 and not steps:
            kind = "stop"
        if format == "single_turn":
            messages = build_messages(record.complex_instruction, source, images[k], instructions[:k],
                                      system_prompt=system_prompt)
        else:
            turns = [Turn(format_action(instructions[i]), images[i + 1]) for i in range(k)]
            messages = build_conversation(record.complex_instruction, source, turns, edit_budget=budget,
                                          system_prompt=system_prompt)
        prompt, prompt_images = _placeholders(messages)
        samples.append({"prompt": prompt, "completion": target, "images": prompt_images, "record_id": record.id,
                        "step": k, "kind": kind, "tools": format == "multi_turn", "all_turns": loss_turns == "all"})
    return samples


def _record_from_row(row: dict, index: int) -> EditingRecord:
    """An :class:`EditingRecord` from a ``datasets`` row (images decoded to PIL, or paths)."""
    where = f"dataset row {index}"
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a mapping, got {describe(row)}")
    record_id = str(row.get("id") or f"row-{index}")
    instruction = row.get("complex_instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise DataError(f"{where} (record {record_id!r}): 'complex_instruction' must be a non-empty string, "
                        f"got {describe(instruction)}")

    def image_of(value: Any, what: str) -> tuple[Image.Image | None, str | None]:
        if isinstance(value, Image.Image):
            return value, None
        if isinstance(value, dict) and value.get("bytes") is not None:
            import io

            return Image.open(io.BytesIO(value["bytes"])), None
        if isinstance(value, dict) and value.get("path"):
            return None, value["path"]
        if isinstance(value, str) and value:
            return None, value
        raise DataError(f"{where} (record {record_id!r}): {what} must be an image or a path, got {describe(value)}")

    source, source_path = image_of(row.get("source_image"), "source_image")
    trajectory = row.get("trajectory") or []
    if isinstance(trajectory, dict):  # a datasets Sequence of structs comes back as a dict of lists
        keys = list(trajectory)
        trajectory = [dict(zip(keys, values)) for values in zip(*(trajectory[k] for k in keys))]
    steps = []
    for i, step in enumerate(trajectory):
        if not isinstance(step, dict) or not isinstance(step.get("instruction"), str):
            raise DataError(f"{where} (record {record_id!r}): trajectory[{i}] needs a string 'instruction', "
                            f"got {describe(step)}")
        image, path = image_of(step.get("image"), f"trajectory[{i}].image")
        steps.append(TrajectoryStep(step["instruction"], image=image, image_path=path))
    return EditingRecord(id=record_id, complex_instruction=instruction, source_image=source, source_path=source_path,
                         trajectory=steps, metadata=dict(row.get("metadata") or {}), root=row.get("root"))


def load_records(source: str | os.PathLike | Iterable[Any], *, split: str = "train") -> list[EditingRecord]:
    """Records from a MIRA-Editing folder / ``records.jsonl``, a ``datasets`` dataset (object, hub id or
    ``load_from_disk`` folder), or an iterable of records / row dicts."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir() and (path / "records.jsonl").is_file() or path.suffix == ".jsonl":
            return read_records(path)
        import datasets

        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(str(source), split=split)
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DataError(f"dataset {str(source)!r} has no split {split!r}; splits: {list(loaded)}")
            loaded = loaded[split]
        source = loaded
    records = []
    for index, item in enumerate(source):
        records.append(item if isinstance(item, EditingRecord) else _record_from_row(dict(item), index))
    return records


def build_sft_samples(source: Any, *, format: str = "multi_turn", system_prompt: str | None = None,
                      max_steps: int | None = None, split: str = "train", loss_turns: str = "last") -> list[dict]:
    """Every record's n + 1 samples (or its one trajectory sample with ``loss_turns="all"``), record by record
    (see :func:`record_samples`)."""
    return [sample for record in load_records(source, split=split)
            for sample in record_samples(record, format=format, system_prompt=system_prompt, max_steps=max_steps,
                                         loss_turns=loss_turns)]


def samples_to_dataset(samples: Sequence[dict]):
    """SFT samples as a ``datasets.Dataset`` (``images`` as an Image sequence; TRL trainers need one)."""
    import datasets

    return datasets.Dataset.from_list([dict(sample) for sample in samples])


def fill_images(messages: Sequence[dict], images: Sequence[Image.Image]) -> list[dict]:
    """Messages with their ``{"type": "image"}`` placeholders filled from ``images`` in order."""
    queue = list(images)
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                part = {k: v for k, v in part.items() if v is not None}
                if part.get("type") == "image" and "image" not in part:
                    if not queue:
                        raise DataError("more image placeholders than images")
                    part["image"] = queue.pop(0)
                parts.append(part)
            message = {**message, "content": parts}
        out.append({k: v for k, v in message.items() if v is not None})
    if queue:
        raise DataError(f"{len(queue)} image(s) left over after filling the placeholders")
    return out


@dataclass
class SFTCollator:
    """Batches SFT samples for a VLM: prompt rendered with the chat template (plus the ``edit`` tool
    schema for multi-turn samples, as GRPO renders it), target + end-of-turn appended, loss on the
    target tokens only (``labels = -100`` elsewhere). A trajectory sample (``"all_turns": True``, from
    ``loss_turns="all"``) also carries the loss on every earlier assistant answer of its conversation, each
    up to and including its end-of-turn token.
    """

    processor: Any
    max_length: int | None = None

    def __post_init__(self) -> None:
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.eos = tokenizer.eos_token or "<|im_end|>"
        self.eos_id = tokenizer.convert_tokens_to_ids(self.eos)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def _template(self, messages: Sequence[dict], tools: bool) -> str:
        from mira_env.agents.families import EDIT_TOOL_SCHEMA

        messages = [{k: v for k, v in m.items() if v is not None} for m in messages]
        messages = [{**m, "content": [{k: v for k, v in p.items() if v is not None} for p in m["content"]]}
                    if isinstance(m.get("content"), list) else m for m in messages]
        return self.processor.apply_chat_template(messages, tools=[EDIT_TOOL_SCHEMA] if tools else None,
                                                  tokenize=False, add_generation_prompt=True)

    def render(self, sample: dict) -> tuple[str, str]:
        """``(prompt_text, target_text)`` of one sample."""
        return self._template(sample["prompt"], bool(sample.get("tools"))), sample["completion"] + self.eos

    def answer_prompts(self, sample: dict, prompt: str) -> list[tuple[str, int]]:
        """``(prompt_text, number_of_images)`` before each earlier assistant answer of a trajectory sample whose
        whole rendered prompt is ``prompt`` (empty for a per-step sample). Raises when the chat template renders
        the earlier turns of the whole conversation differently from a shorter one: then those answers were not
        trained in their per-step context, and per-step samples (``loss_turns="last"``) are the right choice."""
        if not sample.get("all_turns"):
            return []
        out, images = [], 0
        for index, message in enumerate(sample["prompt"]):
            if message.get("role") == "assistant":
                text = self._template(sample["prompt"][:index], bool(sample.get("tools")))
                if not prompt.startswith(text):
                    raise DataError(f"record {sample.get('record_id')!r}: the chat template renders the turns "
                                    f"before assistant message {index} differently inside the whole conversation, "
                                    "so its answer cannot be trained in its own context; use loss_turns='last'")
                out.append((text, images))
            content = message.get("content")
            if isinstance(content, list):
                images += sum(1 for part in content if part.get("type") == "image")
        return out

    def _length(self, text: str, images: Sequence[Image.Image]) -> int:
        return int(self.processor(text=[text], images=list(images) or None, return_tensors="pt")["input_ids"].shape[1])

    def __call__(self, samples: list[dict]) -> dict:
        import torch

        texts, prompts, images = [], [], []
        for sample in samples:
            prompt, target = self.render(sample)
            texts.append(prompt + target)
            images.append(list(sample["images"]))
            prompts.append(prompt)
        flat = [image for group in images for image in group]
        batch = self.processor(text=texts, images=flat or None, padding=True, padding_side="right",
                               return_tensors="pt")
        ids = batch["input_ids"]
        labels = torch.full_like(ids, -100)
        for row, (sample, prompt, group) in enumerate(zip(samples, prompts, images)):
            # The prompt's token count: tokenize the prompt alone with the same images; the answer follows it.
            start = self._length(prompt, group)
            labels[row, start:] = ids[row, start:]
            for text, count in self.answer_prompts(sample, prompt):
                start = self._length(text, group[:count])
                ends = (ids[row, start:] == self.eos_id).nonzero()
                end = start + int(ends[0]) + 1 if len(ends) else ids.shape[1]
                labels[row, start:end] = ids[row, start:end]
        labels[batch["attention_mask"] == 0] = -100
        if self.max_length is not None and ids.shape[1] > self.max_length:
            raise ValueError(f"a batch is {ids.shape[1]} tokens long, over max_length="
                             f"{self.max_length}; raise max_length (image tokens cannot be cut)")
        batch["labels"] = labels
        if not torch.any(labels != -100):
            raise ValueError("no target tokens in the batch")
        return dict(batch)

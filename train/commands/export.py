"""``mira export``: generated shapes-world tasks with their oracle trajectories as MIRA-Editing records.

Flags: the fields of :class:`ExportArguments`; the export itself is :mod:`mira_env.shapes.export`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from mira_env.errors import ConfigError
from mira_env.validate import check_float, check_int
from mira_env.shapes.generator import DIFFICULTIES, SPLITS
from mira_env.train.config import OldFlag, add_command_arguments, dash_flags, resolve_config


@dataclass
class ExportArguments:
    """What to export: a split of generated shapes-world tasks, with their oracle trajectories."""

    out: str | None = field(default=None, metadata={"help": "Output folder (records.jsonl and images/); required."})
    split: str = field(default="test", metadata={"help": "Which split to generate.", "choices": SPLITS})
    num_tasks: int = field(default=100, metadata={"help": "Number of tasks."})
    difficulty: int | None = field(default=None, metadata={
        "help": "Difficulty 1, 2 or 3 (atomic edits per task; default: the generator's mix).", "choices": DIFFICULTIES})
    seed: int = field(default=0, metadata={"help": "Generator seed."})
    resolution: int = field(default=128, metadata={"help": "Image side in pixels."})
    hf_out: str | None = field(default=None, metadata={"help": "Also save a Hugging Face datasets dataset here."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    noise_ignore: float = field(default=0.0, metadata={
        "help": "Probability that the exporting editor ignores an edit; the oracle then re-issues the same "
                "instruction, and the record keeps the failed attempt (trajectories with corrections, e.g. for "
                "SFT of a policy that retries). 0 = clean trajectories."})
    noise_seed: int = field(default=0, metadata={"help": "EditorNoise seed of --noise_ignore (which edits fail)."})
    max_steps: int | None = field(default=None, metadata={
        "help": "Edit budget of an exported trajectory: with --noise_ignore, tasks whose retries need more edits "
                "are skipped (and counted). Default: no limit."})

    def __post_init__(self) -> None:
        if not self.out:
            raise ConfigError("no output folder: pass --out <folder> (records.jsonl and images/ are written there)")
        check_float("noise_ignore", self.noise_ignore, minimum=0, maximum=1, hint="a probability")
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, minimum=1)


OLD_FLAGS = [*dash_flags([ExportArguments], "num_tasks", "hf_out"), OldFlag("--no-progress", "progress", False)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_command_arguments(parser, [(ExportArguments, "export")], OLD_FLAGS)


def main(args: argparse.Namespace) -> int:
    from mira_env.records import write_records
    from mira_env.shapes.export import iter_oracle_records, save_hf_dataset
    from mira_env.shapes.generator import ShapesTaskConfig, ShapesTaskGenerator
    from mira_env.shapes.noise import EditorNoise

    (options,) = resolve_config([ExportArguments], args)
    generator = ShapesTaskGenerator(ShapesTaskConfig(split=options.split, num_tasks=options.num_tasks,
                                                     difficulty=options.difficulty, seed=options.seed,
                                                     resolution=options.resolution))
    noise = EditorNoise(ignore=options.noise_ignore, seed=options.noise_seed) if options.noise_ignore > 0 else None
    skipped: list[str] = []
    path = write_records(iter_oracle_records(generator, progress=options.progress, noise=noise,
                                             max_steps=options.max_steps, skipped=skipped), options.out)
    print(f"wrote {len(generator) - len(skipped)} records to {path}")
    if skipped:
        print(f"skipped {len(skipped)} tasks whose retries of ignored edits need more than --max_steps "
              f"{options.max_steps} edits")
    if options.hf_out:
        print(f"saved datasets dataset to {save_hf_dataset(options.out, options.hf_out)}")
    return 0

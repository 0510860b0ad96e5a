"""``mira export``: generated shapes-world tasks with their oracle trajectories as MIRA-Editing records.

Flags: the fields of :class:`ExportArguments`; the export itself is :mod:`mira_env.shapes.export`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from mira_env.errors import ConfigError
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

    def __post_init__(self) -> None:
        if not self.out:
            raise ConfigError("no output folder: pass --out <folder> (records.jsonl and images/ are written there)")


OLD_FLAGS = [*dash_flags([ExportArguments], "num_tasks", "hf_out"), OldFlag("--no-progress", "progress", False)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_command_arguments(parser, [(ExportArguments, "export")], OLD_FLAGS)


def main(args: argparse.Namespace) -> int:
    from mira_env.records import write_records
    from mira_env.shapes.export import iter_oracle_records, save_hf_dataset
    from mira_env.shapes.generator import ShapesTaskConfig, ShapesTaskGenerator

    (options,) = resolve_config([ExportArguments], args)
    generator = ShapesTaskGenerator(ShapesTaskConfig(split=options.split, num_tasks=options.num_tasks,
                                                     difficulty=options.difficulty, seed=options.seed,
                                                     resolution=options.resolution))
    path = write_records(iter_oracle_records(generator, progress=options.progress), options.out)
    print(f"wrote {len(generator)} records to {path}")
    if options.hf_out:
        print(f"saved datasets dataset to {save_hf_dataset(options.out, options.hf_out)}")
    return 0

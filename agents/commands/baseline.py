"""The no-op baseline row of ``mira run`` / ``mira eval`` tables: an agent that answers ``<STOP>`` at once.

Its final image is the source, so its row is what doing nothing scores under the same reward, editor and seeds:
the floor every agent must beat (a metric the no-op does well on rewards leaving the image alone). It plays one
episode per task (G copies of a no-op episode would be identical and would narrow the interval falsely), into
``<folder>/baseline/`` with no images, apart from the agents' episodes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from mira_env.episodes import EpisodeRecord

from mira_env.agents.baselines import NoOpAgent
from mira_env.agents.specs import BASELINE_AGENT

#: the sub-folder of a run / eval folder holding the baseline's episodes
BASELINE_DIR = "baseline"
#: the line printed under a table with a baseline row
BASELINE_NOTE = (f"{BASELINE_AGENT}: the baseline row (answers <STOP> at once: the source image is scored as the "
                 f"final image); 95% intervals in brackets (Wilson for rates, Student t for means)")


def play_baseline(venv: Any, task_indices: Sequence[int], config: Any, folder: str | Path) -> list[EpisodeRecord]:
    """Play the no-op once per task of ``task_indices`` (the run's seeds) and return its records (resumed from
    ``folder/baseline`` when already there)."""
    from mira_env.agents.rollout import EpisodeStore, plan_groups, run_agents

    baseline_config = replace(config, group_size=1, groups_per_task=1, groups_per_batch=venv.num_envs,
                              images="none", progress=False)
    jobs = plan_groups(venv.tasks, baseline_config, list(task_indices))
    task_ids = {venv.tasks[i].id for i in task_indices}
    with EpisodeStore(Path(folder) / BASELINE_DIR) as store:
        run_agents(venv, {BASELINE_AGENT: NoOpAgent()}, jobs, baseline_config, store)
        return [r for r in store.records() if r.agent == BASELINE_AGENT and r.task_id in task_ids]


__all__ = ["BASELINE_DIR", "BASELINE_NOTE", "play_baseline"]

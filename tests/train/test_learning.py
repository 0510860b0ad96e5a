"""Pieces of the learning-result script: Wilson intervals, the evaluation loop (oracle path), oracle records."""

from __future__ import annotations

import numpy as np
import pytest

from mira_env.train.learning import oracle_records, play, summarize, wilson


def test_wilson_interval():
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-3) and high == pytest.approx(0.7634, abs=1e-3)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)


def test_oracle_plays_every_held_out_task_to_success_without_noise():
    from mira_env.shapes import make_shapes_env

    env = make_shapes_env(split="test", num_tasks=6, difficulty=1, resolution=56, max_steps=3, reward="oracle")
    env = getattr(env, "unwrapped", env)
    seeds = np.arange(6)
    episodes = play(None, None, env, list(range(6)), seeds, budget=3, oracle=True)
    summary = summarize("oracle", episodes)
    assert summary["n"] == 6 and summary["successes"] == 6 and summary["mean_edits"] == 2.0
    noisy = make_shapes_env(split="test", num_tasks=6, difficulty=1, resolution=56, max_steps=3, reward="oracle",
                            noise=0.5)
    summary = summarize("oracle", play(None, None, getattr(noisy, "unwrapped", noisy), list(range(6)), seeds,
                                       budget=3, oracle=True))
    assert summary["successes"] < 6  # editor noise costs the oracle too


def test_oracle_records_replay_the_program():
    from mira_env.shapes import make_shapes_env

    env = make_shapes_env(split="train", num_tasks=3, difficulty=1, resolution=56, max_steps=3, reward="oracle")
    records = oracle_records(getattr(env, "unwrapped", env), 3)
    assert [len(r.trajectory) for r in records] == [2, 2, 2]
    assert all(r.trajectory[-1].image.size == (56, 56) for r in records)

"""Pieces of the learning-result experiment (experiments/learning.py, not installed): Wilson intervals, the exact
McNemar test, stage summaries of real rollout records, the config checks and the GRPO advantage flag."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from mira_env.errors import ConfigError

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "learning.py"
_SPEC = importlib.util.spec_from_file_location("mira_learning_experiment", _PATH)
learning = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = learning  # dataclasses resolve their module by name
_SPEC.loader.exec_module(learning)
LearningConfig, mcnemar, summarize, wilson = learning.LearningConfig, learning.mcnemar, learning.summarize, learning.wilson


def test_wilson_interval():
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-3) and high == pytest.approx(0.7634, abs=1e-3)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0
    assert wilson(0, 0) == [0.0, 1.0]


def test_the_paired_test_is_the_public_one():
    from mira_env.agents.intervals import mcnemar_test

    first, second = [True] * 3 + [False] * 7, [True] * 3 + [True] * 5 + [False] * 2
    assert mcnemar(first, second) == mcnemar_test(first, second)  # tested in tests/agents/test_paired_test.py


def test_summarize_reads_rollout_records(tmp_path):
    from mira_env.agents.baselines import ScriptedOracleAgent
    from mira_env.shapes import make_shapes_env
    from mira_env.agents.play import play_episodes

    env = make_shapes_env(split="test", num_tasks=6, difficulty=1, resolution=56, max_steps=3, reward="oracle")
    records, _ = play_episodes(env, ScriptedOracleAgent(), list(range(6)), seed=7, run_dir=tmp_path)
    summary = summarize("oracle", records)
    assert summary["n"] == 6 and summary["successes"] == 6 and summary["mean_edits"] == 2.0
    assert summary["mean_oracle_score"] == pytest.approx(1.0)
    noisy = make_shapes_env(split="test", num_tasks=6, difficulty=1, resolution=56, max_steps=3, reward="oracle",
                            noise={"ignore": 0.6})
    records, _ = play_episodes(noisy, ScriptedOracleAgent(replan=False), list(range(6)), seed=7, run_dir=tmp_path / "n")
    assert summarize("open", records)["successes"] < 6  # ignored edits cost the open-loop oracle


def test_config_checks_and_noise_spec():
    cfg = LearningConfig(noise=0.2, noise_kinds="ignore, partial")
    assert cfg.noise_spec == {"ignore": 0.2, "partial": 0.2} and cfg.credit_list == ["episode", "turn"]
    with pytest.raises(ConfigError, match="credits='episode,step'"):
        LearningConfig(credits="episode,step")
    with pytest.raises(ConfigError, match="multiple of group"):
        LearningConfig(grpo_batch=12, group=8)


def test_grpo_advantage_flag_chooses_the_turn_credit_trainer():
    from mira_env.train.grpo import GRPOEnvArguments, build_env

    assert GRPOEnvArguments().advantage == "episode"
    with pytest.raises(ConfigError, match="advantage='step'"):
        GRPOEnvArguments(advantage="step")
    env = build_env(GRPOEnvArguments(advantage="turn", num_tasks=2, difficulty=1, resolution=56), max_steps=3)
    assert env.config.reward_mode == "every_step"  # turn credit reads every step's score
    assert build_env(GRPOEnvArguments(num_tasks=2, difficulty=1, resolution=56), max_steps=3).config.reward_mode == \
        "terminal"


def test_grpo_build_env_takes_the_editor_spec_on_shapes_tasks():
    """`mira train grpo --tasks shapes --editor SPEC` uses SPEC (e.g. a served editor), not the in-process shapes editor."""
    from mira_env.editors.base import IdentityEditor
    from mira_env.shapes.editor import ShapesEditor
    from mira_env.train.grpo import GRPOEnvArguments, build_env

    default = build_env(GRPOEnvArguments(num_tasks=2, difficulty=1, resolution=56), max_steps=3)
    assert isinstance(default.editor, ShapesEditor)
    chosen = build_env(GRPOEnvArguments(num_tasks=2, difficulty=1, resolution=56, editor="identity"), max_steps=3)
    assert isinstance(chosen.editor, IdentityEditor)

"""The GRPO reward: 'oracle', 'composite' (--reward_terms / --reward_weights) or a reward YAML file, built with
rewards.build_reward, scored on real shapes-world episodes, and every component logged as reward/<name>."""

from __future__ import annotations

import math

import pytest

from mira_env.errors import ConfigError
from mira_env.train.grpo import EpisodeReward, GRPOEnvArguments, build_env, build_reward
from mira_env.train.tools import EditingToolEnv, env_factory


def _play(env_args: GRPOEnvArguments, oracle_plan: bool):
    """Two real episodes through the edit tool: the oracle plan then <STOP>, or one bogus edit then <STOP>."""
    base = build_env(env_args, max_steps=3)
    make = env_factory(base)
    environments, completions = [], []
    for task in range(2):
        tool_env: EditingToolEnv = make()
        tool_env.reset(task_id=base.tasks[task].id, editor_seed=task)
        steps = list(tool_env.env.task.atomic_instructions) if oracle_plan else ["make the sky purple"]
        for step in steps:
            try:
                tool_env.edit(step)
            except ValueError:
                pass  # an invalid instruction is an invalid action, counted by the env
        environments.append(tool_env)
        completions.append([{"role": "assistant", "content": "<STOP>"}])
    logged = {}
    reward = EpisodeReward()
    totals = reward(prompts=[None] * 2, completions=completions, environments=environments,
                    log_metric=lambda name, value: logged.__setitem__(name, value))
    return totals, logged


def test_composite_reward_from_terms_and_weights_logs_every_component():
    args = GRPOEnvArguments(num_tasks=2, difficulty=1, reward="composite",
                            reward_terms=["oracle", "format", "step_cost", "invalid_action"],
                            reward_weights=[1.0, 0.5, 0.0, 0.0])
    composite = build_reward(args)
    assert list(composite.names) == ["oracle", "format", "step_cost", "invalid_action"]
    good, logged = _play(args, oracle_plan=True)
    for name in ("oracle", "format", "step_cost", "invalid_action"):
        assert f"reward/{name}" in logged and math.isfinite(logged[f"reward/{name}"]), name
    assert logged["reward/oracle"] == pytest.approx(1.0) and logged["reward/format"] == pytest.approx(1.0)
    assert all(t == pytest.approx(1.0 + 0.5) for t in good)  # weight-0 terms are logged, not summed
    bad, _ = _play(args, oracle_plan=False)
    assert all(b < g for b, g in zip(bad, good))


def test_reward_yaml_file(tmp_path):
    path = tmp_path / "reward.yaml"
    path.write_text("terms:\n  - {name: oracle, weight: 2.0}\n  - {name: step_cost, weight: 0.0, params: {max_steps: 3}}\n")
    args = GRPOEnvArguments(num_tasks=2, difficulty=1, reward=str(path))
    totals, logged = _play(args, oracle_plan=True)
    assert set(logged) >= {"reward/oracle", "reward/step_cost", "episode/edits", "episode/stopped"}
    assert all(t == pytest.approx(2.0) for t in totals)


def test_oracle_reward_default_and_bad_reward_named():
    assert build_reward(GRPOEnvArguments()) == "oracle"
    with pytest.raises(ConfigError, match="must be 'oracle', 'composite' or the path"):
        GRPOEnvArguments(reward="no/such/reward.yaml")


def test_default_reward_is_the_oracle_on_shapes_and_a_judge_composite_elsewhere(tmp_path):
    from mira_env.train.grpo import JUDGE_REWARD_TERMS, JUDGE_REWARD_WEIGHTS, GRPOEnvArguments, build_reward

    shapes = GRPOEnvArguments()
    assert (shapes.reward, shapes.reward_terms, shapes.reward_weights) == ("oracle", ["oracle", "format", "step_cost"],
                                                                           None)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("")
    real = GRPOEnvArguments(tasks=str(tasks), judge_backend="openai", judge_model="judge-vlm",
                            judge_base_url="http://127.0.0.1:9/v1", judge_api_key_env="")
    assert (real.reward, real.reward_terms, real.reward_weights) == ("composite", list(JUDGE_REWARD_TERMS),
                                                                     list(JUDGE_REWARD_WEIGHTS))
    reward = build_reward(real)  # builds the judge lazily: nothing is contacted here
    assert [term.name for term in reward.terms] == list(JUDGE_REWARD_TERMS)
    assert list(reward.weights) == list(JUDGE_REWARD_WEIGHTS)

"""Turn-level credit: token turns, per-turn rewards, group normalisation, (B, T) advantages, the trainer hook."""

from __future__ import annotations

import math

import pytest
import torch

from mira_env.errors import ConfigError
from mira_env.train.credit import (TurnCreditConfig, group_turn_advantages, rollout_turn_rewards, token_advantages,
                                   turn_of_tokens, turn_rewards)


def test_turn_of_tokens_counts_answers_between_tool_results():
    assert turn_of_tokens([1, 1, 0, 0, 1, 1, 1, 0, 1]) == [0, 0, -1, -1, 1, 1, 1, -1, 2]
    assert turn_of_tokens([1, 1, 1]) == [0, 0, 0]
    assert turn_of_tokens([]) == []


def test_turn_rewards_are_score_changes_then_the_closing_turn():
    # two edits scored 0.8 then 1.0 + bonus 1.0 at STOP (final 2.0): turns 0.8, 0.2, 1.0
    assert turn_rewards([0.8, 1.0], 2.0, 3) == pytest.approx([0.8, 0.2, 1.0])
    # the budget ended the episode: no closing turn
    assert turn_rewards([0.5, 0.7, 0.9], 0.9, 3) == pytest.approx([0.5, 0.2, 0.2])
    # unscored episode: no turn signal
    assert turn_rewards([0.5], None, 2) == [0.0, 0.0]


def test_turn_rewards_refuse_an_unscored_step_with_the_fix():
    with pytest.raises(ConfigError, match="reward_mode='every_step'"):
        turn_rewards([0.5, None], 1.0, 3)


def test_group_turn_advantages_normalise_each_turn_over_the_members_that_have_it():
    rewards = [[0.0, 1.0], [0.0, 0.0, 0.5], [1.0], [0.5, 0.5]]  # groups of 2: (0, 1) and (2, 3)
    out = group_turn_advantages(rewards, 2, eps=0.0 + 1e-12)
    half = 1 / math.sqrt(2)  # two values: (v - mean) / sample std = +/- 1/sqrt(2)
    assert out[0] == pytest.approx([0.0, half])  # turn 0 ties: 0
    assert out[1] == pytest.approx([0.0, -half, 0.0])  # turn 2: alone -> 0
    assert out[2] == pytest.approx([half]) and out[3][0] == pytest.approx(-half)
    assert out[3][1] == 0.0
    with pytest.raises(ConfigError, match="groups of 3"):
        group_turn_advantages(rewards, 3)


def test_token_advantages_add_the_turn_term_per_token():
    episode = torch.tensor([0.5, -0.5])
    mask = torch.tensor([[1, 1, 0, 1], [1, 0, 1, 1]])
    out = token_advantages(episode, mask, [[1.0, -1.0], [2.0]], weight=0.5)
    assert out.shape == (2, 4)
    assert torch.allclose(out, torch.tensor([[1.0, 1.0, 0.5, 0.0], [0.5, -0.5, -0.5, -0.5]]))


def test_config_is_checked():
    with pytest.raises(ConfigError, match="turn_weight"):
        TurnCreditConfig(turn_weight=-1.0)
    with pytest.raises(ConfigError, match="eps"):
        TurnCreditConfig(eps=0.0)


def test_rollout_turn_rewards_read_a_real_tool_env_scored_every_step():
    from mira_env.shapes import make_shapes_env
    from mira_env.shapes.oracle import ShapesOracleReward
    from mira_env.train.tools import EditingToolEnv, finish_episode

    env = make_shapes_env(split="train", num_tasks=2, difficulty=1, resolution=56, max_steps=3,
                          reward=ShapesOracleReward(success_bonus=1.0), reward_mode="every_step")
    base = getattr(env, "unwrapped", env)
    tool = EditingToolEnv(type(base)(editor=base.editor, tasks=base.tasks, reward=base.reward_fn, config=base.config))
    tool.reset(task_id=base.tasks[0].id, editor_seed=3)
    task = tool.env.task
    for instruction in task.atomic_instructions:
        tool.edit(instruction)
    finish_episode(tool, "<STOP>")
    scores = [s["reward_total"] for s in tool.steps]
    assert scores[-1] == pytest.approx(2.0)  # the target reached: oracle 1.0 + bonus 1.0
    rewards = rollout_turn_rewards(tool, [1, 0, 1, 0, 1])
    assert rewards == pytest.approx([scores[0], scores[1] - scores[0], 0.0])  # STOP adds nothing after success
    assert sum(rewards) == pytest.approx(tool.total)

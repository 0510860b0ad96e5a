import pytest

from mira_env.agents.base import Agent
from mira_env.agents.baselines import OneShotAgent, RandomAgent, ScriptedOracleAgent
from mira_env.agents.play import play_episodes, success_stats
from mira_env.shapes.env import make_shapes_env
from mira_env.shapes.grammar import parse_instruction
from mira_env.shapes.noise import EditorNoise

NOISE = EditorNoise(ignore=0.2, wrong_object=0.1, color_drift=0.1, position_drift=0.1)


def play(env, agent):
    """Success figures of ``agent`` on every task of ``env`` (played through the rollout engine)."""
    records, _ = play_episodes(env, agent, keep_images=False)
    assert [r.task_index for r in records] == list(range(len(env.tasks)))
    return success_stats(records, env.tasks)


@pytest.mark.parametrize("agent", [ScriptedOracleAgent(), OneShotAgent(), RandomAgent()])
def test_agents_implement_the_protocol(agent):
    assert isinstance(agent, Agent) and isinstance(agent.name, str)


def test_oracle_solves_every_task_without_noise():
    env = make_shapes_env(split="test", num_tasks=40)
    stats = play(env, ScriptedOracleAgent())
    assert stats.success_rate == 1.0 and stats.editor_failures == 0


def test_one_shot_solves_far_fewer():
    env = make_shapes_env(split="test", num_tasks=40)
    oracle = play(env, ScriptedOracleAgent()).success_rate
    one_shot = play(env, OneShotAgent())
    assert one_shot.mean_steps == 2.0  # the whole instruction, then <STOP>
    assert one_shot.success_rate < oracle - 0.3


def test_replanning_recovers_from_editor_noise():
    env = make_shapes_env(split="test", num_tasks=40, noise=NOISE)
    open_loop = play(env, ScriptedOracleAgent(replan=False)).success_rate
    replan = play(env, ScriptedOracleAgent()).success_rate
    assert replan >= 0.9 and replan > open_loop + 0.3


def test_oracle_follows_the_program_and_corrects_a_slip():
    env = make_shapes_env(split="test", num_tasks=5, noise={"ignore": 1.0}, max_steps=3)
    agent = ScriptedOracleAgent()
    obs, info = env.reset(seed=0, options={"task": 0})
    program = info["task"].atomic_instructions
    (first,) = agent.act([obs], [info])
    assert first == program[0]
    obs, _, _, _, info = env.step(first)  # ignored by the editor: the scene did not change
    (second,) = agent.act([obs], [info])
    assert second != "<STOP>" and parse_instruction(second)  # a corrective edit from the current scene


def test_oracle_needs_shapes_infos():
    with pytest.raises(ValueError, match=r"^ScriptedOracleAgent needs shapes-world infos"):
        ScriptedOracleAgent().act([{"step": 0}], [{}])


def test_random_agent_is_seeded_and_speaks_the_grammar():
    observations = [{"step": 0}] * 50
    first, second = RandomAgent(seed=3).act(observations), RandomAgent(seed=3).act(observations)
    assert first == second != RandomAgent(seed=4).act(observations)
    assert "<STOP>" in first
    for text in first:
        if text != "<STOP>":
            assert parse_instruction(text)

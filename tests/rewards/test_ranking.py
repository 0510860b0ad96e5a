"""RewardRanker: candidate trajectories scored by a composite, a bare term, or a reward YAML."""

from __future__ import annotations

import pytest

from mira_env.data.build import RankItem
from mira_env.rewards.errors import RewardConfigError
from mira_env.rewards.pixel import PixelDistance
from mira_env.rewards.ranking import RewardRanker, build_ranker
from mira_env.rewards.rules import StepCost
from mira_env.sessions import Candidate, EditingSession, SessionStep
from tests.rewards.conftest import noise_image


def _items():
    source = noise_image(0, 16)
    session = EditingSession(id="s", turns=[SessionStep("add a hat", image=noise_image(1, 16))], source_image=source)
    same = Candidate("same", [SessionStep("add a hat", image=source)])
    other = Candidate("other", [SessionStep("add a hat", image=noise_image(2, 16)),
                                SessionStep("add a scarf", image=noise_image(3, 16))])
    return [RankItem(session, same, "Add a hat.", source, [source]),
            RankItem(session, other, "Add a hat.", source, [noise_image(2, 16), noise_image(3, 16)])]


def test_a_composite_total_is_the_score():
    ranker = build_ranker("l1:-1,step_cost:0")
    scores = ranker.score(_items())
    assert scores[0] == (pytest.approx(0.0), None)
    assert scores[1][0] < 0 and scores[1][1] is None
    assert ranker.name == "reward:l1:-1,step_cost:0"


def test_a_bare_term_and_its_reasons():
    ranker = RewardRanker(PixelDistance(1), name="l1")
    assert [round(v, 6) for v, _ in ranker.score(_items())][:1] == [0.0]

    class Unscored(PixelDistance):
        def _score(self, items):
            return [None] * len(items)

    assert RewardRanker(Unscored(1)).score(_items()) == [(None, "unscored (no reason given)")] * 2


def test_reward_inputs_describe_the_candidate():
    inputs = RewardRanker.inputs(_items())
    assert inputs[1].trajectory == ["add a hat", "add a scarf"] and inputs[1].step == 2 and inputs[1].terminated
    assert inputs[1].instruction == "Add a hat." and inputs[1].task.atomic_instructions == ("add a hat",)
    cost = StepCost(max_steps=4).score(inputs)
    assert cost[0] < cost[1]  # the reward sees each candidate's own number of steps


def test_build_ranker_errors(tmp_path):
    with pytest.raises(RewardConfigError, match=r"reward 'l1:x': weight 'x' of term 'l1' is not a number"):
        build_ranker("l1:x")
    with pytest.raises(RewardConfigError, match=r"unknown reward term 'nope'"):
        build_ranker("nope")
    with pytest.raises(RewardConfigError, match=r"reward=3 \(type int\) has no score\(items\) method; pass a "
                                                r"CompositeReward, a reward term or a RewardFunction"):
        RewardRanker(3)
    yaml = tmp_path / "reward.yaml"
    yaml.write_text("terms:\n  - {name: l2, weight: -1}\n")
    assert build_ranker(str(yaml)).name == "reward:reward.yaml"

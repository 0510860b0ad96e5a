"""format, step_cost and invalid_action terms."""

from __future__ import annotations

import pytest

from mira_env.rewards.errors import RewardConfigError
from mira_env.actions import parse_action
from mira_env.rewards.rules import FormatReward, InvalidActionPenalty, StepCost
from tests.rewards.conftest import make_item, noise_image

IMAGE = noise_image(5, 8)


@pytest.mark.parametrize("text, ok", [
    ("<edit>make the circle red</edit>", True),
    ("<think>the circle is blue</think>\n<edit>make the circle red</edit>", True),
    ("  <STOP>  ", True),
    ("<think>done</think><STOP>", True),
    ("make the circle red", False),
    ("<edit></edit>", False),
    ("<edit>a</edit><edit>b</edit>", False),
    ("<think>unclosed <edit>a</edit>", False),
    ("<edit>a</edit> trailing words", False),
    ("<stop>", True),
    ("<edit>   </edit>", False),
    ("<think>a</think><think>b</think><STOP>", False),
    ("<think>x <edit>y</edit></think><STOP>", False),
])
def test_default_format(text, ok):
    assert FormatReward().matches(text) is ok


def test_format_fraction_and_empty():
    term = FormatReward()
    scores = term.score([make_item(IMAGE, IMAGE, raw_actions=["<edit>a</edit>", "oops", "<STOP>", "x"]),
                         make_item(IMAGE, IMAGE, raw_actions=[])])
    assert scores[0] == 0.5
    assert scores[1] is None and scores.reasons[1] == "no raw actions recorded (RewardInput.raw_actions is empty)"


def test_format_custom_pattern():
    term = FormatReward(pattern=r"ACTION: .+|DONE")
    assert term.score([make_item(IMAGE, IMAGE, raw_actions=["ACTION: paint", "<STOP>"])])[0] == 0.5
    assert term.pattern == r"ACTION: .+|DONE"


def test_format_bad_pattern():
    with pytest.raises(RewardConfigError, match=r"format pattern='\(' \(type str\) is not a valid regular expression"):
        FormatReward("(")


def test_step_cost_and_invalid_actions():
    items = [make_item(IMAGE, IMAGE, trajectory=["a", "b", "c"], invalid_actions=2),
             make_item(IMAGE, IMAGE, trajectory=[], invalid_actions=0)]
    assert StepCost(max_steps=5).score(items) == [3.0, 0.0]
    assert StepCost(max_steps=5).value_range == (0.0, 5.0)
    assert InvalidActionPenalty().score(items) == [2.0, 0.0]


def test_count_terms_check_max_steps():
    with pytest.raises(RewardConfigError, match=r"max_steps=0 \(type int\) must be a positive int"):
        StepCost(max_steps=0)


@pytest.mark.parametrize("text", [
    "<edit>a</edit>", "<think>r</think>\n<edit>make it red</edit>", "<STOP>", "<stop>", "x", "<edit> </edit>",
    "<edit>a</edit>x", "<think>a</think><think>b</think><STOP>", "  <edit>a  b</edit>  ", "<think>x</think>",
])
def test_default_format_is_the_action_parser(text):
    assert FormatReward().matches(text) is parse_action(text).ok


from hypothesis import given  # noqa: E402 - the property test of this section
from hypothesis import strategies as st  # noqa: E402

_PIECES = ["<edit>", "</edit>", "<EDIT>", "</Edit>", "<think>", "</think>", "<THINK>", "<STOP>", "<stop>", "<Stop>",
           "add a hat", " ", "\n", "把猫变红", "\x00", "café"]


@given(st.lists(st.sampled_from(_PIECES), max_size=8).map("".join))
def test_the_format_term_accepts_exactly_what_parse_action_accepts(text):
    from mira_env.actions import parse_action
    from mira_env.rewards.rules import FormatReward

    assert FormatReward().matches(text) == parse_action(text).ok


def test_tags_in_another_case_are_malformed():
    from mira_env.rewards.rules import FormatReward

    term = FormatReward()
    assert [term.matches(t) for t in ("<edit>x</edit>", "<EDIT>x</EDIT>", "<Edit>x</edit>", "<stop>")] == \
        [True, False, False, True]

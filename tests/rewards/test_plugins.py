"""Reward terms by import path in a reward config, and from entry-point group ``mira_env.reward_terms``."""

from __future__ import annotations

import pytest
from PIL import Image

from mira_env import RewardInput
from mira_env.rewards import RewardConfigError, build_reward
from tests.plugin_helpers import write_plugin

TERMS = """
class Brightness:
    value_range = (0.0, 1.0)

    def __init__(self, scale=1.0, name="brightness", device="cpu"):
        self.scale, self.name, self.device = scale, name, device

    def score(self, items):
        return [self.scale * sum(item.edited.convert("L").getdata()) / (255.0 * item.edited.width
                * item.edited.height) for item in items]


class Nameless:
    value_range = None

    def score(self, items):
        return [0.25 for _ in items]


constant = Nameless()
"""


def item(value: int) -> RewardInput:
    image = Image.new("RGB", (4, 4), (value, value, value))
    return RewardInput(source=image, edited=image, instruction="x", trajectory=[], task=None)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    return write_plugin(tmp_path / "plugin", TERMS, {"mira_env.reward_terms": {"bright": "Brightness"}}, monkeypatch)


def test_a_yaml_config_names_a_term_by_import_path(plugin, tmp_path):
    path = tmp_path / "reward.yaml"
    path.write_text(f"device: cpu\nterms:\n  - {{name: '{plugin}:Brightness', weight: 2.0, params: {{scale: 0.5}}}}\n"
                    f"  - {{name: '{plugin}:Nameless', weight: 0.0}}\n  - l1\n", encoding="utf-8")
    reward = build_reward(path)
    assert reward.names == ["brightness", "Nameless", "l1"]
    (out,) = reward.score([item(255)])
    assert out.components == {"brightness": 0.5, "Nameless": 0.25, "l1": 0.0}
    assert out.total == pytest.approx(2.0 * 0.5 + 0.0)
    assert reward.terms[0].device == "cpu"  # the config's device reaches a term that takes one


def test_an_alias_names_the_component_and_an_object_is_used_as_is(plugin):
    reward = build_reward({"terms": [{"name": f"{plugin}:Brightness", "alias": "light"},
                                     {"name": f"{plugin}:constant", "alias": "quarter"}]})
    assert reward.names == ["light", "quarter"]
    (out,) = reward.score([item(0)])
    assert out.components == {"light": 0.0, "quarter": 0.25}


def test_an_entry_point_name_builds_the_registered_term(plugin):
    reward = build_reward({"terms": [{"name": "bright", "params": {"scale": 2.0}}]})
    (out,) = reward.score([item(255)])
    assert reward.names == ["brightness"] and out.components == {"brightness": 2.0}


@pytest.mark.parametrize("term, message", [
    ("sharpness", "unknown reward term 'sharpness'; known terms: "),
    ("{m}:Missing", "reward term='{m}:Missing': module '{m}' has no attribute 'Missing'"),
    ({"name": "{m}:Brightness", "params": {"gamma": 2}}, "term '{m}:Brightness': bad params {{'gamma': 2}}: "),
    ({"name": "{m}:constant", "params": {"scale": 2}},
     "term '{m}:constant' (import path '{m}:constant') is a term object; it takes no params (got ['scale'])"),
])
def test_bad_plugin_terms_are_named(plugin, term, message):
    if isinstance(term, str):
        term = term.format(m=plugin)
    else:
        term = {**term, "name": term["name"].format(m=plugin)}
    with pytest.raises(RewardConfigError) as caught:
        build_reward({"terms": [term]})
    assert str(caught.value).startswith(message.format(m=plugin))
    if term == "sharpness":
        assert str(caught.value).endswith("an import path 'pkg.module:Class', or a plugin of entry-point group "
                                          "'mira_env.reward_terms' (installed: bright)")

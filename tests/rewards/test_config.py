"""RewardConfig / build_reward (dict and YAML) and the registry."""

from __future__ import annotations

import sys
import subprocess

import pytest

from mira_env.rewards import TERMS, RewardConfig, RewardConfigError, TermSpec, build_reward, register_term
from mira_env.rewards.pixel import PixelDistance
from tests.rewards.conftest import make_item


def test_import_is_light():
    code = ("import sys, mira_env.rewards, mira_env.rewards.composite, mira_env.rewards.registry, mira_env.rewards.config; "
            "heavy = [m for m in ('torch', 'open_clip', 'lpips', 'transformers', 'trl', 'scipy', 'matplotlib') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_builtin_registry_names():
    expected = {"clip_t", "clip_dir", "clip_i", "lpips", "l1", "l2", "judge_sc", "judge_pq", "judge_overall",
                "format", "step_cost", "invalid_action", "oracle"}
    assert expected <= set(TERMS)


def test_build_from_dict(images):
    source, near, _ = images
    reward = build_reward({"terms": ["l1", {"name": "l2", "weight": 0}, {"name": "step_cost", "weight": -0.5,
                                                                            "params": {"max_steps": 4}}]})
    assert reward.names == ["l1", "l2", "step_cost"] and reward.weights == [1.0, 0.0, -0.5]
    (out,) = reward.score([make_item(source, near, trajectory=["a", "b"])])
    assert out.total == pytest.approx(out.components["l1"] - 1.0)


def test_build_from_yaml(tmp_path, tiny_clip, images):
    name, ckpt = tiny_clip
    path = tmp_path / "reward.yaml"
    path.write_text(f"""
normalization: normalize_then_sum
device: cpu
terms: [clip_i, l1, {{name: l1, alias: l1_copy}}]
weights: [1.0, -1.0, 0.0]
clip: {{model_name: {name}, pretrained: {ckpt}}}
""")
    reward = build_reward(path)
    assert reward.names == ["clip_i", "l1", "l1_copy"] and reward.normalization == "normalize_then_sum"
    source, near, _ = images
    (out,) = reward.score([make_item(source, near)])
    expected = (out.components["clip_i"] + 1) / 2 - out.components["l1"]
    assert out.total == pytest.approx(expected)


@pytest.mark.parametrize("data, message", [
    ({"terms": ["clip_x"]}, "unknown reward term 'clip_x'; known terms: "),
    ({"terms": ["l1", "l2"], "weights": [1.0]},
     "weights has 1 entries for 2 terms ['l1', 'l2']; pass exactly one weight per term (0 = log only)"),
    ({"terms": ["l1", "l1"]}, "term name(s) ['l1'] appear twice; give the copies an alias"),
    ({"terms": []}, "terms=[] (type list) must be a non-empty list of term names or specs"),
    ({"terms": ["l1"], "normalization": "max"},
     "normalization='max' (type str) is not one of: 'none', 'normalize_then_sum', 'sum_then_normalize'"),
    ({"terms": ["l1"], "judge": {"backend": "gemini"}},
     "judge backend='gemini' (type str) is not one of: 'transformers', 'openai', 'editscore'"),
    ({"terms": ["l1"], "clip": {"name": "x"}}, "unknown clip option(s) ['name']; known: "),
    ({"terms": [{"name": "l1", "weight": "high"}]}, "term 'l1' weight='high' (type str) must be a finite number"),
    ({"terms": ["l1"], "colour": 1}, "unknown reward config option(s) ['colour']; known: "),
])
def test_bad_configs(data, message):
    with pytest.raises(RewardConfigError) as info:
        build_reward(data)
    assert str(info.value).startswith(message)


def test_bad_params_named():
    with pytest.raises(RewardConfigError, match=r"term 'l1': bad params \{'gamma': 2\}"):
        build_reward({"terms": [{"name": "l1", "params": {"gamma": 2}}]})


def test_judge_needs_model():
    with pytest.raises(RewardConfigError, match="judge backend 'transformers' needs judge.model"):
        build_reward({"terms": ["judge_sc"]})


def test_missing_yaml_file(tmp_path):
    with pytest.raises(RewardConfigError, match="does not exist"):
        build_reward(tmp_path / "nope.yaml")


def test_register_custom_term(images):
    def factory(spec, config, context):
        return PixelDistance(1, name=spec.alias or spec.name)

    register_term("my_l1", factory)
    try:
        with pytest.raises(RewardConfigError, match="a term named 'my_l1' is already registered"):
            register_term("my_l1", factory)
        reward = build_reward(RewardConfig(terms=[TermSpec("my_l1", 2.0)]))
        source, near, _ = images
        (out,) = reward.score([make_item(source, near)])
        assert out.total == pytest.approx(2 * out.components["my_l1"])
    finally:
        TERMS.pop("my_l1")

"""Agent plugin points: ``--agents pkg.module:Class``, entry-point group ``mira_env.agents``, and the Python API
``evaluate(agents={name: obj})`` / ``play(agents=...)``."""

from __future__ import annotations

import json

import pytest

from mira_env import ConfigError
from mira_env.agents.commands.evaluate import EvalSettings, evaluate
from mira_env.agents.commands.run import RunSettings, play
from mira_env.agents.rollout import EPISODES_FILE
from mira_env.agents.specs import make_agent, resolve_agents
from mira_env.train.cli import main as mira
from tests.plugin_helpers import write_plugin

AGENTS = """
class StopAgent:
    def __init__(self, seed=0):
        self.seed = seed
        self.name = "stopper"

    def act(self, observations, infos=None):
        return ["<STOP>"] * len(observations)


class OneEdit:
    def act(self, observations, infos=None):
        return ["add a big red circle" if int(o["step"]) == 0 else "<STOP>" for o in observations]


def factory(seed):
    return StopAgent(seed=seed + 100)


NOT_AN_AGENT = 3


class NoAct:
    pass


instance = StopAgent(seed=7)
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    return write_plugin(tmp_path / "plugin", AGENTS, {"mira_env.agents": {"stopper": "StopAgent",
                                                                          "one-edit": "OneEdit"}}, monkeypatch)


def test_an_import_path_names_a_class_a_factory_or_an_object(plugin):
    agent = make_agent(f"{plugin}:StopAgent", seed=5)
    assert type(agent).__name__ == "StopAgent" and agent.seed == 5  # seed= given because it takes one
    assert type(make_agent(f"{plugin}:OneEdit", seed=5)).__name__ == "OneEdit"  # no seed parameter: built bare
    assert make_agent(f"{plugin}:factory", seed=1).seed == 101
    first, second = make_agent(f"{plugin}:instance"), make_agent(f"{plugin}:instance")
    assert first is second and first.seed == 7


def test_an_entry_point_name_builds_the_registered_agent(plugin):
    agent = make_agent("stopper", seed=3)
    assert type(agent).__module__ == plugin and agent.seed == 3
    with pytest.raises(ConfigError) as caught:
        make_agent("genius")
    assert str(caught.value) == (
        "agent spec 'genius' (type str) is not one of: oracle, one-shot, random, no-op, vlm:<hub id or local path>, "
        "vlm:tiny, api:<model>@<base_url>, pkg.module:Class, or an agent plugin (entry-point group "
        "'mira_env.agents'; installed: one-edit, stopper)")


@pytest.mark.parametrize("attr, message", [
    ("NOT_AN_AGENT", "agent spec '{m}:NOT_AN_AGENT' names 3 (type int), which is neither an agent (an act method) "
                     "nor a class or factory that builds one"),
    ("NoAct", "agent spec '{m}:NoAct' built "),
    ("Missing", "agent spec='{m}:Missing': module '{m}' has no attribute 'Missing'"),
])
def test_bad_import_paths_are_named(plugin, attr, message):
    with pytest.raises(ConfigError) as caught:
        make_agent(f"{plugin}:{attr}")
    assert str(caught.value).startswith(message.format(m=plugin))
    if attr == "NoAct":
        assert str(caught.value).endswith("which has no act(observations, infos) method")


def test_a_missing_module_says_how_to_fix_it():
    with pytest.raises(ConfigError) as caught:
        make_agent("no_such_mira_plugin.agents:Policy")
    assert str(caught.value).startswith("agent spec='no_such_mira_plugin.agents:Policy': cannot import module "
                                        "'no_such_mira_plugin.agents' (")
    assert str(caught.value).endswith("install the package that provides it or add its folder to PYTHONPATH")


def test_mira_run_plays_an_agent_given_by_import_path_and_by_plugin_name(plugin, tmp_path):
    out = tmp_path / "run"
    spec = f"{plugin}:OneEdit"
    assert mira(["run", "--agents", f"{spec},stopper", "--tasks", "2", "--group_size", "1", "--out", str(out),
                 "--progress", "false"]) == 0
    records = [json.loads(line) for line in (out / EPISODES_FILE).read_text().splitlines()]
    assert sorted({r["agent"] for r in records}) == sorted([spec, "stopper"]) and len(records) == 4
    for record in records:
        expected = ["add a big red circle", "<STOP>"] if record["agent"] == spec else ["<STOP>"]
        assert [step["instruction"] for step in record["steps"]] == expected


def test_evaluate_takes_agent_objects(plugin, tmp_path):
    import importlib

    module = importlib.import_module(plugin)
    out = tmp_path / "eval"
    _, rows, columns, _, report = evaluate(EvalSettings(tasks=2, out=str(out)), progress=False,
                                           agents={"mine": module.OneEdit(), "oracle": "oracle"})
    assert [(row["agent"], row["editor"], row["episodes"]) for row in rows] == [("mine", "shapes", 2),
                                                                                ("oracle", "shapes", 2)]
    assert rows[1]["success_rate"] == 1.0 and columns[:4] == ["agent", "editor", "episodes", "success_rate"]
    assert json.loads((out / "run.json").read_text())["agents"] == ["mine", "oracle"]
    assert report.is_file()


def test_play_takes_agent_objects(plugin, tmp_path):
    import importlib

    module = importlib.import_module(plugin)
    out, records, _ = play(RunSettings(tasks=1, group_size=2, out=str(tmp_path / "r")), progress=False,
                           agents={"stop-now": module.StopAgent()})
    assert [r["agent"] for r in records] == ["stop-now", "stop-now"]
    assert all(r["num_steps"] == 1 for r in records)


@pytest.mark.parametrize("agents, message", [
    ({}, "agents={} (type dict) must be a non-empty mapping of name -> agent object or spec"),
    ({"x": 3}, "agent spec 'x' names 3 (type int), which is neither an agent"),
    ({"": "oracle"}, "agent name '' (type str) must be a non-empty str"),
])
def test_bad_agent_mappings_are_named(agents, message):
    with pytest.raises(ConfigError) as caught:
        resolve_agents(agents)
    assert str(caught.value).startswith(message)

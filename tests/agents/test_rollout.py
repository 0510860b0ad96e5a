"""The grouped, batched rollout engine and its resumable run folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mira_env.agents.rollout import (EPISODES_FILE, EpisodeStore, RolloutConfig, RolloutEngine, RolloutError,
                            episode_key, group_seed, plan_groups, run_agents, slug)
from mira_env import EditorInfo, RewardOutput, Task
from mira_env.episodes import SCHEMA_VERSION, EpisodeRecord
from mira_env.editors.base import check_batch
from mira_env.vector import BatchedEditEnv

REPO = Path(__file__).resolve().parents[2]


def gradient(offset: int, size: int = 32) -> Image.Image:
    x = np.linspace(0, 255, size)[None, :, None]
    y = np.linspace(0, 255, size)[:, None, None]
    array = np.concatenate([np.broadcast_to(x, (size, size, 1)), np.broadcast_to(y, (size, size, 1)),
                            np.full((size, size, 1), offset)], axis=2)
    return Image.fromarray(array.astype(np.uint8), "RGB")


def make_tasks(count: int) -> list[Task]:
    return [Task(id=f"task-{i}", instruction=f"do {i + 1} things", image=gradient(30 * i)) for i in range(count)]


class StampEditor:
    """Paints a seed- and instruction-determined block into the image; records every call."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.info = EditorInfo(name="stamp")
        self.calls: list[tuple[list[str], list[int]]] = []
        self.delay_s = delay_s

    def edit(self, images, instructions, seeds):
        check_batch(images, instructions, seeds)
        self.calls.append((list(instructions), list(seeds)))
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for image, text, seed in zip(images, instructions, seeds):
            array = np.asarray(image).copy()
            rng = np.random.default_rng([seed, len(text)])
            array[: 8, : 8] = rng.integers(0, 256, 3)
            out.append(Image.fromarray(array, "RGB"))
        return out


class LengthReward:
    """Scores the number of executed edits; 'success' when it matches the number in the instruction."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, items):
        self.calls += 1
        outputs = []
        for item in items:
            wanted = int(item.instruction.split()[1])
            made = len(item.trajectory)
            outputs.append(RewardOutput(-abs(wanted - made), {"closeness": -abs(wanted - made),
                                                              "success": float(made == wanted)}))
        return outputs


class CountingAgent:
    """Edits until the history holds N instructions (N from the task text, plus a per-call random extra).

    Stateless per episode (it reads history and instruction), with one RNG over calls; exposes
    ``last_outputs`` like a VLM agent does.
    """

    name = "counting"

    def __init__(self, seed: int = 0, jitter: bool = True) -> None:
        self.rng = np.random.default_rng(seed)
        self.jitter = jitter
        self.calls: list[int] = []
        self.last_outputs: list[str] = []

    def act(self, observations, infos=None):
        self.calls.append(len(observations))
        actions = []
        for obs, info in zip(observations, infos):
            wanted = int(obs["instruction"].split()[1]) + (int(self.rng.integers(0, 2)) if self.jitter else 0)
            done = len(obs["history"].split("\n")) if obs["history"] else 0
            assert info["task_id"].startswith("task-")
            actions.append("<STOP>" if done >= wanted else f"edit number {done + 1}")
        self.last_outputs = [f"raw: {a}" for a in actions]
        return actions


def make_venv(num_envs: int, editor=None, reward=None, max_steps: int = 6) -> BatchedEditEnv:
    return BatchedEditEnv(num_envs, editor=editor or StampEditor(), tasks=make_tasks(4), reward=reward,
                          height=16, width=16, max_steps=max_steps)


def test_group_members_share_task_and_editor_seeds_and_each_turn_is_one_act_and_one_edit_call():
    editor, reward = StampEditor(), LengthReward()
    venv = make_venv(4, editor, reward)
    config = RolloutConfig(group_size=4, seed=3, progress=False, images="none")
    agent = CountingAgent(jitter=False)
    records = RolloutEngine(venv, agent, config).run(plan_groups(venv.tasks, config, [2]))
    assert len(records) == 4
    assert {r.task_id for r in records} == {"task-2"}
    assert len({r.editor_seed for r in records}) == 1
    assert records[0].group_seed == group_seed(3, 2, 0)
    # the same seeds and a deterministic agent: identical edits, seeds and rewards in the group
    assert len({json.dumps([s.editor_seed for s in r.steps]) for r in records}) == 1
    # 3 edits and one <STOP> per member, 4 members per call: 4 act calls, 3 editor calls, one reward call
    assert agent.calls == [4, 4, 4, 4]
    assert [len(texts) for texts, _ in editor.calls] == [4, 4, 4]
    assert reward.calls == 1
    assert all(r.success is True and r.final_components["closeness"] == 0 for r in records)
    assert [s.raw_output for s in records[0].steps] == [f"raw: {s.action}" for s in records[0].steps]


def test_finished_episodes_leave_the_batch_and_free_slots_take_the_next_group():
    editor = StampEditor()
    venv = make_venv(4, editor, LengthReward())
    config = RolloutConfig(group_size=2, groups_per_batch=2, progress=False, images="none")
    agent = CountingAgent(seed=1)
    engine = RolloutEngine(venv, agent, config)
    records = engine.run(plan_groups(venv.tasks, config))  # tasks need 1, 2, 3, 4 (+0/1) edits
    assert sorted(episode_key(r)[1:] for r in records) == sorted(
        (f"task-{t}", 0, m) for t in range(4) for m in range(2))
    # never more running episodes than envs; every turn one act call over exactly the running ones
    assert max(agent.calls) == 4 and agent.calls == engine.act_batch_sizes
    # one editor call per turn that had edits, each as large as the number of editing episodes
    editing_per_turn = [sum(1 for r in records for s in r.steps if s.t == t and not s.stop) for t in range(9)]
    assert sum(len(texts) for texts, _ in editor.calls) == sum(editing_per_turn)
    assert len(editor.calls) <= len(agent.calls)
    # refilling: fewer turns than playing the two halves of the batch one after the other
    lengths = {(r.task_id, r.member_index): r.num_steps for r in records}
    sequential = sum(max(lengths[(f"task-{t}", m)] for m in range(2)) for t in range(4))
    assert len(agent.calls) < sequential
    # episodes of a later group finished while the batch was still running others: the calls shrank and grew
    assert any(b < a for a, b in zip(agent.calls, agent.calls[1:]))


def test_records_carry_steps_timings_components_and_images(tmp_path):
    store = EpisodeStore(tmp_path / "run")
    venv = make_venv(2, reward=LengthReward())
    config = RolloutConfig(group_size=2, progress=False, images="both")
    (record, _) = RolloutEngine(venv, CountingAgent(jitter=False), config, store).run(
        plan_groups(venv.tasks, config, [0]))
    assert record.num_steps == 2 and record.num_edits == 1 and record.terminated
    step = record.steps[0]
    assert step.instruction == "edit number 1" and step.valid and step.editor_error is None
    assert step.timings["agent_batch"] == 2 and step.timings["editor_s"] >= 0
    assert record.steps[-1].reward_components == {"closeness": 0, "success": 1.0}
    strip = Image.open(tmp_path / "run" / record.images["strip"])
    assert strip.size == (16 * 3 + 2 * 2, 16)
    first = Image.open(tmp_path / "run" / record.steps[0].image)
    source = Image.open(tmp_path / "run" / record.images["source"])
    assert first.size == (16, 16) and np.any(np.asarray(first) != np.asarray(source))
    lines = (tmp_path / "run" / EPISODES_FILE).read_text().splitlines()
    assert [json.loads(line)["member_index"] for line in lines] == [0, 1]
    assert all(json.loads(line)["schema_version"] == SCHEMA_VERSION for line in lines)
    # what the store reads back is the record the engine returned, field for field
    store.close()
    with EpisodeStore(tmp_path / "run") as reopened:
        assert reopened.records()[0] == record and isinstance(record, EpisodeRecord)


def test_store_cuts_a_torn_last_line_and_resume_plays_only_missing_members(tmp_path):
    run = tmp_path / "run"
    venv = make_venv(2, reward=LengthReward())
    config = RolloutConfig(group_size=2, progress=False, images="strip")
    jobs = plan_groups(venv.tasks, config, [0, 1])
    RolloutEngine(venv, CountingAgent(), config, EpisodeStore(run)).run(jobs[:1])
    path = run / EPISODES_FILE
    with path.open("ab") as handle:  # a kill in the middle of writing the next line
        handle.write(b'{"agent": "counting", "task_id": "task-1", "gro')
    store = EpisodeStore(run)
    assert store.torn_lines == 1 and len(store) == 2
    assert path.read_bytes().endswith(b"}\n")
    engine = RolloutEngine(venv, CountingAgent(), config, store)
    assert [(j.task.id, j.members) for j in engine.pending(jobs)] == [("task-1", (0, 1))]
    new = engine.run(jobs)
    assert [(r.task_id, r.member_index) for r in new] == [("task-1", 0), ("task-1", 1)]
    keys = [episode_key(json.loads(line)) for line in path.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 4


def test_resume_with_half_a_group_plays_the_missing_member_with_the_group_seed(tmp_path):
    venv = make_venv(2, reward=LengthReward())
    config = RolloutConfig(group_size=2, progress=False, images="none")
    jobs = plan_groups(venv.tasks, config, [3])
    full = RolloutEngine(venv, CountingAgent(jitter=False), config).run(jobs)
    store = EpisodeStore(tmp_path / "run")
    store.write(full[0])
    (replayed,) = RolloutEngine(venv, CountingAgent(jitter=False), config, store).run(jobs)
    assert replayed.member_index == 1
    assert replayed.editor_seed == full[1].editor_seed
    assert [s.editor_seed for s in replayed.steps] == [s.editor_seed for s in full[1].steps]


def test_writing_an_episode_twice_raises(tmp_path):
    store = EpisodeStore(tmp_path)
    record = {"agent": "a", "task_id": "t", "group_index": 0, "member_index": 0, "steps": []}
    store.write(record)
    with pytest.raises(RolloutError, match=r"episode \('a', 't', 0, 0\) is already in .* written twice"):
        store.write(dict(record))


def test_a_corrupt_line_in_the_middle_is_an_error_naming_it(tmp_path):
    (tmp_path / EPISODES_FILE).write_text('{"agent": "a", "task_id": "t", "group_index": 0, "member_index": 0, '
                                          '"steps": []}\nnot json\n{"agent": "a", "task_id": "t", "group_index": 0, '
                                          '"member_index": 1, "steps": []}\n')
    with pytest.raises(RolloutError, match=r"episodes.jsonl:2: not JSON .*; fix or delete that line to resume"):
        EpisodeStore(tmp_path)
    # a line that is JSON but not a record: the error names the file, the line and the key
    (tmp_path / EPISODES_FILE).write_text('{"agent": "a", "task_id": "t", "group_index": "zero", "member_index": 0, '
                                          '"steps": []}\n')
    with pytest.raises(RolloutError, match=r"episodes.jsonl:1: key 'group_index' = 'zero' \(type str\) must be an int"):
        EpisodeStore(tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"group_size": 0}, "group_size=0 (type int) must be a positive int"),
    ({"groups_per_batch": 1.5}, "groups_per_batch=1.5 (type float) must be a positive int"),
    ({"seed": -1}, "seed=-1 (type int) must be an int >= 0"),
    ({"images": "gif"}, "images='gif' (type str) is not one of: 'steps', 'strip', 'both', 'none'"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError) as raised:
        RolloutConfig(**kwargs)
    assert str(raised.value) == message


def test_agent_returning_the_wrong_number_of_actions_is_named():
    class Short:
        name = "short"

        def act(self, observations, infos=None):
            return ["<STOP>"]

    venv = make_venv(2)
    config = RolloutConfig(group_size=2, progress=False, images="none")
    with pytest.raises(RolloutError) as raised:
        RolloutEngine(venv, Short(), config).run(plan_groups(venv.tasks, config, [0]))
    assert str(raised.value) == ("agent 'short' returned 1 actions for 2 observations; act() must return one "
                                 "action per observation")


def test_batch_smaller_than_a_group_is_refused():
    with pytest.raises(ValueError) as raised:
        RolloutEngine(make_venv(2), CountingAgent(), RolloutConfig(group_size=3))
    assert str(raised.value) == ("the batched env has 2 envs but group_size=3; build it with num_envs >= "
                                 "group_size (RolloutConfig.num_envs = 3)")


def test_run_agents_keys_episodes_by_agent_and_slug_is_file_safe(tmp_path):
    venv = make_venv(2, reward=LengthReward())
    config = RolloutConfig(group_size=2, progress=False, images="strip")
    store = EpisodeStore(tmp_path)
    out = run_agents(venv, {"a": CountingAgent(jitter=False), "vlm:/models/x y": CountingAgent()},
                     plan_groups(venv.tasks, config, [0, 1]), config, store)
    assert {name: len(records) for name, records in out.items()} == {"a": 4, "vlm:/models/x y": 4}
    assert len(store) == 8
    strip = next(r for r in store.records() if r.agent == "vlm:/models/x y").images["strip"]
    assert strip.startswith(f"strips/{slug('vlm:/models/x y')}/") and "/models" not in strip[7:]
    assert slug("oracle") == "oracle" and slug("a/b") != slug("a_b")


# ---------------------------------------------------------------------- a real kill and restart
CHILD = """
import sys
sys.path.insert(0, {repo!r})
from tests.agents.test_rollout import StampEditor, LengthReward, CountingAgent, make_tasks
from mira_env.agents.rollout import EpisodeStore, RolloutConfig, RolloutEngine, plan_groups
from mira_env.vector import BatchedEditEnv
venv = BatchedEditEnv(4, editor=StampEditor(delay_s=float(sys.argv[2])), tasks=make_tasks(4), reward=LengthReward(),
                      height=16, width=16, max_steps=6)
config = RolloutConfig(group_size=2, groups_per_batch=2, groups_per_task=3, progress=False, images="both")
RolloutEngine(venv, CountingAgent(seed=int(sys.argv[3])), config, EpisodeStore(sys.argv[1])).run(
    plan_groups(venv.tasks, config))
print("finished")
"""


def test_a_sigkilled_run_restarts_and_writes_every_episode_exactly_once(tmp_path):
    run = tmp_path / "run"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=str(REPO)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(script), str(run), "0.05", "0"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    path = run / EPISODES_FILE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if path.exists() and path.read_text().count("\n") >= 5:
            break
        time.sleep(0.02)
    assert child.poll() is None, f"the child ended before it could be killed: {child.communicate()}"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    before = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    assert 5 <= len(before) < 24
    done = subprocess.run([sys.executable, str(script), str(run), "0", "1"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "finished"
    keys = [episode_key(json.loads(line)) for line in path.read_text().splitlines()]
    expected = {("counting", f"task-{t}", g, m) for t in range(4) for g in range(3) for m in range(2)}
    assert len(keys) == len(expected) == 24
    assert set(keys) == expected
    # the episodes written before the kill were kept as they were, not replayed
    after = {episode_key(r): r for r in map(json.loads, path.read_text().splitlines())}
    assert all(after[episode_key(r)] == r for r in before)
    # every episode's strip exists
    assert all((run / r["images"]["strip"]).is_file() for r in after.values())


# ---------------------------------------------------------------------- resume is reproducible (issue 12, item 4)
def _shapes_venv():
    from mira_env.shapes.env import make_shapes_env

    env = make_shapes_env(split="test", num_tasks=6, noise=0.3, max_steps=5)
    return BatchedEditEnv(4, env_fn=lambda: env)


def _play(run_dir, agent_spec):
    from mira_env.agents.specs import make_agent

    venv = _shapes_venv()
    config = RolloutConfig(group_size=2, groups_per_batch=2, groups_per_task=2, seed=3, progress=False, images="none")
    with EpisodeStore(run_dir) as store:
        RolloutEngine(venv, make_agent(agent_spec, seed=7), config, store).run(plan_groups(venv.tasks, config))
        return {r.key: r for r in store.records()}


def _played(record):
    return ([(s.action, s.editor_seed, s.reward) for s in record.steps], record.final_reward,
            record.editor_seed)


@pytest.mark.parametrize("agent_spec", ["random", "oracle", "one-shot"])
def test_a_resumed_run_plays_exactly_the_episodes_of_an_uninterrupted_run(tmp_path, agent_spec):
    whole = _play(tmp_path / "whole", agent_spec)
    assert len(whole) == 6 * 2 * 2
    # an interrupted run: only some episodes made it to disk (every third, and a half group), then resume
    part = tmp_path / "part"
    _play(part, agent_spec)
    lines = (part / EPISODES_FILE).read_text().splitlines()
    (part / EPISODES_FILE).write_text("".join(line + "\n" for i, line in enumerate(lines) if i % 3 == 1))
    resumed = _play(part, agent_spec)
    assert set(resumed) == set(whole)
    differing = [key for key in whole if _played(resumed[key]) != _played(whole[key])]
    assert differing == []


def test_a_run_folder_of_the_previous_writer_resumes_and_mixes_versions(tmp_path):
    """Lines without schema_version (version 1, written by mira run before the typed records) still resume."""
    fixture = REPO / "tests" / "mira_env" / "fixtures" / "episodes_v1.jsonl"
    (tmp_path / EPISODES_FILE).write_bytes(fixture.read_bytes())
    venv = make_venv(1, reward=LengthReward())
    config = RolloutConfig(group_size=1, progress=False, images="none")
    with EpisodeStore(tmp_path) as store:
        assert [r.agent for r in store.records()] == ["oracle", "one-shot", "no-op"]
        assert store.done_members("oracle", "shapes-test-s0-00000", 0) == {0}
        (new,) = RolloutEngine(venv, CountingAgent(jitter=False), config, store).run(plan_groups(venv.tasks, config, [0]))
    lines = [json.loads(line) for line in (tmp_path / EPISODES_FILE).read_text().splitlines()]
    assert ["schema_version" in line for line in lines] == [False, False, False, True]
    with EpisodeStore(tmp_path) as store:
        assert len(store) == 4 and store.records()[-1] == new

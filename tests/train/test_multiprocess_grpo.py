"""Two-process GRPO (torchrun, gloo on CPU) against ONE shared editor service.

The test starts one editor service (threaded backend, in this process) serving :class:`BandEditor` by import
path, then ``torchrun --nproc_per_node 2`` runs this file as a worker: each rank trains the SFT'd tiny policy
(tests/train/conftest.py) for one GRPO step with turn-level credit and ``editor=remote:<url>``. (The tiny policy
answers ``<edit>`` only on the prompts it was SFT'd on, conftest's ``make_tasks``, so those are the tasks; on
shapes-world prompts it stops at once and no edit would be requested.) With
``per_device_train_batch_size=2`` and ``num_generations=4`` the single group of 4 rollouts is SPREAD over the
two processes (2 each). Each rank dumps what it saw; the test checks:

(a) every edit request of every rank got exactly one answer from the service (request ids: the client's log
    against the service's answer log), item counts agree, and no edit was lost or applied twice: replaying each
    rollout's instructions with an in-process BandEditor (each application adds to the band, so an edit applied
    twice or lost changes the pixels) gives its final image;
(b) TRL's episode advantages on each rank are its slice of the group normalisation over the WHOLE group
    (recomputed from the rewards both ranks gathered), and so are the turn-level credit advantages
    (mira_env.train.credit gathers the turn rewards across processes); rank-local normalisation would differ.

The session's SFT fixture is shared with the other GRPO tests; the two-process run itself takes ~40 s here (2 shared cores).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GROUP = 4  # num_generations: one group, 2 rollouts per process


class BandEditor:
    """Deterministic per (image, instruction, seed): ADDS a seed-dependent amount to the top band (so applying an
    edit twice, or losing one, shows in the pixels)."""

    def __init__(self) -> None:
        from mira_env.editors.base import EditorInfo

        self.info = EditorInfo(name="band")

    def edit(self, images, instructions, seeds):
        import numpy as np
        from PIL import Image

        from mira_env.editors.base import check_batch

        check_batch(images, instructions, seeds)
        out = []
        for image, text, seed in zip(images, instructions, seeds):
            array = np.asarray(image.convert("RGB")).astype(np.int64)
            array[:8] = (array[:8] + seed % 97 + 7 * len(text)) % 256
            out.append(Image.fromarray(array.astype(np.uint8)))
        return out


def digest(image) -> str:
    import hashlib

    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(np.asarray(image.convert("RGB"))).tobytes()).hexdigest()


class SpreadReward:
    """A real episode reward that differs between rollouts: brightness of the result, edits made, a stop bonus
    and the length of the last answer (so a group's rewards have a spread to normalise)."""

    component_names = ("brightness", "edits", "stopped")

    def score(self, items):
        import numpy as np

        from mira_env.reward_api import RewardOutput

        outputs = []
        for item in items:
            brightness = float(np.asarray(item.edited).mean() / 255.0)
            edits, stopped = float(len(item.trajectory)), float(item.terminated)
            last = len(item.raw_actions[-1]) if item.raw_actions else 0
            total = brightness + 0.5 * edits + 0.3 * stopped + 0.01 * (last % 17)
            outputs.append(RewardOutput(total, {"brightness": brightness, "edits": edits, "stopped": stopped}))
        return outputs


def worker(policy: str, url: str, out: str) -> None:
    """One rank of the two-process run (``torchrun ... this_file.py --worker POLICY URL OUT``)."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import torch
    import trl
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mira_env.env import EditEnv
    from mira_env.train.grpo import build_dataset, resolve, train_grpo
    from tests.train.conftest import make_tasks

    torch.set_num_threads(1)
    seen: dict = {}
    base_rewards, base_score = trl.GRPOTrainer._calculate_rewards, trl.GRPOTrainer._generate_and_score_completions

    def calculate_rewards(self, *args, **kwargs):
        gathered = base_rewards(self, *args, **kwargs)  # TRL gathers every process's rewards here
        seen["gathered_rewards"] = gathered.sum(dim=1).tolist()
        return gathered

    def generate_and_score(self, inputs):
        batch = base_score(self, inputs)
        seen["episode_advantages"] = batch["advantages"].tolist()  # TRL's, before the turn-credit hook
        return batch

    trl.GRPOTrainer._calculate_rewards = calculate_rewards
    trl.GRPOTrainer._generate_and_score_completions = generate_and_score
    env = EditEnv(editor=f"remote:{url}", tasks=make_tasks(2), reward=SpreadReward(), max_steps=2, height=48,
                  width=48, reward_mode="every_step")
    dataset = build_dataset(env, num_rows=2, system_prompt="")
    model = AutoModelForImageTextToText.from_pretrained(policy)
    model.config.text_config.max_position_embeddings = 8192  # see tests/train/test_grpo.py::_grpo
    model_args, env_args, config = resolve({
        "model": policy, "output_dir": str(Path(out) / "run"), "max_steps": 1, "num_generations": GROUP,
        "per_device_train_batch_size": 2, "max_tool_calling_iterations": 2, "max_completion_length": 1024,
        "temperature": 1.6, "learning_rate": 1e-3, "save_strategy": "no", "logging_steps": 1, "seed": 0,
        "tasks": "custom", "reward": "composite", "system_prompt": "", "advantage": "turn", "dedup_edits": True,
        "ddp_backend": "gloo", "use_cpu": True})
    result = train_grpo(model_args, env_args, config, env=env, dataset=dataset, model=model,
                        processor=AutoProcessor.from_pretrained(policy))
    trainer = result.trainer
    rank = trainer.accelerator.process_index
    credit = trainer.last_turn_credit
    dump = {
        "rank": rank, "world": trainer.accelerator.num_processes, **seen,
        "turn_rewards": credit["turn_rewards"], "process_slice": credit["process_slice"],
        "turn_advantages": credit["turn_advantages"],
        "rollouts": [{"row": e.row, "total": e.total, "steps": e.steps, "image": digest(e.env.current_image)}
                     for e in trainer.environments],
        "requests": list(env.editor.request_log),
        "tool_iterations": trainer.tool_iterations,
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(dump), encoding="utf-8")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_advantages(rewards: list[float]) -> list[float]:
    """TRL 1.16's sum_then_normalize group advantages: (r - group mean) / (group std (unbiased) + 1e-4)."""
    out = []
    for start in range(0, len(rewards), GROUP):
        group = rewards[start:start + GROUP]
        mean = sum(group) / len(group)
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (len(group) - 1))
        out += [(r - mean) / (std + 1e-4) for r in group]
    return out


def test_two_process_grpo_against_one_editor_service(sft_run, tmp_path):
    import numpy as np
    import pytest

    from mira_env.serve import ServeConfig, start_editor_service
    from mira_env.env import EditEnv
    from tests.train.conftest import make_tasks
    from mira_env.train.credit import group_turn_advantages

    pytest.importorskip("httpx")
    sft, _, _ = sft_run
    env_vars = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                "OMP_NUM_THREADS": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "CUDA_VISIBLE_DEVICES": ""}
    with start_editor_service(ServeConfig(editor="tests.train.test_multiprocess_grpo:BandEditor", backend="threaded",
                                                  port=0)) as running:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
                   __file__, "--worker", str(sft.output_dir), running.url, str(tmp_path)]
        done = subprocess.run(command, cwd=ROOT, env=env_vars, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
        answers = {key: list(value) for key, value in running.service.answers.items()}
        served_items = running.service.items
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [d["world"] for d in ranks] == [2, 2]

    # the group is spread over the processes: both ranks hold rollouts of the same (task, editor seed)
    rows = [r["row"] for d in ranks for r in d["rollouts"]]
    assert len(rows) == GROUP and all(row == rows[0] for row in rows), rows

    # (a) every request of every rank answered exactly once, no edit lost or applied twice
    requests = [entry for d in ranks for entry in d["requests"]]
    edits = [step for d in ranks for r in d["rollouts"] for step in r["steps"] if step["valid"]]
    assert requests and edits, "the policy never called the edit tool"
    assert len({e["request_id"] for e in requests}) == len(requests)
    assert all(e["answered"] for e in requests)
    assert {e["request_id"]: [e["items"]] for e in requests} == answers  # one answer each, its item count
    assert sum(e["items"] for e in requests) == served_items <= len(edits)  # dedup may share identical edits
    assert all(step["editor_error"] is None for step in edits), edits
    replay = EditEnv(editor=BandEditor(), tasks=make_tasks(2), max_steps=2, height=48, width=48)
    for d in ranks:
        for rollout in d["rollouts"]:
            replay.reset(options={"task": rollout["row"]["task_id"], "editor_seed": rollout["row"]["editor_seed"]})
            for step in rollout["steps"]:
                replay.step(step["instruction"])
            assert digest(replay.current_image) == rollout["image"], rollout
    assert sum(d["tool_iterations"] for d in ranks) >= 1  # each rank batches its own tool iterations

    # (b) advantages over the WHOLE group although each process holds half of it
    gathered = ranks[0]["gathered_rewards"]
    assert ranks[1]["gathered_rewards"] == gathered and len(gathered) == GROUP
    assert [r["total"] for d in ranks for r in d["rollouts"]] == pytest.approx(gathered)
    expected = group_advantages(gathered)
    local = ranks[0]["episode_advantages"] + ranks[1]["episode_advantages"]
    assert local == pytest.approx(expected, abs=1e-5)
    assert len(set(np.round(gathered, 6))) > 1, gathered  # a spread to normalise, so the check means something
    halves = [gathered[:2], gathered[2:]]
    if all(len(set(np.round(h, 6))) > 1 for h in halves):  # rank-local normalisation (groups of 2) would differ
        local_only = [(r - sum(h) / 2) / (abs(h[0] - h[1]) / math.sqrt(2) + 1e-4) for h in halves for r in h]
        assert local_only != pytest.approx(expected, abs=1e-3)
    turn_rewards = ranks[0]["turn_rewards"]
    assert ranks[1]["turn_rewards"] == turn_rewards and len(turn_rewards) == GROUP
    assert [d["process_slice"] for d in ranks] == [[0, 2], [2, 4]]
    whole = group_turn_advantages(turn_rewards, GROUP)
    got = ranks[0]["turn_advantages"] + ranks[1]["turn_advantages"]
    assert [len(row) for row in got] == [len(row) for row in whole]
    assert [v for row in got for v in row] == pytest.approx([v for row in whole for v in row])


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--worker":
    worker(*sys.argv[2:])

"""Tiny offline VLM builds (mira_env.tiny.vlm) and VLMAgent on real EditEnv observations."""

from __future__ import annotations

import json
import time

import gymnasium
import numpy as np
import pytest
import torch
from PIL import Image

from mira_env.agents.base import Agent
from mira_env.actions import parse_action
from mira_env.agents.prompt import build_messages
from mira_env.agents.vlm import VLMAgent, VLMAgentConfig
from mira_env.errors import ConfigError
from mira_env.tiny.vlm import KINDS, VISION_TOKENS, build_tiny_vlm, chat_template, suppress_token_ids
from tests.agents.conftest import make_tasks

pytestmark = pytest.mark.usefixtures("torch_single_thread")

MODEL_CLASSES = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration", "qwen3_vl": "Qwen3VLForConditionalGeneration"}


# ------------------------------------------------------------------------------------------ tiny builds
@pytest.mark.parametrize("kind", KINDS)
def test_tiny_vlm_loads_through_auto_classes(kind, tiny_vlm_loaded):
    model, processor = tiny_vlm_loaded[kind]
    assert type(model).__name__ == MODEL_CLASSES[kind]
    text = model.config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    assert sum(text.rope_parameters["mrope_section"]) == head_dim // 2
    assert sum(p.numel() for p in model.parameters()) < 500_000
    tokenizer = processor.tokenizer
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "</tool_call>") + VISION_TOKENS:
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(ids) == 1, (token, ids)
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert tokenizer.decode(tokenizer.encode("add a red hat, 50%!")) == "add a red hat, 50%!"


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_vlm_ships_the_real_chat_template(kind, tiny_vlm_paths):
    from transformers import AutoProcessor

    # a fresh processor: agents built on the session's loaded one give it the family's template (by design)
    processor = AutoProcessor.from_pretrained(tiny_vlm_paths[kind])
    # byte-identical to what the released checkpoints ship (TRL's copies), so the loading path is the real one
    assert processor.chat_template == chat_template(kind)
    image = Image.new("RGB", (64, 64), (255, 0, 0))
    messages = build_messages("make it blue", image, image, ["add a hat"])
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert text.endswith("<|im_start|>assistant\n")
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    image_tokens = int((inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum())
    assert image_tokens == {"qwen2_5_vl": 2 * 4, "qwen3_vl": 2 * 64}[kind]  # real min_pixels


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_vlm_generates_16_tokens_fast(kind, tiny_vlm_loaded):
    model, processor = tiny_vlm_loaded[kind]
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "hi"}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    suppressed = suppress_token_ids(processor)
    timings = []  # CPU seconds of this process (one torch thread): robust to other load on the machine
    for _ in range(3):
        start = time.process_time()
        output = model.generate(**inputs, max_new_tokens=16, min_new_tokens=16, do_sample=True,
                                suppress_tokens=suppressed)
        timings.append(time.process_time() - start)
    new = output[0, inputs["input_ids"].shape[1]:]
    assert len(new) == 16 and not set(new.tolist()) & set(suppressed)
    assert min(timings) < 0.2, timings


def test_suppress_token_ids_are_the_vision_tokens(tiny_vlm_loaded):
    _, processor = tiny_vlm_loaded["qwen2_5_vl"]
    ids = suppress_token_ids(processor)
    assert processor.tokenizer.convert_ids_to_tokens(ids) == list(VISION_TOKENS)
    assert suppress_token_ids(processor.tokenizer) == ids


def test_build_tiny_vlm_reuses_a_complete_build(tiny_vlm_paths, tmp_path):
    path = tiny_vlm_paths["qwen2_5_vl"]
    weights = path / "model.safetensors"
    before = weights.stat().st_mtime_ns
    start = time.perf_counter()
    assert build_tiny_vlm("qwen2_5_vl", path, seed=0) == path
    assert time.perf_counter() - start < 0.5 and weights.stat().st_mtime_ns == before
    assert json.loads((path / "mira_tiny_vlm.json").read_text()) == {"kind": "qwen2_5_vl", "seed": 0, "version": 2}


def test_build_tiny_vlm_is_seeded(tiny_vlm_paths, tiny_vlm_loaded, tmp_path):
    from safetensors.torch import load_file

    again = load_file(build_tiny_vlm("qwen2_5_vl", tmp_path / "again", seed=0) / "model.safetensors")
    other = load_file(build_tiny_vlm("qwen2_5_vl", tmp_path / "other", seed=1) / "model.safetensors")
    first = load_file(tiny_vlm_paths["qwen2_5_vl"] / "model.safetensors")
    key = next(k for k in first if k.endswith("lm_head.weight"))
    assert torch.equal(first[key], again[key]) and not torch.equal(first[key], other[key])


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="llava"), "kind='llava' (type str) is not a tiny VLM kind; choose one of ['qwen2_5_vl', 'qwen3_vl']"),
    (dict(seed="0"), "seed='0' (type str) must be an int"),
])
def test_build_tiny_vlm_errors(kwargs, message, tmp_path):
    with pytest.raises(ConfigError) as err:
        build_tiny_vlm(**{"path": tmp_path, **kwargs})
    assert str(err.value) == message


# ------------------------------------------------------------------------------------------ VLMAgent
def _count_generate(model, monkeypatch) -> list:
    """Count the calls of the real ``model.generate`` (and their batch sizes)."""
    calls = []
    original = model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counting)
    return calls


@pytest.mark.parametrize("kind", KINDS)
def test_vlm_agent_acts_on_env_observations(kind, tiny_vlm_paths, env_observations, monkeypatch):
    agent = VLMAgent(str(tiny_vlm_paths[kind]), max_new_tokens=12, device="cpu", conversation="single_turn")
    assert isinstance(agent, Agent) and agent.name == f"vlm:{tiny_vlm_paths[kind]}"
    calls = _count_generate(agent.model, monkeypatch)
    actions = agent.act(env_observations)
    assert calls == [3] and agent.generate_calls == 1
    assert len(actions) == 3 and all(isinstance(a, str) for a in actions)
    assert [p.action for p in agent.last_outputs] == actions
    for parsed in agent.last_outputs:
        assert parsed.text and parse_action(parsed.text) == parsed  # raw text kept; parse is reproducible
    # the actions go straight into the env (a random model's answers are malformed -> invalid, not a crash)
    env = gymnasium.make("mira/ImageEdit-v0", editor="identity", tasks=make_tasks(1), height=32, width=32)
    env.reset(seed=0)
    _, _, _, _, info = env.step(actions[0])
    assert info["valid_action"] == agent.last_outputs[0].ok


def test_vlm_agent_batches_with_left_padding(tiny_vlm_loaded, env_observations, monkeypatch):
    model, processor = tiny_vlm_loaded["qwen2_5_vl"]
    agent = VLMAgent.from_model(model, processor, max_new_tokens=8, batch_size=2, conversation="single_turn")
    calls = _count_generate(model, monkeypatch)
    agent.act(env_observations)
    assert calls == [2, 1]
    batched = [p.text for p in agent.last_outputs]
    singles = []
    for obs in env_observations:  # greedy answers do not depend on the batch (left padding)
        agent.act([obs])
        singles.append(agent.last_outputs[0].text)
    assert batched == singles
    assert calls == [2, 1, 1, 1, 1]
    assert agent.act([]) == [] and calls == [2, 1, 1, 1, 1]


def test_vlm_agent_sampling_is_seeded_and_leaves_global_rng_alone(tiny_vlm_loaded, env_observations):
    model, processor = tiny_vlm_loaded["qwen3_vl"]

    def make(seed):
        return VLMAgent.from_model(model, processor, name="policy", max_new_tokens=8, do_sample=True,
                                   temperature=1.5, seed=seed, conversation="single_turn")

    state = torch.get_rng_state()
    first, second, other = make(7), make(7), make(8)
    texts = []
    for agent in (first, second, other):
        agent.act(env_observations)
        texts.append([p.text for p in agent.last_outputs])
    assert torch.equal(torch.get_rng_state(), state)
    assert texts[0] == texts[1] and texts[0] != texts[2]
    first.act(env_observations)  # the next call draws a new sample
    assert [p.text for p in first.last_outputs] != texts[0]
    assert first.name == "vlm:policy" and "do_sample=True" in repr(first)


def test_vlm_agent_config_fields_have_help():
    from dataclasses import fields

    assert all(f.metadata.get("help") for f in fields(VLMAgentConfig))


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_new_tokens=0), "max_new_tokens=0 (type int) must be a positive int"),
    (dict(batch_size=2.0), "batch_size=2.0 (type float) must be a positive int"),
    (dict(torch_dtype="fp8"), "torch_dtype='fp8' (type str) is not one of: 'auto', 'float32', 'float16', 'bfloat16'"),
    (dict(top_p=0), "top_p=0 (type int) must be a finite number in (0, 1]"),
    (dict(temperature=-1.0), "temperature=-1.0 (type float) must be a finite number > 0"),
    (dict(do_sample="yes"), "do_sample='yes' (type str) must be a bool"),
    (dict(seed=1.5), "seed=1.5 (type float) must be an int or None"),
    (dict(conversation="chat"), "conversation='chat' (type str) is not one of: 'multi_turn', 'single_turn', None"),
    (dict(edit_budget=0), "edit_budget=0 (type int) must be a positive int or None"),
    (dict(beams=4), "unknown VLMAgent option(s) ['beams']; known options: ['batch_size', 'chat_template_path', "
                    "'conversation', 'device', 'do_sample', 'edit_budget', 'max_instruction_length', "
                    "'max_new_tokens', 'seed', 'system_prompt', 'temperature', 'top_p', 'torch_dtype']"),
])
def test_vlm_agent_config_errors(kwargs, message, tiny_vlm_loaded):
    model, processor = tiny_vlm_loaded["qwen2_5_vl"]
    with pytest.raises(ConfigError) as err:
        VLMAgent.from_model(model, processor, **kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize("build, message", [
    (lambda m, p: VLMAgent(""), "model='' (type str) must be a hub id or a local path (a non-empty str); "
                                "use VLMAgent.from_model(model, processor) for an object in memory"),
    (lambda m, p: VLMAgent.from_model("qwen", p), "model='qwen' (type str) has no generate() method; "
                                                  "pass a transformers model"),
    (lambda m, p: VLMAgent.from_model(m, None), "processor=None (type NoneType) has no apply_chat_template(); "
                                                "pass its processor"),
    (lambda m, p: VLMAgent.from_model(m, p).act({"instruction": "x"}),
     "observations={'instruction': 'x'} (type dict) must be a list of observation dicts (wrap a single "
     "observation as [obs])"),
])
def test_vlm_agent_argument_errors(build, message, tiny_vlm_loaded):
    model, processor = tiny_vlm_loaded["qwen2_5_vl"]
    with pytest.raises(ConfigError) as err:
        build(model, processor)
    assert str(err.value) == message


def test_answer_format_is_learnable_and_parsed_end_to_end(tiny_vlm_paths):
    """A few SFT steps on build_messages + format_action make the tiny VLM answer in the format, and
    VLMAgent turns its answers into actions the env accepts: the prompt, template, target and parser agree."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mira_env.actions import format_action
    from mira_env.agents.prompt import state_messages

    path = tiny_vlm_paths["qwen2_5_vl"]
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)  # a fresh copy: the session model stays untouched
    env = gymnasium.make("mira/ImageEdit-v0", editor="identity", tasks=make_tasks(1), height=32, width=32)
    first, _ = env.reset(seed=0)
    second, *_ = env.step("add a hat")
    samples = []
    for obs, target in ((first, format_action("add a hat")), (second, format_action("<STOP>"))):
        messages = state_messages(obs, system_prompt="")  # a short prompt keeps the test fast
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                               return_dict=True, return_tensors="pt")
        answer = {"role": "assistant", "content": [{"type": "text", "text": target}]}
        full = processor.apply_chat_template(messages + [answer], tokenize=True, return_dict=True, return_tensors="pt")
        start = prompt["input_ids"].shape[1]
        assert torch.equal(full["input_ids"][0, :start], prompt["input_ids"][0])  # the prompt is a prefix
        labels = full["input_ids"].clone()
        labels[:, :start] = -100
        samples.append((full, labels))
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(150):
        loss = sum(model(**full, labels=labels).loss for full, labels in samples)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if loss.item() < 0.05:
            break
    model.eval()
    agent = VLMAgent.from_model(model, processor, max_new_tokens=24, system_prompt="", conversation="single_turn")
    assert agent.act([first, second]) == ["add a hat", "<STOP>"]
    assert [p.text for p in agent.last_outputs] == ["<edit>add a hat</edit>", "<STOP>"]
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(agent.act([first])[0])
    assert info["valid_action"] and info["history"] == ["add a hat"] and not terminated


def test_vlm_agent_without_seed_samples_from_the_global_rng(tiny_vlm_loaded, env_observations):
    model, processor = tiny_vlm_loaded["qwen3_vl"]
    agent = VLMAgent.from_model(model, processor, max_new_tokens=8, do_sample=True, temperature=1.5,
                                conversation="single_turn")
    torch.manual_seed(5)
    agent.act(env_observations[:1])
    first = agent.last_outputs[0].text
    agent.act(env_observations[:1])
    assert agent.last_outputs[0].text != first  # the global stream advanced
    torch.manual_seed(5)
    agent.act(env_observations[:1])
    assert agent.last_outputs[0].text == first  # ... and it is that stream


def test_build_tiny_vlm_into_a_new_nested_folder_leaves_no_staging(tmp_path):
    path = build_tiny_vlm("qwen3_vl", tmp_path / "a" / "b", seed=2)
    assert path == tmp_path / "a" / "b" and (path / "model.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]


# ------------------------------------------------------------------------------------------ multi-turn
def _spy_inputs(model, monkeypatch) -> list:
    """The input_ids of every real ``model.generate`` call."""
    seen = []
    original = model.generate

    def spying(*args, **kwargs):
        seen.append(kwargs["input_ids"].clone())
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", spying)
    return seen


@pytest.mark.parametrize("kind", KINDS)
def test_multi_turn_is_the_default_and_plays_the_grpo_conversation(kind, tiny_vlm_paths, monkeypatch):
    """The agent rebuilds, per episode, exactly build_conversation (the GRPO / SFT conversation) with the tool schema,
    from what act() sees: its own earlier answers and the env's new images."""
    from transformers import AutoProcessor

    from mira_env.agents.families import prepare_processor
    from mira_env.agents.prompt import Turn, build_conversation, conversation_tools

    path = tiny_vlm_paths[kind]
    agent = VLMAgent(str(path), max_new_tokens=6, device="cpu", system_prompt="", edit_budget=3)
    assert agent.conversation == "multi_turn"
    seen = _spy_inputs(agent.model, monkeypatch)
    env = gymnasium.make("mira/ImageEdit-v0", editor="identity", tasks=make_tasks(2), height=32, width=32,
                         max_steps=3)
    observations, infos = [], []
    for index in range(2):
        obs, info = env.reset(seed=index, options={"task": index})
        observations.append(obs)
        infos.append({**info, "episode_id": f"ep{index}"})
    images = {"ep0": [], "ep1": []}
    answers = {"ep0": [], "ep1": []}
    errors = {"ep0": [], "ep1": []}
    source = {key: Image.fromarray(o["source"]) for key, o in zip(("ep0", "ep1"), observations)}
    for _ in range(2):
        agent.act(observations, infos)
        for index, key in enumerate(("ep0", "ep1")):
            answers[key].append(agent.last_outputs[index].text)
        # the env only runs episode 0 on, episode 1 is re-asked at the same step (no new turn for it)
        env.reset(seed=0, options={"task": 0})
        for previous in answers["ep0"]:
            obs, _, _, _, info = env.step(parse_action(previous).action)
        errors["ep0"].append(f"invalid instruction: {info['invalid_reason']}" if info["invalid_reason"] else None)
        images["ep0"].append(Image.fromarray(obs["current"]))
        observations[0], infos[0] = obs, {**info, "episode_id": "ep0"}
        answers["ep1"] = []
    processor = AutoProcessor.from_pretrained(path)
    prepare_processor(processor, agent.model)
    turns = [Turn(answers["ep0"][0], images["ep0"][0], errors["ep0"][0])]
    expected = build_conversation(observations[0]["instruction"], source["ep0"], turns, edit_budget=3,
                                  system_prompt="")
    ids = processor.apply_chat_template([expected], tools=conversation_tools("multi_turn"), tokenize=True,
                                        add_generation_prompt=True, return_dict=True, return_tensors="pt")["input_ids"]
    assert len(seen) == 2
    row = seen[1][0][seen[1][0] != agent._pad_id]  # left padding removed
    assert torch.equal(row, ids[0][ids[0] != agent._pad_id])
    text = processor.decode(ids[0])
    assert "Edit 1 of 3" in text and text.count("<|image_pad|>") > 0 and '"name": "edit"' in text
    agent.reset()
    assert len(agent.episodes) == 0


def test_multi_turn_agent_refuses_an_episode_it_did_not_start(tiny_vlm_loaded, env_observations):
    from mira_env.agents.prompt import PromptError

    model, processor = tiny_vlm_loaded["qwen2_5_vl"]
    agent = VLMAgent.from_model(model, processor, max_new_tokens=4)
    with pytest.raises(PromptError, match="episode 2 is at step 2 but this agent never saw its start"):
        agent.act(env_observations)


def test_a_checkpoints_policy_record_sets_the_default_conversation(tiny_vlm_paths, tmp_path):
    import shutil

    from mira_env.agents.prompt import POLICY_RECORD, policy_record

    folder = tmp_path / "policy"
    shutil.copytree(tiny_vlm_paths["qwen2_5_vl"], folder)
    (folder / POLICY_RECORD).write_text(json.dumps(policy_record("single_turn", 4, "be brief")))
    agent = VLMAgent(str(folder), device="cpu")
    assert (agent.conversation, agent.edit_budget, agent.config.system_prompt) == ("single_turn", 4, "be brief")
    (folder / POLICY_RECORD).write_text(json.dumps(policy_record("multi_turn", 3, None)))
    agent = VLMAgent(str(folder), device="cpu", edit_budget=6)
    assert (agent.conversation, agent.edit_budget) == ("multi_turn", 6)


def test_rollout_engine_plays_the_multi_turn_agent(tiny_vlm_loaded, monkeypatch):
    """RolloutEngine + the default multi-turn VLMAgent: group members keep their own conversations (keyed by the
    engine's episode ids), which grow by one answer and one tool image per turn; slots reused by new episodes start
    fresh."""
    from mira_env.agents.rollout import RolloutConfig, RolloutEngine, plan_groups
    from mira_env.vector import BatchedEditEnv

    model, processor = tiny_vlm_loaded["qwen2_5_vl"]
    agent = VLMAgent.from_model(model, processor, max_new_tokens=4, system_prompt="", edit_budget=2)
    seen = _spy_inputs(model, monkeypatch)
    venv = BatchedEditEnv(2, editor="identity", tasks=make_tasks(2), height=32, width=32, max_steps=2)
    config = RolloutConfig(group_size=2, seed=0, progress=False, images="none")
    records = RolloutEngine(venv, agent, config).run(plan_groups(venv.tasks, config, [0, 1]))
    assert len(records) == 4 and all(len(r["steps"]) == 2 for r in records)  # random answers: 2 invalid steps each
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    per_call = [int((ids[0] == image_token).sum()) for ids in seen]
    # per episode: turn 1 shows I0 twice (8 tokens), turn 2 adds the tool turn's image (12); two groups
    assert per_call == [8, 12, 8, 12]
    assert len(agent.episodes) == 4
    venv.close()

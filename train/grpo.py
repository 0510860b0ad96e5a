"""``mira train grpo``: multi-turn GRPO of the policy VLM against the editing environment.

Read top to bottom: configs -> environment (tasks, editor, reward) -> dataset of (task, editor seed)
rows -> model -> TRL ``GRPOTrainer`` with ``environment_factory`` -> train (or resume) -> save.

How one GRPO step runs (TRL 1.16, ``environment_factory`` path):

1. each dataset row (``prompt`` = the MIRA prompt with I0 twice, ``images``, ``task_id``,
   ``editor_seed``) is repeated ``num_generations`` times: a group shares the task AND the editor seed;
2. every rollout gets its own :class:`mira_env.train.tools.EditingToolEnv`; ``reset(**row)`` starts the episode;
3. the policy answers; an ``<edit>X</edit>`` answer is parsed as the tool call ``edit(instruction=X)``
   (:data:`mira_env.train.tools.EDIT_RESPONSE_TEMPLATE`), executed by the editor through ``EditEnv.step``, and
   the edited image comes back as the tool result: the policy sees it at its next turn, and TRL keeps
   it in the sequence the loss is computed on; ``<STOP>`` (no tool call) ends the rollout; so does the
   turn budget ``max_tool_calling_iterations`` (also the env's ``max_steps``);
4. :class:`EpisodeReward` closes each episode with the last answer and returns the environment's reward
   (the composite from ``rewards``); every reward component and episode statistic is logged.

    mira train grpo --tiny_vlm qwen2_5_vl --tasks shapes --output_dir runs/grpo --max_steps 20
    mira train grpo --config grpo.yaml --model_name_or_path runs/sft --num_generations 8 --beta 0.04 \\
        --use_vllm --vllm_mode server
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mira_env.agents.commands.metrics import RewardModelOptions, model_sections
from mira_env.errors import ConfigError, describe
from mira_env.train.config import ModelArguments, config_to_dict, resolve_config
from mira_env.validate import check_choice

TASK_SOURCES = ("shapes",)


#: The default composite reward on the shapes world and on real task sets (MIRA's GRPO reward is judge-based).
SHAPES_REWARD_TERMS = ("oracle", "format", "step_cost")
JUDGE_REWARD_TERMS = ("judge_overall", "format", "step_cost")
JUDGE_REWARD_WEIGHTS = (1.0, 0.5, -0.05)


@dataclass
class GRPOEnvArguments(RewardModelOptions):
    """The environment GRPO trains against: tasks, editor, reward (the models of the reward's CLIP / LPIPS / judge
    terms: the fields of :class:`mira_env.agents.commands.metrics.RewardModelOptions`, shared with ``mira eval``)."""

    tasks: str = field(default="shapes", metadata={
        "help": "'shapes' (the embedded shapes world) or a task source for EditEnv: a .jsonl file, an image folder "
                "or a MIRA-Editing folder."})
    editor: str | None = field(default=None, metadata={
        "help": "Editor spec: a preset name, hub id or local diffusers folder, 'identity', 'pkg.module:factory', or "
                "'remote:http://host:port' (a served editor, shared by every process). Default: the shapes-world "
                "editor for --tasks shapes, 'identity' otherwise."})
    split: str = field(default="train", metadata={"help": "Shapes-world split: train | validation | test."})
    num_tasks: int = field(default=64, metadata={"help": "Number of shapes-world tasks (distinct scenes)."})
    difficulty: int | None = field(default=None, metadata={
        "help": "Shapes-world difficulty (number of atomic edits per task); unset = the generator's mix."})
    editor_noise: float = field(default=0.0, metadata={
        "help": "Shapes-world editor noise: probability that an edit fails like a diffusion editor would."})
    resolution: int = field(default=64, metadata={"help": "Image resolution of the environment (pixels)."})
    reward: str | None = field(default=None, metadata={
        "help": "'oracle' (the shapes-world oracle reward, shapes tasks only), 'composite' "
                "(rewards.build_reward of --reward_terms / --reward_weights) or the path of a reward YAML file "
                "(a rewards.RewardConfig: terms, weights, normalization, model settings). Unset: 'oracle' on the "
                "shapes world, 'composite' (a VLM-judge composite) on any other task set."})
    reward_terms: list[str] | None = field(default=None, metadata={
        "help": "Reward terms of the composite reward (names of the rewards registry). Unset: oracle, format, "
                "step_cost on the shapes world; judge_overall, format, step_cost elsewhere."})
    reward_weights: list[float] | None = field(default=None, metadata={
        "help": "One weight per reward term (0 = log only). Unset: all 1 with explicit --reward_terms; "
                "1, 0.5, -0.05 for the default judge composite."})
    dedup_edits: bool = field(default=True, metadata={
        "help": "Identical edits of one tool iteration (same image, instruction, seed; common at the first turn of "
                "a group) run once. Editors that declare deterministic=False are never deduplicated."})
    advantage: str = field(default="episode", metadata={
        "help": "'episode': TRL's group-normalised episode advantage; 'turn': plus turn-level credit "
                "(mira_env.train.credit: per-turn advantages over the group; the env then scores every step)."})
    num_rows: int | None = field(default=None, metadata={
        "help": "Dataset rows (task, editor seed) per epoch; default: one per task."})
    data_seed: int = field(default=0, metadata={"help": "Seed of the rows' editor seeds."})
    system_prompt: str | None = field(default=None, metadata={
        "help": "Replace the policy's system prompt ('' drops it); must match the SFT data."})
    resume: str | None = field(default=None, metadata={
        "help": "Resume training: 'auto' (the last checkpoint in output_dir) or a checkpoint folder."})

    def __post_init__(self) -> None:
        super().__post_init__()
        shapes = self.tasks == "shapes"
        if self.reward is None:
            self.reward = "oracle" if shapes else "composite"
        if self.reward_terms is None:
            self.reward_terms = list(SHAPES_REWARD_TERMS if shapes else JUDGE_REWARD_TERMS)
            if not shapes and self.reward_weights is None:
                self.reward_weights = list(JUDGE_REWARD_WEIGHTS)
        if self.num_tasks < 1:
            raise ConfigError(f"num_tasks={self.num_tasks} must be >= 1")
        if self.reward not in ("oracle", "composite") and not Path(self.reward).is_file():
            raise ConfigError(f"reward={describe(self.reward)} must be 'oracle', 'composite' or the path of an "
                              "existing reward YAML file")
        if not self.reward_terms:
            raise ConfigError("reward_terms is empty: name at least one term of the rewards registry")
        if self.reward == "oracle" and self.tasks != "shapes":
            raise ConfigError("reward='oracle' needs the shapes world (tasks='shapes'); for other tasks use "
                              "reward='composite' with --reward_terms")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_terms):
            raise ConfigError(f"reward_weights has {len(self.reward_weights)} values for {len(self.reward_terms)} "
                              f"reward_terms {self.reward_terms}: give one weight per term")
        if not 0.0 <= self.editor_noise <= 1.0:
            raise ConfigError(f"editor_noise={self.editor_noise} must be a probability in [0, 1]")
        if self.num_rows is not None and self.num_rows < 1:
            raise ConfigError(f"num_rows={self.num_rows} must be >= 1")
        check_choice("advantage", self.advantage, ("episode", "turn"))


def _grpo_defaults() -> dict[str, Any]:
    """GRPOConfig values we default differently from TRL (YAML / CLI still override them)."""
    from mira_env.train.model import cuda_available

    return {"bf16": cuda_available(), "report_to": "none", "max_tool_calling_iterations": 5,
            "max_completion_length": 1024, "logging_steps": 1, "remove_unused_columns": False,
            "activation_checkpointing": False}


def resolve(args: argparse.Namespace | dict | None = None, yaml_path: str | None = None,
            **overrides: Any) -> tuple[ModelArguments, GRPOEnvArguments, Any]:
    """``(ModelArguments, GRPOEnvArguments, GRPOConfig)`` from defaults <- YAML <- CLI <- overrides."""
    from trl import GRPOConfig

    model_args, env_args, grpo_config = resolve_config((ModelArguments, GRPOEnvArguments, GRPOConfig), args,
                                                       yaml_path, overrides, defaults=_grpo_defaults())
    if grpo_config.max_tool_calling_iterations is None or grpo_config.max_tool_calling_iterations < 1:
        raise ConfigError("max_tool_calling_iterations is the edit budget T of an episode and must be >= 1, got "
                          f"{grpo_config.max_tool_calling_iterations!r}")
    return model_args, env_args, grpo_config


# ---------------------------------------------------------------------------------------------- environment
def build_reward(env_args: GRPOEnvArguments):
    """The reward function the environment scores episodes with.

    ``'oracle'`` -> the string ``"oracle"`` (``make_shapes_env`` builds the shapes-world oracle reward);
    ``'composite'`` -> ``rewards.build_reward({"terms": reward_terms, "weights": reward_weights})``; a YAML
    path -> ``rewards.build_reward(path)``. Every component of the result is logged as ``reward/<name>``.
    """
    if env_args.reward == "oracle":
        return "oracle"
    from mira_env import rewards

    if env_args.reward == "composite":
        config: dict[str, Any] = {"terms": list(env_args.reward_terms)}
        if env_args.reward_weights is not None:
            config["weights"] = [float(w) for w in env_args.reward_weights]
        sections, _, _ = model_sections(env_args, [str(term) for term in env_args.reward_terms], "grpo_reward_models",
                                        require=False)
        config.update(sections)
        return rewards.build_reward(config)
    return rewards.build_reward(Path(env_args.reward))


def build_env(env_args: GRPOEnvArguments, max_steps: int):
    """The base :class:`EditEnv` (its editor, tasks, reward and config are shared by every rollout)."""
    import mira_env

    scoring = {"reward_mode": "every_step"} if env_args.advantage == "turn" else {}  # turn credit needs step scores
    if env_args.tasks == "shapes":
        env = mira_env.make("shapes", editor=env_args.editor, split=env_args.split, num_tasks=env_args.num_tasks,
                            difficulty=env_args.difficulty, noise=env_args.editor_noise or None,
                            size=env_args.resolution, max_steps=max_steps, reward=build_reward(env_args), **scoring)
    else:
        env = mira_env.make(env_args.tasks, editor=env_args.editor or "identity", reward=build_reward(env_args),
                            size=env_args.resolution, max_steps=max_steps, **scoring)
    return getattr(env, "unwrapped", env)


def build_dataset(env, *, num_rows: int | None = None, seed: int = 0, system_prompt: str | None = None,
                  tasks: Sequence[int] | None = None):
    """GRPO rows: ``prompt`` (the MIRA prompt, image placeholders), ``images`` ([I0, I0]), ``task_id``,
    ``editor_seed``. Row r uses task ``tasks[r % len]`` (default: every task in order)."""
    import datasets
    import numpy as np

    from mira_env.agents.prompt import build_conversation
    from mira_env.train.data import _placeholders

    indices = list(tasks) if tasks is not None else list(range(len(env.tasks)))
    count = num_rows or len(indices)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=count)
    rows = []
    for r in range(count):
        task = env.tasks[indices[r % len(indices)]]
        source = task.load_source(env.config.max_pixels)
        prompt, images = _placeholders(build_conversation(task.instruction, source, [], system_prompt=system_prompt))
        rows.append({"prompt": prompt, "images": images, "task_id": task.id, "editor_seed": int(seeds[r])})
    return datasets.Dataset.from_list(rows)


class EpisodeReward:
    """TRL reward function: close each rollout's episode with its last answer and return the env's reward.

    Logs (through TRL's ``log_metric``) the mean of every reward component as ``reward/<name>``, and
    ``episode/edits``, ``episode/stopped`` (fraction that answered <STOP>), ``episode/unscored``.
    """

    __name__ = "mira_reward"

    def __init__(self) -> None:
        self.history: list[dict] = []  # one entry per call: the logged means (for tests and learning curves)

    def __call__(self, prompts=None, completions=None, environments=None, log_metric=None, **kwargs) -> list:
        from mira_env.train.tools import finish_episodes, last_answer_text

        if environments is None:
            raise ConfigError("EpisodeReward needs TRL's environment_factory (it reads each rollout's environment)")
        outputs = finish_episodes(environments, [last_answer_text(completion) for completion in completions])
        totals = []
        for output in outputs:
            total = None if output is None or output.total is None else float(output.total)
            totals.append(total if total is not None and math.isfinite(total) else None)
        means: dict[str, float] = {}
        names = sorted({name for output in outputs if output for name in output.components})
        for name in names:
            values = [float(o.components[name]) for o in outputs
                      if o and o.components.get(name) is not None and math.isfinite(float(o.components[name]))]
            if values:
                means[f"reward/{name}"] = sum(values) / len(values)
        means["episode/edits"] = sum(len(env.steps) for env in environments) / len(environments)
        means["episode/stopped"] = sum(env.stopped for env in environments) / len(environments)
        means["episode/unscored"] = sum(t is None for t in totals) / len(totals)
        scored = [t for t in totals if t is not None]
        means["episode/reward"] = sum(scored) / len(scored) if scored else float("nan")
        if log_metric is not None:
            for name, value in means.items():
                log_metric(name, value)
        self.history.append(means)
        return totals


@dataclass
class GRPOResult:
    trainer: Any
    output_dir: str
    metrics: dict
    reward: EpisodeReward


def train_grpo(model_args: ModelArguments, env_args: GRPOEnvArguments, grpo_config: Any, *, env=None,
               dataset=None, model=None, processor=None, callbacks: list | None = None) -> GRPOResult:
    """Run multi-turn GRPO. ``env`` / ``dataset`` / ``model`` + ``processor`` replace what the arguments
    would build (tests and the learning script pass their own)."""
    from mira_env.agents.families import prepare_processor
    from mira_env.agents.prompt import policy_record
    from mira_env.train.model import generation_suppression, load_policy, lora_config, train_and_save
    from mira_env.train.batching import batched_tool_trainer_class
    from mira_env.train.tools import env_factory

    budget = int(grpo_config.max_tool_calling_iterations)
    # 1. the environment: tasks, editor (noise), reward; every rollout gets its own EditEnv on these
    if env is None:
        env = build_env(env_args, max_steps=budget)
    if env.config.max_steps != budget:
        raise ConfigError(f"the environment's max_steps={env.config.max_steps} differs from the turn budget "
                          f"max_tool_calling_iterations={budget}; build the env with max_steps={budget}")
    # 2. rows of (task, editor seed): the num_generations rollouts of a row form a group
    if dataset is None:
        dataset = build_dataset(env, num_rows=env_args.num_rows, seed=env_args.data_seed,
                                system_prompt=env_args.system_prompt)
    # 3. the policy, with its family's MIRA chat template (tools, images in tool turns; the upstream Qwen2.5-VL
    #    template has neither); its tokenizer parses <edit>X</edit> as the tool call edit(instruction=X)
    if model is None or processor is None:
        model, processor = load_policy(model_args, chat_template_path=model_args.chat_template_path)
    else:
        prepare_processor(processor, model, chat_template_path=model_args.chat_template_path, source="the policy")
    suppress = generation_suppression(processor)
    if suppress:
        extra = dict(grpo_config.generation_kwargs or {})
        merged = sorted(set(extra.get("suppress_tokens") or []) | set(suppress["suppress_tokens"]))
        grpo_config.generation_kwargs = {**extra, "suppress_tokens": merged}
    reward = EpisodeReward()
    # 4. TRL GRPOTrainer, multi-turn through environment_factory; the edits of one tool iteration across the
    #    whole batch reach the editor in ONE (deduplicated) call (mira_env.train.batching)
    trainer_class = batched_tool_trainer_class()
    if env_args.advantage == "turn":
        from mira_env.train.credit import turn_credit_trainer_class

        trainer_class = turn_credit_trainer_class()
    trainer = trainer_class(model=model, reward_funcs=[reward], args=grpo_config, train_dataset=dataset,
                            processing_class=processor, peft_config=lora_config(model_args),
                            environment_factory=env_factory(env), callbacks=callbacks, dedup_edits=env_args.dedup_edits)
    # 5. train (resuming when asked) and save the final policy
    policy = policy_record("multi_turn", budget, env_args.system_prompt)
    metrics = train_and_save(trainer, processor, grpo_config.output_dir, env_args.resume,
                             config_to_dict(model_args, env_args), "mira_grpo_config.json", policy=policy)
    return GRPOResult(trainer=trainer, output_dir=str(grpo_config.output_dir), metrics=metrics, reward=reward)

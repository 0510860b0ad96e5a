"""The editing environment as TRL tools: what the policy sees between its turns.

``GRPOTrainer(environment_factory=...)`` runs multi-turn rollouts: the policy answers, every tool call
in the answer is executed, the tool results (text and IMAGES) are appended to the conversation, and
the policy answers again, until it stops calling tools or ``max_tool_calling_iterations`` is reached.
TRL keeps the tool images in the sequence it computes the loss on.

The policy's answer format is the MIRA format of :mod:`mira_env.actions` (``<edit>...</edit>`` or
``<STOP>``), not a JSON tool call: :data:`EDIT_RESPONSE_TEMPLATE` is a transformers response template
that parses ``<edit>X</edit>`` as the tool call ``edit(instruction=X)``. ``<STOP>`` is plain text and
no tool call, so the rollout ends there. The same answers are therefore the SFT targets, the GRPO
actions and the ``VLMAgent`` outputs.

The conversation the policy sees at turn k (:func:`mira_env.agents.prompt.build_conversation`, the one renderer)::

    system (+ the edit tool's schema) | user: I0, I0, C | assistant: <edit>u1</edit> |
    tool: [I1, "Edit 1 of T applied ..."] | assistant: <edit>u2</edit> | tool: [I2, ...] | assistant: ...
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from mira_env.actions import STOP, format_action, parse_action
from mira_env.agents.families import FAMILIES, PolicyFamily
from mira_env.agents.prompt import tool_result_content
from mira_env.env import EditEnv
from mira_env.reward_api import RewardOutput

#: transformers response template of the Qwen families: ``<think>`` -> reasoning, ``<edit>X</edit>`` -> edit(instruction=X).
EDIT_RESPONSE_TEMPLATE: dict[str, Any] = FAMILIES["qwen2_5_vl"].response_template


def set_edit_response_template(processor: Any, family: PolicyFamily | None = None) -> Any:
    """Make ``processor``'s tokenizer parse ``<edit>X</edit>`` answers as ``edit(instruction=X)`` tool calls."""
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.response_template = (family or FAMILIES["qwen2_5_vl"]).response_template
    return processor


class EditingToolEnv:
    """One GRPO rollout's editing episode, exposed to TRL as the tool ``edit``.

    ``reset(**row)`` starts the episode of a dataset row (``task_id`` and ``editor_seed``: the
    ``num_generations`` rollouts of one row share both, i.e. a GRPO group shares the task and the
    editor's noise). ``edit(instruction)`` executes one atomic instruction through
    ``EditEnv.step`` and returns the edited image. :func:`finish_episode` closes the episode with the
    policy's last answer and scores it with the environment's reward function.

    Args:
        env: the :class:`EditEnv` of this rollout (each rollout needs its own; they may share the
            editor, tasks and reward function, see :func:`env_factory`).
    """

    def __init__(self, env: EditEnv | None = None) -> None:
        self.env = env
        self.steps: list[dict] = []
        self.result: RewardOutput | None = None
        self.final_text: str | None = None
        self.stopped = False
        self.finished = False
        self.row: dict = {}

    # TRL calls reset with every column of the dataset row.
    def reset(self, **row: Any) -> None:
        if self.env is None:
            raise RuntimeError("EditingToolEnv was built without an EditEnv; use mira_env.train.tools.env_factory")
        task_id = row.get("task_id")
        seed = row.get("editor_seed")
        if task_id is None or seed is None:
            raise KeyError(f"GRPO dataset rows need 'task_id' and 'editor_seed' columns; got {sorted(row)}")
        self.row = {"task_id": task_id, "editor_seed": int(seed)}
        self.env.reset(options={"task": str(task_id), "editor_seed": int(seed)})
        self.steps, self.result, self.final_text = [], None, None
        self.stopped = self.finished = False
        self._last_info: dict = {}
        self._prestepped = None
        return None

    def edit(self, instruction: str) -> list:
        """Execute one atomic edit on the current image and return the edited image.

        Args:
            instruction: One atomic editing instruction, e.g. "make the red circle blue".
        """
        env = self.env
        prestepped, self._prestepped = getattr(self, "_prestepped", None), None
        if prestepped is not None and prestepped[0] == str(instruction):
            info = prestepped[1][4]  # this call's step already ran in its tool iteration's batch (step_tool_calls)
        else:
            if self.finished or env.done:
                raise RuntimeError(f"the edit budget of {env.config.max_steps} edits is used up; answer <STOP>")
            info = env.step(str(instruction), raw_action=raw_action_of(instruction))[4]
        self._last_info = info
        self.steps.append({"instruction": info["instruction"], "valid": info["valid_action"],
                           "editor_error": info["editor_error"], "reward_total": info.get("reward_total")})
        if info.get("reward_total") is not None or info.get("reward_components"):
            self.result = _output_of(info)
        if info["invalid_reason"] is not None:
            raise ValueError(f"invalid instruction ({info['invalid_reason']}); the image is unchanged")
        return tool_result_content(env.current_image, info["step"], env.config.max_steps, info["editor_error"])

    # ------------------------------------------------------------------ scoring
    def _finish(self, final_text: str) -> RewardOutput:
        """End the episode with the policy's last answer ``final_text``; return its reward output.

        ``<STOP>`` steps the environment with the stop action (terminated, scored by the env's
        reward). An episode that already ended (the edit budget) keeps the score the env gave it.
        Anything else (a malformed answer, an edit past the budget) ends the episode truncated and is
        scored on the current image, with the answer counted as an invalid action.
        """
        if self.finished:
            return self.result
        if self._closes_with_stop(final_text):
            self._stopped_with(final_text, self.env.step(STOP)[4])
            return self.result
        self.finished = True
        self.final_text = final_text
        if not self.env.done or self.result is None:
            self.result = self._score_now(final_text)
        return self.result

    def _closes_with_stop(self, final_text: str) -> bool:
        """Whether the last answer ``final_text`` is ``<STOP>`` for an episode still open (so it is stepped)."""
        env = self.env
        if self.finished or env is None or env.done:
            return False
        parsed = parse_action(final_text or "", env.config.max_instruction_length)
        return parsed.ok and parsed.action == STOP

    def _stopped_with(self, final_text: str, info: dict) -> None:
        """Record the closing ``<STOP>`` step (its ``info``) and its reward output."""
        self.finished = self.stopped = True
        self.final_text = final_text
        self._last_info = info
        self.result = _output_of(info)

    def _score_now(self, final_text: str) -> RewardOutput:
        env = self.env
        if env.reward_fn is None:
            return RewardOutput(0.0, {}, {})
        item = env.reward_input(extra_raw_actions=[final_text or ""], extra_invalid=1)
        try:
            (output,) = env.reward_fn.score([item])
        except Exception as exc:  # noqa: BLE001 - an unscorable episode is data
            output = RewardOutput(None, {}, {"reward": f"{type(exc).__name__}: {exc}"})
        return output

    # Every public method is a tool for TRL: everything else is private or a property.
    @property
    def total(self) -> float | None:
        if self.result is None or self.result.total is None:
            return None
        value = float(self.result.total)
        return value if math.isfinite(value) else None


def _output_of(info: dict) -> RewardOutput:
    """The reward output an env step reported in its ``info``."""
    return RewardOutput(info.get("reward_total"), info.get("reward_components") or {}, info.get("reward_errors") or {})


def raw_action_of(instruction: Any) -> str | None:
    """The answer TRL parsed the call ``edit(instruction)`` out of (``<edit>X</edit>``): the raw action the env
    records, so format-type reward terms score what the policy wrote, not the bare instruction."""
    return format_action(str(instruction)) if str(instruction).strip() else None


def step_tool_calls(tool_envs: Sequence[EditingToolEnv], instructions: Sequence[str],
                    editors: Sequence[Any] | None = None) -> int:
    """Run the ``edit`` calls of one tool iteration of many rollouts as ONE batched step.

    Each rollout's environment steps exactly as ``tool_env.edit(instruction)`` would step it, but the edits of
    all rollouts that share an editor go in one editor call and their step rewards (``reward_mode`` every step,
    or an episode that ends at this step) in one reward call (:func:`mira_env.steps.step_many`). The results wait
    in the tool envs; their ``edit(instruction)`` call (TRL's tool loop) hands them out once. Rollouts that are
    finished are skipped. Returns the number of rollouts stepped.
    """
    from mira_env.steps import step_many

    chosen = [(k, env) for k, env in enumerate(tool_envs) if env.env is not None and not env.finished and not env.env.done]
    if not chosen:
        return 0
    texts = [str(instructions[k]) for k, _ in chosen]
    results = step_many([env.env for _, env in chosen], texts, [raw_action_of(t) for t in texts],
                        editors=None if editors is None else [editors[k] for k, _ in chosen])
    for (_, env), text, result in zip(chosen, texts, results):
        env._prestepped = (text, result)  # noqa: SLF001 - handed out by EditingToolEnv.edit
    return len(chosen)


def clear_tool_calls(tool_envs: Sequence[EditingToolEnv]) -> None:
    """Drop pre-stepped results that no ``edit`` call collected (TRL rolled the rollout back)."""
    for env in tool_envs:
        env._prestepped = None  # noqa: SLF001


def finish_episode(tool_env: EditingToolEnv, final_text: str) -> RewardOutput:
    """Close ``tool_env``'s episode with the policy's last answer and return its reward output.

    ``<STOP>`` steps the environment with the stop action (terminated, scored by the env's reward). An
    episode that already ended (the edit budget) keeps the score the env gave it. Anything else (a
    malformed answer, an edit past the budget) ends the episode truncated and is scored on the current
    image, with the answer counted as an invalid action.
    """
    return tool_env._finish(final_text)  # noqa: SLF001


def finish_episodes(tool_envs: Sequence[EditingToolEnv], final_texts: Sequence[str]) -> list[RewardOutput]:
    """:func:`finish_episode` for a whole generation batch, with the closing steps' rewards batched.

    The ``<STOP>`` steps of every rollout that shares a reward function are scored in ONE ``reward.score`` call
    (:func:`mira_env.steps.step_many`); the others close exactly as :func:`finish_episode` closes them. The
    results equal calling :func:`finish_episode` on each rollout.
    """
    from mira_env.steps import step_many

    if len(tool_envs) != len(final_texts):
        raise ValueError(f"finish_episodes got {len(tool_envs)} rollouts and {len(final_texts)} answers")
    stopping = [(t, text) for t, text in zip(tool_envs, final_texts) if t._closes_with_stop(text)]  # noqa: SLF001
    if stopping:
        results = step_many([t.env for t, _ in stopping], [STOP] * len(stopping))
        for (tool_env, text), result in zip(stopping, results):
            tool_env._stopped_with(text, result[4])  # noqa: SLF001
    return [tool_env._finish(text) for tool_env, text in zip(tool_envs, final_texts)]  # noqa: SLF001


def env_factory(base: EditEnv):
    """A TRL ``environment_factory``: each call builds an :class:`EditingToolEnv` on its own ``EditEnv``
    that shares ``base``'s editor, tasks, reward function and config (:meth:`EditEnv.clone`)."""

    def make() -> EditingToolEnv:
        return EditingToolEnv(base.clone())

    return make


def tool_schemas() -> list[dict]:
    """The JSON schema of the ``edit`` tool, exactly as GRPO renders it into the system prompt."""
    from transformers.utils import get_json_schema

    return [get_json_schema(EditingToolEnv().edit)]


def last_answer_text(completion: Any) -> str:
    """The text of the policy's last answer in a TRL completion (a list of messages or a string)."""
    if isinstance(completion, str):
        return completion
    for message in reversed(list(completion or [])):
        if message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text") or "" for part in content if isinstance(part, dict))
        text = content or ""
        calls = message.get("tool_calls") or []
        for call in calls:
            args = (call.get("function") or {}).get("arguments") or {}
            text += f"<edit>{args.get('instruction', '')}</edit>"
        return text
    return ""

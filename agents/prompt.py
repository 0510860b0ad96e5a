"""The ONE renderer of the MIRA conversation: SFT samples, GRPO prompts and tool turns, VLMAgent and APIAgent.

Two conversations exist (:data:`CONVERSATIONS`); ``multi_turn`` is the default everywhere and is what GRPO
trains on:

- ``multi_turn`` (:func:`build_conversation`): the first state's prompt (I0 shown twice, C, no history), then for
  every executed step the policy's answer and a ``tool`` turn carrying the edited image and a line of text
  (:func:`tool_result_content`), with the ``edit`` tool's schema (:data:`EDIT_TOOL_SCHEMA`) passed to the chat
  template. TRL's tool loop builds exactly this conversation during GRPO; ``mira train sft`` renders its samples
  with it; :class:`EpisodeConversations` rebuilds it for the agents from what ``act`` sees.
  OpenAI-compatible servers (vLLM) reject images in tool-role messages: :func:`tool_turns_as_user` moves the tool
  turns into user messages with the same content.
- ``single_turn`` (:func:`build_messages`): one user message with I0, It, C and the numbered history.

The single-turn state prompt (:func:`build_messages`) shows the policy the source image I0, the current image
It, the complex instruction C and the numbered history of atomic instructions already executed,
in the chat-message format of transformers processors and TRL::

    [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
     {"role": "user", "content": [
         {"type": "text", "text": "Source image (I0):"}, {"type": "image", "image": <PIL I0>},
         {"type": "text", "text": "Current image (It):"}, {"type": "image", "image": <PIL It>},
         {"type": "text", "text": "Instruction (C): ...\\n\\nEdits applied so far:\\n1. ...\\n2. ..."
                                  "\\n\\n<format reminder>"}]}]

The answer format (``<edit>``, ``<STOP>``, ``<think>``) and its parser live in :mod:`mira_env.actions`.

Keep :data:`SYSTEM_PROMPT`, :func:`build_messages` and :func:`mira_env.actions.format_action` stable: SFT data and
GRPO prompts are built with them, and a change invalidates trained checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from mira_env.agents.families import EDIT_TOOL_SCHEMA
from mira_env.errors import ConfigError, describe
from mira_env.validate import check_choice, check_int

#: The two renderings of a state; ``multi_turn`` is the GRPO conversation and the default.
CONVERSATIONS = ("multi_turn", "single_turn")
#: The edit budget T shown in tool turns when neither the caller nor a checkpoint's record says otherwise
#: (``mira train grpo``'s default ``max_tool_calling_iterations``).
DEFAULT_EDIT_BUDGET = 5
#: File beside a trained policy (and in every checkpoint) recording the conversation it was trained on.
POLICY_RECORD = "mira_policy.json"

#: The format reminder closing every user turn.
FORMAT_INSTRUCTIONS = (
    "Reply with the next atomic edit inside <edit></edit>, for example <edit>make the sky orange</edit>, "
    "or reply <STOP> if the current image already satisfies the instruction. "
    "You may first think inside <think></think>."
)

#: The default system prompt of the MIRA policy.
SYSTEM_PROMPT = (
    "You are an image editing agent. You see the source image, the current image produced by the edits "
    "so far, a complex editing instruction, and the atomic edits already applied. Each turn, choose ONE "
    "atomic edit (a single, simple change that an image editor can execute) that moves the current image "
    "closer to what the instruction asks for, or stop when it is done.\n"
    "Answer format: optionally <think>your reasoning</think>, then exactly one of "
    "<edit>one atomic instruction</edit> or <STOP>. Write nothing after it."
)



class PromptError(ConfigError):
    """A prompt input (image, history, action) has the wrong type or value."""


# ---------------------------------------------------------------------------------------------- inputs
def to_pil(image: Any, name: str = "image") -> Image.Image:
    """``image`` (a PIL image, or a uint8 ``(H, W, 3)`` / ``(H, W)`` array) as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise PromptError(f"{name} array has dtype {image.dtype}; expected uint8 (0-255). "
                              f"Convert with np.clip(x, 0, 255).astype(np.uint8)")
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3)):
            array = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
            return Image.fromarray(np.ascontiguousarray(array)).convert("RGB")
        raise PromptError(f"{name} array has shape {image.shape}; expected (H, W, 3) or (H, W)")
    raise PromptError(f"{name}={describe(image)} must be a PIL image or a uint8 numpy array")


def _history_list(history: Any) -> list[str]:
    if isinstance(history, str):
        raise PromptError(f"history={describe(history)} is a str; pass a list of atomic instructions "
                          "(observation_to_state splits an observation's '\\n'-joined history)")
    if history is None:
        return []
    try:
        items = list(history)
    except TypeError:
        raise PromptError(f"history={describe(history)} must be a sequence of str") from None
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise PromptError(f"history[{index}]={describe(item)} must be a str")
    return items


def format_history(history: Sequence[str]) -> str:
    """The numbered history block: ``"Edits applied so far:\\n1. ...\\n2. ..."`` or ``"...: none"``."""
    items = _history_list(history)
    if not items:
        return "Edits applied so far: none"
    return "Edits applied so far:\n" + "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1))


def build_messages(instruction: str, source_image: Any, current_image: Any, history: Sequence[str] = (), *,
                   system_prompt: str | None = None) -> list[dict]:
    """The MIRA conversation for one state (I0, It, C, history), ending before the policy's answer.

    Args:
        instruction: the complex instruction C.
        source_image: I0, a PIL image or a uint8 array.
        current_image: It, a PIL image or a uint8 array.
        history: the atomic instructions executed so far, oldest first.
        system_prompt: replaces :data:`SYSTEM_PROMPT`; ``""`` drops the system message.

    Returns a list of ``{"role", "content"}`` dicts whose content parts are ``{"type": "text",
    "text": ...}`` and ``{"type": "image", "image": PIL.Image}`` (I0 first, then It); pass it to
    ``processor.apply_chat_template(messages, add_generation_prompt=True, ...)``.
    """
    if not isinstance(instruction, str) or not instruction.strip():
        raise PromptError(f"instruction={describe(instruction)} must be a non-empty str")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise PromptError(f"system_prompt={describe(system_prompt)} must be a str or None")
    source = to_pil(source_image, "source_image")
    current = to_pil(current_image, "current_image")
    text = f"Instruction (C): {instruction.strip()}\n\n{format_history(history)}\n\n{FORMAT_INSTRUCTIONS}"
    user = {"role": "user", "content": [
        {"type": "text", "text": "Source image (I0):"},
        {"type": "image", "image": source},
        {"type": "text", "text": "Current image (It):"},
        {"type": "image", "image": current},
        {"type": "text", "text": text},
    ]}
    prompt = SYSTEM_PROMPT if system_prompt is None else system_prompt
    if not prompt:
        return [user]
    return [{"role": "system", "content": [{"type": "text", "text": prompt}]}, user]


def message_images(messages: Sequence[Mapping[str, Any]]) -> list[Image.Image]:
    """The PIL images of ``messages`` in order (for TRL datasets with an ``images`` column)."""
    images = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            images.extend(part["image"] for part in content if part.get("type") == "image" and "image" in part)
    return images


def observation_to_state(obs: Mapping[str, Any]) -> tuple[str, Image.Image, Image.Image, list[str]]:
    """``(instruction, source PIL, current PIL, history list)`` from an ``EditEnv`` observation dict."""
    if not isinstance(obs, Mapping):
        raise PromptError(f"observation={describe(obs)} must be an EditEnv observation dict")
    missing = [key for key in ("instruction", "source", "current", "history") if key not in obs]
    if missing:
        raise PromptError(f"observation is missing {missing}; it has keys {sorted(obs)}")
    history = obs["history"]
    if isinstance(history, np.str_):
        history = str(history)
    if isinstance(history, str):
        history = [line for line in history.split("\n") if line.strip()]
    return (str(obs["instruction"]), to_pil(obs["source"], "observation['source']"),
            to_pil(obs["current"], "observation['current']"), _history_list(history))


def state_messages(obs: Mapping[str, Any], *, system_prompt: str | None = None) -> list[dict]:
    """:func:`build_messages` for an ``EditEnv`` observation dict."""
    instruction, source, current, history = observation_to_state(obs)
    return build_messages(instruction, source, current, history, system_prompt=system_prompt)


def batch_messages(observations: Sequence[Mapping[str, Any]], *, system_prompt: str | None = None) -> list[list[dict]]:
    """:func:`state_messages` for a batch of observations; a bare observation dict is refused clearly."""
    if isinstance(observations, Mapping) or not isinstance(observations, Sequence):
        raise ConfigError(f"observations={describe(observations)} must be a list of observation dicts "
                          "(wrap a single observation as [obs])")
    return [state_messages(obs, system_prompt=system_prompt) for obs in observations]


# ---------------------------------------------------------------------------------------------- multi-turn
def tool_result_text(step: int, max_steps: int, error: str | None = None) -> str:
    """The text that accompanies the edited image in a tool turn."""
    if error:
        return f"Edit {step} of {max_steps} failed ({error}); the current image is unchanged."
    return f"Edit {step} of {max_steps} applied. This is the current image."


def tool_result_content(image: Any, step: int, max_steps: int, error: str | None = None) -> list[dict]:
    """The tool turn's content after an edit: the new current image It, then a line of text."""
    return [{"type": "image", "image": to_pil(image, "tool image")},
            {"type": "text", "text": tool_result_text(step, max_steps, error)}]


@dataclass(frozen=True)
class Turn:
    """One executed step of a multi-turn conversation: the policy's answer and what the tool returned."""

    answer: str
    image: Any
    error: str | None = None


def _budget(value: Any) -> int:
    return check_int("edit_budget", value, error=PromptError, hint="GRPO's max_tool_calling_iterations")


def build_conversation(instruction: str, source_image: Any, turns: Sequence[Turn] = (), *,
                       edit_budget: int = DEFAULT_EDIT_BUDGET, system_prompt: str | None = None) -> list[dict]:
    """The multi-turn MIRA conversation after ``turns``, ending before the policy's next answer.

    ``[system], user(I0, I0, C), assistant(answer 1), tool(I1, "Edit 1 of T applied ..."), assistant(answer 2), ...``;
    render it with ``tools=`` :func:`conversation_tools` ``("multi_turn")``.
    """
    budget = _budget(edit_budget)
    source = to_pil(source_image, "source_image")
    messages = build_messages(instruction, source, source, [], system_prompt=system_prompt)
    for index, turn in enumerate(turns, 1):
        if not isinstance(turn, Turn):
            raise PromptError(f"turns[{index - 1}]={describe(turn)} must be a mira_env.agents.prompt.Turn")
        if not isinstance(turn.answer, str):
            raise PromptError(f"turns[{index - 1}].answer={describe(turn.answer)} must be the policy's answer text")
        messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.answer}]})
        messages.append({"role": "tool", "name": "edit",
                         "content": tool_result_content(turn.image, index, budget, turn.error)})
    return messages


def conversation_tools(conversation: str) -> list[dict] | None:
    """The ``tools=`` of ``apply_chat_template`` for ``conversation`` (the edit tool for multi_turn)."""
    check_conversation(conversation)
    return [EDIT_TOOL_SCHEMA] if conversation == "multi_turn" else None


def check_conversation(conversation: Any) -> str:
    return check_choice("conversation", conversation, CONVERSATIONS, error=PromptError)


def tool_turns_as_user(messages: Sequence[Mapping[str, Any]]) -> list[dict]:
    """``messages`` with every tool turn turned into a user turn of the same content (for vLLM / OpenAI servers,
    which reject images in tool-role messages)."""
    out = []
    for message in messages:
        if message.get("role") == "tool":
            out.append({"role": "user", "content": list(message["content"])})
        else:
            out.append(dict(message))
    return out


def read_policy_record(model: str | Path) -> dict:
    """The :data:`POLICY_RECORD` of a trained policy folder (``{}`` when there is none, e.g. a hub id)."""
    path = Path(str(model)) / POLICY_RECORD
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PromptError(f"{path} is not a readable JSON policy record ({exc}); delete or fix it") from None
    if not isinstance(record, dict):
        raise PromptError(f"{path} holds {describe(record)}; expected a JSON object")
    return record


def policy_record(conversation: str, edit_budget: int, system_prompt: str | None) -> dict:
    """The :data:`POLICY_RECORD` content training writes beside a policy."""
    return {"conversation": check_conversation(conversation), "edit_budget": _budget(edit_budget),
            "system_prompt": system_prompt}


@dataclass
class _Episode:
    instruction: str
    source: Image.Image
    turns: list
    pending: str | None = None


class EpisodeConversations:
    """The multi-turn conversation of every running episode, rebuilt from what ``Agent.act`` receives.

    An episode is keyed by ``infos[i]["episode_id"]`` (``RolloutEngine`` sets it) or, without infos, by its position
    in the batch. An observation with ``step == 0`` starts a new conversation; a later one adds the answer this
    agent gave last time (:meth:`record`) and a tool turn with the observation's current image (and the info's
    ``editor_error`` / ``invalid_reason`` as the failure text): the conversation TRL's tool loop builds in GRPO.
    """

    def __init__(self, *, edit_budget: int = DEFAULT_EDIT_BUDGET, system_prompt: str | None = None) -> None:
        self.edit_budget = _budget(edit_budget)
        self.system_prompt = system_prompt
        self._episodes: dict[Any, _Episode] = {}

    def reset(self) -> None:
        self._episodes.clear()

    def __len__(self) -> int:
        return len(self._episodes)

    @staticmethod
    def keys(observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]] | None) -> list:
        if infos is not None and len(infos) != len(observations):
            raise PromptError(f"{len(infos)} infos for {len(observations)} observations; pass one info per observation")
        return [(infos[i] or {}).get("episode_id", i) if infos is not None else i for i in range(len(observations))]

    def messages(self, observations: Sequence[Mapping[str, Any]],
                 infos: Sequence[Mapping[str, Any]] | None = None) -> list[list[dict]]:
        """The conversation of every observation, ending before the policy's next answer."""
        if isinstance(observations, Mapping) or not isinstance(observations, Sequence):
            raise ConfigError(f"observations={describe(observations)} must be a list of observation dicts "
                              "(wrap a single observation as [obs])")
        out = []
        for index, key in enumerate(self.keys(observations, infos)):
            obs = observations[index]
            instruction, source, current, _ = observation_to_state(obs)
            step = int(obs.get("step", 0))
            episode = self._episodes.get(key)
            if step == 0:
                episode = self._episodes[key] = _Episode(instruction, source, [])
            elif episode is None:
                raise PromptError(f"episode {key!r} is at step {step} but this agent never saw its start; a multi-turn "
                                  "agent must see every step of an episode from step 0 (call reset() between runs)")
            elif step == len(episode.turns) + 1 and episode.pending is not None:
                info = (infos[index] or {}) if infos is not None else {}
                error = info.get("editor_error")
                if info.get("invalid_reason"):
                    error = f"invalid instruction: {info['invalid_reason']}"
                episode.turns.append(Turn(episode.pending, current, error))
                episode.pending = None
            elif step != len(episode.turns):
                raise PromptError(f"episode {key!r} jumped to step {step} after {len(episode.turns)} recorded turns; "
                                  "act() must see every step")
            out.append(build_conversation(episode.instruction, episode.source, episode.turns,
                                          edit_budget=self.edit_budget, system_prompt=self.system_prompt))
        self._last_keys = self.keys(observations, infos)
        return out

    def record(self, answers: Sequence[str]) -> None:
        """The raw answers given to the observations of the last :meth:`messages` call, in order."""
        keys = getattr(self, "_last_keys", [])
        if len(answers) != len(keys):
            raise PromptError(f"{len(answers)} answers for {len(keys)} conversations of the last messages() call")
        for key, answer in zip(keys, answers):
            self._episodes[key].pending = answer


__all__ = [
    "CONVERSATIONS", "DEFAULT_EDIT_BUDGET", "EDIT_TOOL_SCHEMA", "FORMAT_INSTRUCTIONS", "POLICY_RECORD",
    "EpisodeConversations", "PromptError", "SYSTEM_PROMPT", "Turn", "batch_messages", "build_conversation",
    "build_messages", "check_conversation", "conversation_tools", "format_history", "message_images",
    "observation_to_state", "policy_record", "read_policy_record", "state_messages", "to_pil",
    "tool_result_content", "tool_result_text", "tool_turns_as_user",
]

"""The MIRA policy prompt and its output format, shared by every agent, SFT and GRPO.

The conversation (:func:`build_messages`) shows the policy the source image I0, the current image
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

from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from mira_env.errors import ConfigError, describe

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


__all__ = [
    "FORMAT_INSTRUCTIONS", "PromptError", "SYSTEM_PROMPT", "batch_messages", "build_messages", "format_history",
    "message_images", "observation_to_state", "state_messages", "to_pil",
]

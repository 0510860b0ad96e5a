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

Output format (what the policy must answer; :func:`format_action` writes it, :func:`parse_action`
reads it). After stripping surrounding whitespace the answer is::

    [<think>REASONING</think>]  then exactly one of   <edit>INSTRUCTION</edit>   |   <STOP>

- ``<think>REASONING</think>`` is optional; when present it comes first, appears once, and
  ``REASONING`` may be any text without the tags ``<think>``, ``</think>``, ``<edit>``, ``</edit>``
  or ``<STOP>``. Whitespace (including newlines) may separate it from what follows.
- ``<edit>INSTRUCTION</edit>``: ONE atomic instruction (e.g. ``add a red hat to the man``).
  ``INSTRUCTION`` has its whitespace runs collapsed to single spaces; it must be non-empty, at most
  ``max_length`` characters, made of ``string.printable`` characters and free of the tags above.
- ``<STOP>`` (any letter case): the edit is complete; the episode ends.
- Nothing else may follow the closing tag. Tags are lower case except ``<STOP>``.

Anything else is malformed: :func:`parse_action` returns ``action=""`` (which ``EditEnv`` counts as an
invalid, ``"empty"`` action) and an ``error`` naming what is wrong. The format is small on purpose:
a tiny model learns it in a few SFT steps, and GRPO can reward it with ``ParsedAction.ok``.

Keep :data:`SYSTEM_PROMPT`, :func:`build_messages` and :func:`format_action` stable: SFT data and
GRPO prompts are built with them, and a change invalidates trained checkpoints.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from mira_env.errors import ConfigError, describe

STOP = "<STOP>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
EDIT_OPEN, EDIT_CLOSE = "<edit>", "</edit>"
TAGS = (THINK_OPEN, THINK_CLOSE, EDIT_OPEN, EDIT_CLOSE, STOP)
DEFAULT_MAX_LENGTH = 512

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

_PRINTABLE = frozenset(string.printable)
_TAG_RE = re.compile(r"</?(?:think|edit)>|<stop>", re.IGNORECASE)


class PromptError(ConfigError):
    """A prompt input (image, history, action) has the wrong type or value."""


@dataclass(frozen=True)
class ParsedAction:
    """The result of :func:`parse_action`.

    ``action`` is the atomic instruction, ``"<STOP>"``, or ``""`` when the output is malformed
    (``ok`` is then False and ``error`` says why). ``reasoning`` is the ``<think>`` text, if any;
    ``text`` the raw model output.
    """

    action: str
    ok: bool
    error: str | None
    reasoning: str | None
    text: str = ""


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


# ---------------------------------------------------------------------------------------------- outputs
def format_action(action: str, reasoning: str | None = None) -> str:
    """The answer text for ``action`` (the SFT target); :func:`parse_action` inverts it.

    ``format_action("add a hat")`` -> ``"<edit>add a hat</edit>"``; ``format_action("<STOP>")`` ->
    ``"<STOP>"``; with ``reasoning`` the answer starts with ``"<think>REASONING</think>\\n"``.
    """
    if not isinstance(action, str):
        raise PromptError(f"action={describe(action)} must be a str (an atomic instruction or '<STOP>')")
    instruction = " ".join(action.split())
    if not instruction:
        raise PromptError(f"action={action!r} is empty; pass an atomic instruction or '<STOP>'")
    if reasoning is not None:
        if not isinstance(reasoning, str):
            raise PromptError(f"reasoning={describe(reasoning)} must be a str or None")
        tag = _TAG_RE.search(reasoning)
        if tag:
            raise PromptError(f"reasoning contains the tag {tag.group(0)!r}; remove it")
    prefix = f"{THINK_OPEN}{reasoning.strip()}{THINK_CLOSE}\n" if reasoning is not None and reasoning.strip() else ""
    if instruction.lower() == STOP.lower():
        return prefix + STOP
    tag = _TAG_RE.search(instruction)
    if tag:
        raise PromptError(f"action={instruction!r} contains the tag {tag.group(0)!r}; pass the bare instruction")
    return f"{prefix}{EDIT_OPEN}{instruction}{EDIT_CLOSE}"


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_action(text: str, max_length: int = DEFAULT_MAX_LENGTH) -> ParsedAction:
    """Parse a policy answer in the module's output format; never raises on model output.

    Returns ``ParsedAction(action, ok=True, error=None, reasoning)`` for a well-formed answer
    (``action`` is the whitespace-collapsed instruction or ``"<STOP>"``), else
    ``ParsedAction("", ok=False, error=<why>, reasoning)``.
    """
    if not isinstance(text, str):
        raise PromptError(f"text={describe(text)} must be the decoded model output (a str)")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise PromptError(f"max_length={describe(max_length)} must be a positive int")

    def bad(error: str, reasoning: str | None = None) -> ParsedAction:
        return ParsedAction("", False, error, reasoning, text)

    rest = text.strip()
    if not rest:
        return bad("empty output")
    reasoning = None
    if rest.startswith(THINK_OPEN):
        end = rest.find(THINK_CLOSE)
        if end < 0:
            return bad("unclosed <think>: missing </think>")
        reasoning = rest[len(THINK_OPEN):end].strip()
        tag = _TAG_RE.search(reasoning)
        if tag:
            return bad(f"tag {tag.group(0)!r} inside <think></think>")
        rest = rest[end + len(THINK_CLOSE):].strip()
        if not rest:
            return bad("no <edit>...</edit> or <STOP> after </think>", reasoning)
    if rest[: len(STOP)].lower() == STOP.lower():
        trailing = rest[len(STOP):].strip()
        if trailing:
            return bad(f"text after <STOP>: {_preview(trailing)}", reasoning)
        return ParsedAction(STOP, True, None, reasoning, text)
    if not rest.startswith(EDIT_OPEN):
        return bad(f"expected <edit>...</edit> or <STOP>, got {_preview(rest)}", reasoning)
    end = rest.find(EDIT_CLOSE)
    if end < 0:
        return bad("unclosed <edit>: missing </edit>", reasoning)
    trailing = rest[end + len(EDIT_CLOSE):].strip()
    if trailing:
        return bad(f"text after </edit>: {_preview(trailing)}", reasoning)
    instruction = " ".join(rest[len(EDIT_OPEN):end].split())
    if not instruction:
        return bad("empty instruction inside <edit></edit>", reasoning)
    tag = _TAG_RE.search(instruction)
    if tag:
        return bad(f"tag {tag.group(0)!r} inside <edit></edit>", reasoning)
    odd = next((ch for ch in instruction if ch not in _PRINTABLE), None)
    if odd is not None:
        return bad(f"non-printable character {odd!r} in the instruction", reasoning)
    if len(instruction) > max_length:
        return bad(f"instruction has {len(instruction)} characters, over max_length={max_length}", reasoning)
    return ParsedAction(instruction, True, None, reasoning, text)


__all__ = [
    "DEFAULT_MAX_LENGTH", "FORMAT_INSTRUCTIONS", "ParsedAction", "PromptError", "STOP", "SYSTEM_PROMPT",
    "build_messages", "format_action", "format_history", "message_images", "observation_to_state",
    "parse_action", "state_messages", "to_pil",
]

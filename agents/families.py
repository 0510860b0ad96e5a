"""Policy families: what a model family brings to the MIRA conversation.

A :class:`PolicyFamily` (Qwen2.5-VL, Qwen3-VL) holds

- the chat template shipped in this package (``mira_env/agents/templates/<family>_mira.jinja``) that renders the
  MIRA tool conversation: the ``edit`` tool's schema in the system message, images in user AND tool turns, the
  ``edit`` tool call as ``<edit>X</edit>``, ``{% generation %}`` markers around assistant turns, and the same text
  for a turn whatever follows it (prefix-preserving, as TRL's tool loop needs);
- the response template that parses an answer between the family's chat markers: ``<think>`` -> reasoning,
  ``<edit>X</edit>`` -> the tool call ``edit(instruction=X)`` (the format itself lives in :mod:`mira_env.actions`);
- the vision placeholder tokens a policy must never sample;
- the image-processor settings of the real checkpoints (patch / merge size, min / max pixels, mean / std, as on the
  model cards), which the tiny replicas of :mod:`mira_env.tiny.vlm` copy.

:func:`prepare_processor` is what every loader calls (training, :class:`~mira_env.agents.vlm.VLMAgent`): a checkpoint
whose own template renders the MIRA conversation keeps it; any other gets its family's template (logged), so the
upstream Qwen2.5-VL template (no tools, no tool images) never reaches ``GRPOTrainer``. A model of no known family
fails with an error that names the fix (a template file through TRL's ``chat_template_path``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mira_env.errors import ConfigError, describe

logger = logging.getLogger(__name__)


class FamilyError(ConfigError):
    """A model belongs to no known policy family, or a chat template cannot render the MIRA conversation."""


#: Vision placeholder tokens of the Qwen VL families (a random or weak policy may sample them).
QWEN_VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


def edit_response_template(start_anchor: str, end_pattern: str) -> dict[str, Any]:
    """A transformers response template: ``<think>`` -> reasoning, ``<edit>X</edit>`` -> ``edit(instruction=X)``,
    between the assistant turn's ``start_anchor`` and the ``end_pattern`` (a regex) that closes it."""
    return {
        "defaults": {"role": "assistant"},
        "start_anchor": start_anchor,
        "fields": {
            "reasoning_content": {"open": "<think>", "close_pattern": r"</think>\s*", "content": "text"},
            "tool_calls": {
                "open": "<edit>", "close_pattern": r"</edit>\s*", "repeats": True, "content": "text",
                "transform": {"type": "function",
                              "function": {"name": "edit", "arguments": {"instruction": "{content}"}}},
            },
            "content": {"close_pattern": end_pattern, "content": "text"},
        },
    }


@dataclass(frozen=True)
class ImageSettings:
    """The image processor settings of a family's released checkpoints (``preprocessor_config.json``)."""

    patch_size: int
    merge_size: int
    temporal_patch_size: int
    min_pixels: int
    max_pixels: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]


@dataclass(frozen=True)
class PolicyFamily:
    """One supported policy family (see the module docstring)."""

    name: str = field(metadata={"help": "Registry name, e.g. 'qwen2_5_vl'."})
    model_types: tuple[str, ...] = field(metadata={"help": "config.model_type values of this family."})
    template_file: str = field(metadata={"help": "The MIRA chat template shipped in mira_env/agents/templates/."})
    upstream_template: str = field(metadata={
        "help": "File name of TRL's copy of the family's own chat template (trl/chat_templates/), i.e. what the "
                "real checkpoints ship."})
    response_template: dict = field(metadata={"help": "transformers response template of an answer."})
    vision_tokens: tuple[str, ...] = field(metadata={"help": "Placeholder tokens to suppress in generation."})
    image: ImageSettings = field(metadata={"help": "Image processor settings of the released checkpoints."})
    example_models: tuple[str, ...] = field(default=(), metadata={"help": "Hub ids of released checkpoints."})

    def chat_template(self) -> str:
        """The family's MIRA chat template (text)."""
        return resources.files("mira_env.agents.templates").joinpath(self.template_file).read_text(encoding="utf-8")

    def upstream_chat_template(self) -> str:
        """The chat template the family's released checkpoints ship (TRL's on-disk copy)."""
        import trl

        path = Path(trl.__file__).parent / "chat_templates" / self.upstream_template
        if not path.is_file():
            raise FamilyError(f"trl {trl.__version__} has no chat_templates/{self.upstream_template}; "
                              "install trl>=1.16")
        return path.read_text(encoding="utf-8")


_QWEN_RESPONSE = edit_response_template("<|im_start|>assistant\n", r"<\|im_end\|>\s*")
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

FAMILIES: dict[str, PolicyFamily] = {
    "qwen2_5_vl": PolicyFamily(
        name="qwen2_5_vl", model_types=("qwen2_5_vl",), template_file="qwen2_5_vl_mira.jinja",
        upstream_template="qwen2_5_vl.jinja", response_template=_QWEN_RESPONSE, vision_tokens=QWEN_VISION_TOKENS,
        # Qwen/Qwen2.5-VL-*-Instruct preprocessor_config.json
        image=ImageSettings(patch_size=14, merge_size=2, temporal_patch_size=2, min_pixels=3136,
                            max_pixels=12845056, image_mean=_CLIP_MEAN, image_std=_CLIP_STD),
        example_models=("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct")),
    "qwen3_vl": PolicyFamily(
        name="qwen3_vl", model_types=("qwen3_vl",), template_file="qwen3_vl_mira.jinja",
        upstream_template="qwen3_vl.jinja", response_template=_QWEN_RESPONSE, vision_tokens=QWEN_VISION_TOKENS,
        # Qwen/Qwen3-VL-*-Instruct preprocessor_config.json: size {shortest_edge: 65536, longest_edge: 16777216}
        image=ImageSettings(patch_size=16, merge_size=2, temporal_patch_size=2, min_pixels=65536,
                            max_pixels=16777216, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5)),
        example_models=("Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-VL-8B-Instruct")),
}


def get_family(name: str) -> PolicyFamily:
    """The registered family ``name``; a clear error listing the choices otherwise."""
    if name not in FAMILIES:
        raise FamilyError(f"policy family {describe(name)} is not registered; choose one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def register_family(family: PolicyFamily) -> None:
    """Add (or replace) a policy family; its template file must ship in mira_env/agents/templates/."""
    if not isinstance(family, PolicyFamily):
        raise FamilyError(f"family={describe(family)} must be a PolicyFamily")
    FAMILIES[family.name] = family


def _model_type(model_or_config: Any) -> str | None:
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "model_type", None)


def family_of(model_or_config: Any) -> PolicyFamily:
    """The family of a model (or its config), by ``config.model_type``."""
    model_type = _model_type(model_or_config)
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise FamilyError(
        f"model_type={model_type!r} belongs to no MIRA policy family (known: "
        + ", ".join(f"{f.name} {list(f.model_types)}" for f in FAMILIES.values())
        + "). Give a chat template that renders tools, images in tool turns and the edit tool call as "
          "<edit>X</edit> with chat_template_path=<file.jinja> (TRL's chat_template_path setting), or register "
          "a family with mira_env.agents.families.register_family")


# ---------------------------------------------------------------------------------------------- the probe
_PROBE_INSTRUCTION = "probe_instruction_5e1c"
_PROBE_TOOL_TEXT = "probe_tool_text_9a7b"


def _probe_messages(image: Any) -> list[dict]:
    return [
        {"role": "system", "content": [{"type": "text", "text": "probe system"}]},
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "probe user"}]},
        {"role": "assistant", "content": [{"type": "text", "text": ""}],
         "tool_calls": [{"type": "function", "function": {"name": "edit",
                                                          "arguments": {"instruction": _PROBE_INSTRUCTION}}}]},
        {"role": "tool", "name": "edit", "content": [{"type": "image", "image": image},
                                                     {"type": "text", "text": _PROBE_TOOL_TEXT}]},
    ]


def template_problem(processor: Any, chat_template: str | None = None) -> str | None:
    """Why ``processor``'s chat template (or ``chat_template``) cannot render the MIRA conversation; None if it can.

    It must render an image in a tool turn, the ``edit`` tool call as ``<edit>X</edit>``, the tool text, pass TRL's
    ``supports_tool_calling``, carry ``{% generation %}`` markers and be prefix-preserving.
    """
    from jinja2 import TemplateError
    from PIL import Image

    template = chat_template if chat_template is not None else getattr(processor, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        return "it has no chat template"
    image = Image.new("RGB", (8, 8))
    try:
        text = processor.apply_chat_template(_probe_messages(image), chat_template=template, tokenize=False,
                                             tools=[EDIT_TOOL_SCHEMA])
    except (TemplateError, TypeError, KeyError) as exc:
        return f"rendering the tool conversation failed ({type(exc).__name__}: {exc})"
    image_token = getattr(processor, "image_token", None) or "<|image_pad|>"
    if text.count(image_token) != 2:
        return f"it renders {text.count(image_token)} of the 2 images (user + tool turn) as {image_token!r}"
    if f"<edit>{_PROBE_INSTRUCTION}</edit>" not in text:
        return "it does not render the edit tool call as <edit>X</edit>"
    if _PROBE_TOOL_TEXT not in text:
        return "it drops the tool turn's text"
    if '"edit"' not in text:
        return "it does not render the tool schemas"
    from trl.chat_template_utils import has_generation_markers

    if not has_generation_markers(template):
        return "it has no {% generation %} markers (assistant-only loss)"
    from trl.chat_template_utils import is_chat_template_prefix_preserving, supports_tool_calling

    saved = processor.chat_template
    processor.chat_template = template
    try:
        if not supports_tool_calling(processor):
            return "TRL's supports_tool_calling check fails"
        if not is_chat_template_prefix_preserving(processor):
            return "it is not prefix-preserving across turns"
    finally:
        processor.chat_template = saved
    return None


#: The JSON schema of the ``edit`` tool, as ``transformers.utils.get_json_schema`` writes it for
#: ``mira_env.train.tools.EditingToolEnv.edit`` (what TRL renders in GRPO; a test keeps the two equal).
EDIT_TOOL_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "edit",
        "description": "Execute one atomic edit on the current image and return the edited image.",
        "parameters": {
            "type": "object",
            "properties": {"instruction": {"type": "string",
                                           "description": 'One atomic editing instruction, e.g. "make the red '
                                                          'circle blue".'}},
            "required": ["instruction"],
        },
        "return": {"type": "array"},
    },
}


def prepare_processor(processor: Any, model_or_config: Any = None, *, chat_template_path: str | None = None,
                      source: str = "the checkpoint") -> PolicyFamily | None:
    """Give ``processor`` a chat template that renders the MIRA conversation and the family's response template.

    - ``chat_template_path`` (a ``.jinja`` file): that template is used (it must pass :func:`template_problem`);
    - else a template that already passes :func:`template_problem` is kept;
    - else the family's MIRA template replaces it, and that is logged (it is saved with every checkpoint).

    Returns the model's family (None when a ``chat_template_path`` serves a model of no known family).
    """
    family = None
    try:
        family = family_of(model_or_config) if model_or_config is not None else None
    except FamilyError:
        if chat_template_path is None:
            raise
    if chat_template_path is not None:
        path = Path(chat_template_path)
        if not path.is_file():
            raise FamilyError(f"chat_template_path={str(path)!r} is not a file; pass a .jinja chat template")
        template = path.read_text(encoding="utf-8")
        problem = template_problem(processor, template)
        if problem:
            raise FamilyError(f"the chat template {str(path)!r} cannot render the MIRA conversation: {problem}")
        processor.chat_template = template
        logger.info("chat template of %s: %s (chat_template_path)", source, path)
    else:
        if family is None:
            raise FamilyError("prepare_processor needs the model (or its config) to find its policy family, or a "
                              "chat_template_path")
        problem = template_problem(processor)
        if problem:
            processor.chat_template = family.chat_template()
            still = template_problem(processor)
            if still:
                raise FamilyError(f"the {family.name} MIRA template fails its own check: {still}")
            logger.warning("the chat template of %s cannot render the MIRA tool conversation (%s); using the %s "
                           "family's template %s (saved with every checkpoint)", source, problem, family.name,
                           family.template_file)
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.response_template = (family.response_template if family is not None
                                   else _QWEN_RESPONSE)
    if getattr(processor, "tokenizer", None) is not None:
        tokenizer.chat_template = processor.chat_template
    return family


def suppress_token_ids(processor: Any, family: PolicyFamily | None = None) -> list[int]:
    """Ids of the family's vision placeholder tokens in ``processor``'s vocabulary (missing ones skipped)."""
    tokens = family.vision_tokens if family is not None else QWEN_VISION_TOKENS
    tokenizer = getattr(processor, "tokenizer", processor)
    vocab = tokenizer.get_vocab()
    return [int(vocab[token]) for token in tokens if token in vocab]


__all__ = ["EDIT_TOOL_SCHEMA", "FAMILIES", "FamilyError", "ImageSettings", "PolicyFamily", "QWEN_VISION_TOKENS",
           "edit_response_template", "family_of", "get_family", "prepare_processor", "register_family",
           "suppress_token_ids", "template_problem"]

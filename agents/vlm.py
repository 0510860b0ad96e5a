"""``VLMAgent``: a transformers image-text-to-text model as the MIRA policy.

Each :meth:`VLMAgent.act` call turns every observation into the MIRA conversation of
:mod:`mira_env.agents.prompt` (the one renderer): by default ``multi_turn``, exactly the tool conversation GRPO
trains on (I0 and C, then each earlier answer and a tool turn with the edited image; the agent keeps it per
episode, keyed by ``infos[i]["episode_id"]``), or ``single_turn`` (I0, It, C, numbered history). A trained
policy's folder records its conversation and edit budget (``mira_policy.json``); the agent plays that one
unless told otherwise. The processor gets the policy family's MIRA chat template
(:func:`mira_env.agents.families.prepare_processor`). The batch is rendered with
``processor.apply_chat_template`` (left padding), runs ONE ``model.generate`` per batch of
``batch_size`` observations and parses every answer with :func:`mira_env.actions.parse_action`.
Malformed answers become ``""`` (``EditEnv`` counts them as invalid actions); the raw texts and parse
results of the last call stay on ``last_outputs`` for logs and trajectories.

Any model ``AutoModelForImageTextToText`` loads works (Qwen2.5-VL and Qwen3-VL are the tested
ones); the vision placeholder tokens are suppressed during generation.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from mira_env.actions import DEFAULT_MAX_LENGTH, ParsedAction, parse_action
from mira_env.agents.prompt import (CONVERSATIONS, DEFAULT_EDIT_BUDGET, EpisodeConversations, batch_messages,
                                    conversation_tools, read_policy_record)
from mira_env.config import merge_config
from mira_env.errors import ConfigError, describe
from mira_env.validate import check_choice, check_float, check_int, check_ints

_DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class VLMAgentConfig:
    """Generation and batching settings of :class:`VLMAgent`."""

    device: str | None = field(default=None, metadata={
        "help": "Torch device for the model ('cuda', 'cuda:1', 'cpu'); None picks cuda when available, else cpu."})
    torch_dtype: str = field(default="auto", metadata={
        "help": "Weights dtype: 'auto' (the checkpoint's), 'float32', 'float16' or 'bfloat16'."})
    max_new_tokens: int = field(default=64, metadata={
        "help": "Most tokens generated per answer (reasoning included)."})
    do_sample: bool = field(default=False, metadata={
        "help": "Sample (True) or decode greedily (False)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (do_sample=True only)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass in (0, 1] (do_sample=True only)."})
    system_prompt: str | None = field(default=None, metadata={
        "help": "Replaces mira_env.agents.prompt.SYSTEM_PROMPT; '' drops the system message."})
    max_instruction_length: int = field(default=DEFAULT_MAX_LENGTH, metadata={
        "help": "Longest accepted atomic instruction in characters; longer answers are malformed. "
                "Match the env's max_instruction_length."})
    batch_size: int = field(default=8, metadata={
        "help": "Observations per generate call; act() splits larger batches."})
    seed: int | None = field(default=None, metadata={
        "help": "Seed of the sampling RNG (the n-th generate call uses seed + n, in a forked RNG); "
                "None samples from torch's global RNG."})
    conversation: str | None = field(default=None, metadata={
        "help": "'multi_turn' (the GRPO tool conversation) or 'single_turn'; None: what the checkpoint's "
                "mira_policy.json records, else 'multi_turn'."})
    edit_budget: int | None = field(default=None, metadata={
        "help": "Edit budget T shown in multi-turn tool turns; None: the checkpoint's record, else 5. Match the "
                "env's max_steps."})
    chat_template_path: str | None = field(default=None, metadata={
        "help": "A .jinja chat template replacing the family's MIRA template (needed for models of no known family)."})

    def __post_init__(self) -> None:
        check_ints(self, ("max_new_tokens", "max_instruction_length", "batch_size"))
        check_choice("torch_dtype", self.torch_dtype, _DTYPES)
        if not isinstance(self.do_sample, bool):
            raise ConfigError(f"do_sample={describe(self.do_sample)} must be a bool")
        check_float("temperature", self.temperature, above=0)
        check_float("top_p", self.top_p, above=0, maximum=1)
        check_int("seed", self.seed, minimum=None, allow_none=True)
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ConfigError(f"system_prompt={describe(self.system_prompt)} must be a str or None")
        check_choice("conversation", self.conversation, (*CONVERSATIONS, None))
        check_int("edit_budget", self.edit_budget, allow_none=True)
        if self.device is not None and not isinstance(self.device, str):
            raise ConfigError(f"device={describe(self.device)} must be a str such as 'cuda' or 'cpu', or None")


def _config(config: VLMAgentConfig | None, kwargs: dict) -> VLMAgentConfig:
    return merge_config(VLMAgentConfig, config, kwargs, "VLMAgent")


class VLMAgent:
    """A policy VLM: ``act(observations) -> list[str]`` of atomic instructions / ``"<STOP>"`` / ``""``.

    Args:
        model: a hub id or a local folder holding a model and its processor.
        config: a :class:`VLMAgentConfig`; any of its fields may also be passed as keywords
            (``device``, ``torch_dtype``, ``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p``,
            ``system_prompt``, ``max_instruction_length``, ``batch_size``, ``seed``).

    Attributes:
        last_outputs: one :class:`~mira_env.actions.ParsedAction` (raw ``text`` included) per observation
            of the last :meth:`act` call.
        generate_calls: how many ``generate`` calls this agent made.
    """

    def __init__(self, model: str, *, config: VLMAgentConfig | None = None, **kwargs: Any) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"model={describe(model)} must be a hub id or a local path (a non-empty str); "
                              "use VLMAgent.from_model(model, processor) for an object in memory")
        self.config = _config(config, kwargs)
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = self.config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        name = self.config.torch_dtype
        dtype = name if name == "auto" else getattr(torch, name)
        processor = AutoProcessor.from_pretrained(model)
        network = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype).to(device).eval()
        self._setup(network, processor, model, read_policy_record(model))

    @classmethod
    def from_model(cls, model: Any, processor: Any, *, name: str | None = None,
                   config: VLMAgentConfig | None = None, **kwargs: Any) -> "VLMAgent":
        """An agent around an already loaded ``model`` and ``processor`` (e.g. a GRPO policy in training).

        The model stays on its device and in its dtype; ``device`` / ``torch_dtype`` are ignored. ``processor`` is
        prepared in place: it gets the family's MIRA chat template when its own cannot render the conversation.
        """
        if not callable(getattr(model, "generate", None)):
            raise ConfigError(f"model={describe(model)} has no generate() method; pass a transformers model")
        if not callable(getattr(processor, "apply_chat_template", None)):
            raise ConfigError(f"processor={describe(processor)} has no apply_chat_template(); pass its processor")
        agent = cls.__new__(cls)
        agent.config = _config(config, kwargs)
        name = name or getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        agent._setup(model, processor, name, {})  # noqa: SLF001 - the class's own constructor path
        return agent

    def _setup(self, model: Any, processor: Any, source: str, record: dict) -> None:
        from mira_env.agents.families import FamilyError, family_of, prepare_processor, suppress_token_ids

        c = self.config
        self.conversation = c.conversation or record.get("conversation") or "multi_turn"
        self.edit_budget = int(c.edit_budget or record.get("edit_budget") or DEFAULT_EDIT_BUDGET)
        if c.system_prompt is None and "system_prompt" in record:
            c.system_prompt = record["system_prompt"]
        family = None
        try:
            family = family_of(model)
        except FamilyError:
            if self.conversation == "multi_turn" and c.chat_template_path is None:
                raise
        if family is not None or c.chat_template_path is not None:
            family = prepare_processor(processor, model, chat_template_path=c.chat_template_path, source=source)
        self.model = model
        self.processor = processor
        self.name = f"vlm:{source}"
        self.last_outputs: list[ParsedAction] = []
        self.generate_calls = 0
        self.episodes = EpisodeConversations(edit_budget=self.edit_budget, system_prompt=c.system_prompt)
        self._suppress = suppress_token_ids(processor, family)
        tokenizer = getattr(processor, "tokenizer", processor)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def __repr__(self) -> str:
        c = self.config
        return (f"VLMAgent(name={self.name!r}, device={str(self.model.device)!r}, batch_size={c.batch_size}, "
                f"max_new_tokens={c.max_new_tokens}, do_sample={c.do_sample}, conversation={self.conversation!r})")

    def reset(self, n: int | None = None) -> None:
        """Forget the last outputs and every episode's conversation."""
        self.last_outputs = []
        self.episodes.reset()

    # ------------------------------------------------------------------ acting
    def act(self, observations: Sequence[Mapping[str, Any]],
            infos: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
        """One action per observation; ONE ``generate`` call per ``batch_size`` observations."""
        if self.conversation == "multi_turn":
            conversations = self.episodes.messages(observations, infos)
        else:
            conversations = batch_messages(observations, system_prompt=self.config.system_prompt)
        texts: list[str] = []
        size = self.config.batch_size
        for start in range(0, len(conversations), size):
            texts.extend(self.generate_texts(conversations[start:start + size],
                                             tools=conversation_tools(self.conversation)))
        limit = self.config.max_instruction_length
        self.last_outputs = [parse_action(text, max_length=limit) for text in texts]
        if self.conversation == "multi_turn":
            self.episodes.record(texts)
        return [parsed.action for parsed in self.last_outputs]

    def generate_texts(self, conversations: Sequence[list[dict]], tools: list[dict] | None = None) -> list[str]:
        """The decoded answers to ``conversations`` (chat-message lists, rendered with ``tools``) from ONE
        ``generate`` call."""
        if not conversations:
            return []
        import torch

        inputs = self.processor.apply_chat_template(
            list(conversations), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
            tools=tools, processor_kwargs={"padding": True, "padding_side": "left"})
        inputs = inputs.to(self.model.device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        c = self.config
        kwargs: dict[str, Any] = dict(max_new_tokens=c.max_new_tokens, do_sample=c.do_sample,
                                      pad_token_id=self._pad_id, suppress_tokens=self._suppress or None)
        if c.do_sample:
            kwargs.update(temperature=float(c.temperature), top_p=float(c.top_p))
        else:  # do not inherit a checkpoint's sampling defaults into greedy decoding
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode(), contextlib.ExitStack() as stack:
            if c.seed is not None:  # a private, reproducible stream; the global RNG is left as it was
                stack.enter_context(torch.random.fork_rng(devices=self._rng_devices()))
                torch.manual_seed(c.seed + self.generate_calls)
            output = self.model.generate(**inputs, **kwargs)
        self.generate_calls += 1
        prompt_length = inputs["input_ids"].shape[1]
        return self.processor.batch_decode(output[:, prompt_length:], skip_special_tokens=True)

    def _rng_devices(self) -> list:
        device = self.model.device
        return [device] if getattr(device, "type", "cpu") == "cuda" else []


__all__ = ["VLMAgent", "VLMAgentConfig"]

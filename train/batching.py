"""ONE batched editor call per tool-calling iteration of GRPO (instead of one call per rollout).

TRL 1.16's ``GRPOTrainer._tool_call_loop`` executes tools in a Python loop over the samples of the
generation batch, one sample at a time. With the editing tool that means ``rollouts x turns`` sequential
editor calls per step. :class:`BatchedToolGRPOTrainer` keeps TRL's loop (its token bookkeeping, tool
masks, image handling and roll-backs are untouched) and changes only WHEN the edits run:

1. At the first ``edit`` tool call of an iteration, it collects the pending ``edit`` call of EVERY sample
   of the batch (each sample's last assistant message with unanswered tool calls) and steps all their
   environments as ONE batched step (:func:`mira_env.train.tools.step_tool_calls`, built on
   :func:`mira_env.steps.step_many`): the edits in ONE ``editor.edit`` call (deduplicated: identical image,
   instruction, seed and settings run once, see :mod:`mira_env.editors.cache`), and the reward terms the
   environment computes at this step (every step with ``reward_mode`` ``every_step`` / ``delta``, or the
   episodes that end here) in ONE ``reward.score`` call.
2. TRL then calls each sample's tool as before; the tool hands back the result its environment's step
   produced in the batch, once. Anything not pre-stepped (a second ``<edit>`` in the same answer, which
   depends on the first) steps on its own as before.

So the environment's semantics, seeds and records are exactly those of the sequential loop (TRL calls the
tool of every sample with tool calls in an iteration, and rolls results back only after they ran, so
stepping them ahead changes no state); with a deterministic editor the images are identical; only the
number of editor and reward calls changes: one each per iteration. Behind a
:class:`~mira_env.editors.remote.RemoteEditor`, that one editor call fans out concurrently over the
service's replicas.

TRL internals relied on (checked at construction; supported range :data:`SUPPORTED_TRL`):

- ``GRPOTrainer._tool_call_loop(prompts, prompt_ids, completion_ids, completions, logprobs, images,
  multimodal_fields)`` is where tools run, and ``completions`` (one message list per sample) is the list it
  appends each iteration's post-tool assistant message to before that iteration's tool calls;
- assistant messages carry ``tool_calls`` as ``[{"type": "function", "function": {"name", "arguments"}}]``;
- it calls the tool of every sample with tool calls in each iteration (``idxs_with_tool``) before it drops
  overlong results;
- ``self._sync_tool_dicts[i]`` maps tool names to the callables of sample ``i`` (bound methods of that
  sample's environment instance, :class:`~mira_env.train.tools.EditingToolEnv`);
- ``_generate_and_score_completions`` returns a dict with ``advantages`` of shape (B,) and ``compute_loss``
  accepts (B, T) advantages (TRL 1.16 unsqueezes only 1-D ones): the per-turn advantage hook below.

Per-turn advantages: override :meth:`BatchedToolGRPOTrainer.turn_advantages` to return a (B, T) tensor
aligned with ``completion_ids`` (``batch["tool_mask"]`` marks tool-result tokens with 0, so the turns of
each completion can be found); ``None`` (the default) keeps TRL's per-sequence group advantages.

Use it in place of ``trl.GRPOTrainer``::

    from mira_env.train.batching import BatchedToolGRPOTrainer as GRPOTrainer
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from PIL import Image

from mira_env.editors.base import EditorInfo
from mira_env.editors.cache import DedupEditor
from mira_env.errors import ConfigError

logger = logging.getLogger(__name__)

#: TRL versions whose ``_tool_call_loop`` this module was written against (see the module docstring).
SUPPORTED_TRL = (">=1.16", "<1.17")
TOOL_NAME = "edit"


def check_trl_version(version: str | None = None) -> str:
    """TRL's version if it is in :data:`SUPPORTED_TRL`, else :class:`ConfigError` naming the range."""
    from packaging.version import Version

    if version is None:
        import trl

        version = trl.__version__
    parsed = Version(version)
    if not (Version("1.16") <= parsed < Version("1.17")):
        raise ConfigError(f"BatchedToolGRPOTrainer relies on TRL internals of versions {','.join(SUPPORTED_TRL)} "
                          f"(GRPOTrainer._tool_call_loop); installed TRL is {version}. Install trl>=1.16,<1.17 or "
                          "use trl.GRPOTrainer (one editor call per rollout)")
    return version


class IterationEditor:
    """The editor a tool iteration's batched step runs on: the real editor, deduplicated when it is deterministic.

    Args:
        editor: the real editor (shared by the rollouts' environments).
        dedup: run identical edits of a batch once (only for ``info.deterministic`` editors).
    """

    def __init__(self, editor: Any, dedup: bool = True) -> None:
        self.editor = editor
        info = getattr(editor, "info", None) or EditorInfo(name=type(editor).__name__)
        self.info = info
        self.runner = DedupEditor(editor) if dedup and info.deterministic else editor
        self.calls = 0  # batched editor calls (at most one per tool iteration)
        self.batch_sizes: list[int] = []

    def edit(self, images: Sequence[Image.Image], instructions: Sequence[str], seeds: Sequence[int]) -> list:
        self.calls += 1
        self.batch_sizes.append(len(images))
        return self.runner.edit(list(images), list(instructions), list(seeds))


def _pending_calls(completions: Sequence[list[dict]], handled: set[int], name: str) -> list[tuple[int, dict]]:
    """``(sample index, arguments)`` of the first unanswered ``name`` call of each sample, marking them handled."""
    pending = []
    for index, messages in enumerate(completions):
        if not messages:
            continue
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "assistant" or id(last) in handled:
            continue
        handled.add(id(last))
        for call in last.get("tool_calls") or []:
            if not isinstance(call, dict) or call.get("type") != "function":
                continue
            function = call.get("function") or {}
            if function.get("name") == name:
                arguments = function.get("arguments")
                pending.append((index, arguments if isinstance(arguments, dict) else {}))
                break
    return pending


def batched_tool_trainer_class():
    """``BatchedToolGRPOTrainer``, built on the installed ``trl.GRPOTrainer`` (imported here, not at import time)."""
    from trl import GRPOTrainer

    class BatchedToolGRPOTrainer(GRPOTrainer):
        """``trl.GRPOTrainer`` with one batched editor call per tool iteration (see :mod:`mira_env.train.batching`).

        Extra keyword arguments: ``dedup_edits`` (default True) and ``batched_tool`` (default ``"edit"``).
        """

        def __init__(self, *args: Any, dedup_edits: bool = True, batched_tool: str = TOOL_NAME, **kwargs: Any):
            check_trl_version()
            super().__init__(*args, **kwargs)
            self.dedup_edits, self.batched_tool = bool(dedup_edits), batched_tool
            self._iteration_editors: dict[int, IterationEditor] = {}
            self.tool_iterations = 0  # batched tool-iteration steps run (one per iteration with edit calls)

        # ------------------------------------------------------------------ batching
        def _editor_for(self, env: Any) -> IterationEditor:
            runner = self._iteration_editors.get(id(env.editor))
            if runner is None:
                runner = self._iteration_editors[id(env.editor)] = IterationEditor(env.editor, dedup=self.dedup_edits)
            return runner

        def _step_iteration(self, completions, handled: set[int], tool_owners: list[Any]) -> None:
            from mira_env.train.tools import step_tool_calls

            owners, texts = [], []
            for index, arguments in _pending_calls(completions, handled, self.batched_tool):
                owner = tool_owners[index]
                env = getattr(owner, "env", None)
                # only calls TRL will make as edit(instruction=...): anything else fails in TRL's own call
                if env is None or set(arguments) != {"instruction"}:
                    continue
                owners.append(owner)
                texts.append(str(arguments["instruction"]))
            if owners and step_tool_calls(owners, texts, [self._editor_for(o.env) for o in owners]):
                self.tool_iterations += 1

        def _tool_call_loop(self, prompts, prompt_ids, completion_ids, completions, logprobs, images,
                            multimodal_fields):
            from mira_env.train.tools import clear_tool_calls

            name = self.batched_tool
            dicts = getattr(self, "_sync_tool_dicts", None) or []
            originals = [d.get(name) for d in dicts]
            owners = [getattr(fn, "__self__", None) for fn in originals]
            handled: set[int] = set()

            def wrap(fn):
                def call(**arguments):
                    self._step_iteration(completions, handled, owners)
                    return fn(**arguments)

                call.__doc__, call.__name__ = fn.__doc__, getattr(fn, "__name__", name)
                return call

            for tool_dict, fn in zip(dicts, originals):
                if fn is not None:
                    tool_dict[name] = wrap(fn)
            try:
                return super()._tool_call_loop(prompts, prompt_ids, completion_ids, completions, logprobs, images,
                                               multimodal_fields)
            finally:
                for tool_dict, fn in zip(dicts, originals):
                    if fn is not None:
                        tool_dict[name] = fn
                clear_tool_calls([o for o in owners if o is not None and hasattr(o, "env")])

        # ------------------------------------------------------------------ per-turn advantages
        def turn_advantages(self, batch: dict, inputs: list[dict]) -> Any:
            """Per-token advantages (B, T) for ``batch`` (aligned with ``completion_ids``), or None.

            The default keeps TRL's group-normalised per-sequence advantages. ``batch["tool_mask"]`` is 0 on
            tool-result tokens, which separates a completion's turns; ``batch["advantages"]`` holds TRL's (B,).
            """
            return None

        def _generate_and_score_completions(self, inputs):
            batch = super()._generate_and_score_completions(inputs)
            per_turn = self.turn_advantages(batch, inputs)
            if per_turn is not None:
                expected = tuple(batch["completion_ids"].shape)
                if tuple(per_turn.shape) != expected:
                    raise ConfigError(f"turn_advantages returned shape {tuple(per_turn.shape)}; expected {expected} "
                                      "(batch size, completion length)")
                batch["advantages"] = per_turn
            return batch

    return BatchedToolGRPOTrainer


def __getattr__(name: str):  # BatchedToolGRPOTrainer is built on first access (TRL is a heavy import)
    if name == "BatchedToolGRPOTrainer":
        cls = batched_tool_trainer_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SUPPORTED_TRL", "IterationEditor", "batched_tool_trainer_class",
           "check_trl_version"]

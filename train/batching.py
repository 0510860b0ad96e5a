"""ONE batched editor call per tool-calling iteration of GRPO (instead of one call per rollout).

TRL 1.16's ``GRPOTrainer._tool_call_loop`` executes tools in a Python loop over the samples of the
generation batch, one sample at a time. With the editing tool that means ``rollouts x turns`` sequential
editor calls per step. :class:`BatchedToolGRPOTrainer` keeps TRL's loop (its token bookkeeping, tool
masks, image handling and roll-backs are untouched) and changes only WHEN the edits run:

1. At the first ``edit`` tool call of an iteration, it collects the pending ``edit`` call of EVERY sample
   of the batch (each sample's last assistant message with unanswered tool calls), plans each one on its
   rollout's environment (:meth:`EditEnv.plan_step`, no side effects) and runs all of them in ONE
   ``editor.edit`` call (deduplicated: identical image, instruction, seed and settings run once, see
   :mod:`mira_env.editors.cache`).
2. TRL then calls each sample's tool as before; its environment steps as before, but its editor is a
   :class:`PrefetchEditor` that hands back the prefetched result for exactly that (image, instruction,
   seed) instead of calling the model. A result is handed out once; anything not prefetched (a second
   ``<edit>`` in the same answer, which depends on the first) falls through to the real editor.

So the environment's semantics, seeds and records are exactly those of the sequential loop, and with a
deterministic editor the images are identical; only the number of editor calls changes: one per
iteration. Behind a :class:`~mira_env.editors.remote.RemoteEditor`, that one call fans out concurrently
over the service's replicas.

TRL internals relied on (checked at construction; supported range :data:`SUPPORTED_TRL`):

- ``GRPOTrainer._tool_call_loop(prompts, prompt_ids, completion_ids, completions, logprobs, images,
  multimodal_fields)`` is where tools run, and ``completions`` (one message list per sample) is the list it
  appends each iteration's post-tool assistant message to before that iteration's tool calls;
- assistant messages carry ``tool_calls`` as ``[{"type": "function", "function": {"name", "arguments"}}]``;
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
from collections import defaultdict
from typing import Any, Sequence

from PIL import Image

from mira_env.editors.base import EditorInfo
from mira_env.editors.cache import DedupEditor, edit_key
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


class PrefetchEditor:
    """An editor that serves edits computed ahead in one batch, and passes anything else through.

    Args:
        editor: the real editor.
        dedup: run identical edits of a batch once (only for ``info.deterministic`` editors).
    """

    def __init__(self, editor: Any, dedup: bool = True) -> None:
        self.editor = editor
        info = getattr(editor, "info", None) or EditorInfo(name=type(editor).__name__)
        self.info = info
        self.runner = DedupEditor(editor) if dedup and info.deterministic else editor
        self._store: dict[str, list[Any]] = defaultdict(list)
        self.batched_calls = 0  # prefetch batches (one per tool iteration)
        self.fallback_calls = 0  # edits that were not prefetched and ran on their own
        self.batch_sizes: list[int] = []

    def prefetch(self, images: Sequence[Image.Image], instructions: Sequence[str], seeds: Sequence[int]) -> None:
        """Run these edits in ONE call and keep each result for the ``edit`` call that asks for it."""
        if not images:
            return
        self.batched_calls += 1
        self.batch_sizes.append(len(images))
        try:
            outputs = self.runner.edit(list(images), list(instructions), list(seeds))
        except Exception as exc:  # noqa: BLE001 - each rollout's own call will fail and record it
            logger.warning("batched edit of %d items failed (%s); each rollout retries its own", len(images), exc)
            return
        for image, text, seed, output in zip(images, instructions, seeds, outputs):
            self._store[edit_key(image, text, seed)].append(output)

    def edit(self, images, instructions, seeds):
        out: list[Any] = [None] * len(images)
        missing = []
        for index, (image, text, seed) in enumerate(zip(images, instructions, seeds)):
            queue = self._store.get(edit_key(image, text, seed))
            if queue:
                out[index] = queue.pop(0)
            else:
                missing.append(index)
        if missing:
            self.fallback_calls += 1
            fresh = self.editor.edit([images[i] for i in missing], [instructions[i] for i in missing],
                                     [seeds[i] for i in missing])
            for index, output in zip(missing, fresh):
                out[index] = output
        return out

    def clear(self) -> None:
        """Drop results nobody asked for (a rollout rolled back by TRL for length)."""
        self._store.clear()


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
            self._prefetchers: dict[int, PrefetchEditor] = {}
            self.tool_iterations = 0  # batched prefetches run (one per iteration with edits)

        # ------------------------------------------------------------------ batching
        def _prefetcher_for(self, env: Any) -> PrefetchEditor:
            editor = env.editor
            if isinstance(editor, PrefetchEditor):
                return editor
            proxy = self._prefetchers.get(id(editor))
            if proxy is None:
                proxy = self._prefetchers[id(editor)] = PrefetchEditor(editor, dedup=self.dedup_edits)
            env.editor = proxy
            return proxy

        def _prefetch_iteration(self, completions, handled: set[int], tool_owners: list[Any]) -> None:
            groups: dict[int, list] = defaultdict(list)
            for index, arguments in _pending_calls(completions, handled, self.batched_tool):
                owner = tool_owners[index]
                env = getattr(owner, "env", None)
                if env is None or getattr(owner, "finished", False) or env.done:
                    continue
                plan = env.plan_step(str(arguments.get("instruction", "")))
                if plan.needs_edit:
                    proxy = self._prefetcher_for(env)
                    groups[id(proxy)].append((proxy, plan))
            for items in groups.values():
                proxy = items[0][0]
                proxy.prefetch([p.image for _, p in items], [p.instruction for _, p in items],
                               [int(p.seed) for _, p in items])
                self.tool_iterations += 1

        def _tool_call_loop(self, prompts, prompt_ids, completion_ids, completions, logprobs, images,
                            multimodal_fields):
            name = self.batched_tool
            dicts = getattr(self, "_sync_tool_dicts", None) or []
            originals = [d.get(name) for d in dicts]
            owners = [getattr(fn, "__self__", None) for fn in originals]
            handled: set[int] = set()

            def wrap(fn):
                def call(**arguments):
                    self._prefetch_iteration(completions, handled, owners)
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
                for proxy in self._prefetchers.values():
                    proxy.clear()

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


__all__ = ["SUPPORTED_TRL", "PrefetchEditor", "batched_tool_trainer_class",
           "check_trl_version"]

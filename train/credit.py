"""Turn-level credit for multi-turn GRPO: per-turn advantages over the group, beside the episode advantage.

GRPO's episode advantage gives every token of a rollout the same weight: the group-normalised final
reward. In a multi-turn edit episode that blames a good first edit for a bad second one. With turn-level
credit (the outcome + turn advantage of MT-GRPO, Zeng et al. 2025, "Reinforcing multi-turn reasoning in
LLM agents via turn-level credit assignment"), the tokens of turn ``t`` of rollout ``i`` get

    A[i, t] = A_episode[i] + turn_weight * (r[i, t] - mean_j r[j, t]) / (std_j r[j, t] + eps)

where ``j`` runs over the members of ``i``'s group that have a turn ``t`` (a group shares the task and the
editor seeds) and ``r[i, t]`` is the reward of turn ``t`` alone:

- an edit turn: the change of the environment's score it caused, ``s_t - s_{t-1}`` (the score of the state
  after the edit minus the score before; every member starts from the same source, so turn 0 compares the
  first edits' scores);
- the closing turn (``<STOP>``, a malformed answer, an answer past the budget): the episode's final reward
  minus the score of the last state (a success bonus or a format penalty lands on the turn that earned it).

Per-turn scores come from the environment, which must score every step: build it with
``reward_mode="every_step"`` (``make_shapes_env(..., reward_mode="every_step")``); a terminal-only env raises.
A member alone at a turn index (the others stopped earlier) gets a turn advantage of 0 there.

Several processes (``torchrun`` / ``accelerate launch``): TRL spreads a group's rollouts over the processes; the
turn rewards of every process are gathered (:func:`gather_rollouts`) and normalised over each WHOLE group, then
each process keeps its own slice, exactly as TRL does with the episode rewards.

Use :func:`turn_credit_trainer_class` in place of ``trl.GRPOTrainer``; it builds on
:class:`mira_env.train.batching.BatchedToolGRPOTrainer` (one batched editor call per tool iteration) and
fills its ``turn_advantages`` hook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from mira_env.errors import ConfigError, describe
from mira_env.validate import check_float, check_int

ADVANTAGES = ("episode", "turn")


@dataclass
class TurnCreditConfig:
    """How turn advantages are added to the episode advantage."""

    turn_weight: float = field(default=1.0, metadata={
        "help": "Weight of the group-normalised turn reward added to the episode advantage (0 = episode only)."})
    eps: float = field(default=1e-4, metadata={"help": "Added to the within-group std of a turn's rewards."})

    def __post_init__(self) -> None:
        for name in ("turn_weight", "eps"):
            check_float(f"TurnCreditConfig.{name}", getattr(self, name), minimum=0)
        if self.eps <= 0:
            raise ConfigError(f"TurnCreditConfig.eps={self.eps} must be > 0 (it keeps a constant turn finite)")


def turn_of_tokens(tool_mask: Sequence[int]) -> list[int]:
    """The answer-turn index of every completion token: 0 until the first tool result, then +1 after each
    tool result (a run of ``tool_mask == 0`` tokens); tool-result tokens get -1."""
    turns, turn, in_tool = [], 0, False
    for value in tool_mask:
        if int(value) == 0:
            in_tool = True
            turns.append(-1)
            continue
        if in_tool:
            turn += 1
            in_tool = False
        turns.append(turn)
    return turns


def turn_rewards(step_scores: Sequence[float | None], final_reward: float | None, num_turns: int) -> list[float]:
    """``num_turns`` per-turn rewards of one rollout (see the module docstring).

    Args:
        step_scores: the environment's score after each executed edit (``EditingToolEnv.steps[k]["reward_total"]``).
        final_reward: the episode's reward (None: unscored; every turn then gets 0).
        num_turns: answer turns of the completion (edit turns first, then the closing turn, if any).
    """
    if final_reward is None or not math.isfinite(float(final_reward)):
        return [0.0] * num_turns
    scores = []
    for k, score in enumerate(step_scores):
        if score is None or not math.isfinite(float(score)):
            raise ConfigError(f"turn-level credit needs the score of every step; step {k} has {describe(score)}: "
                              "build the environment with reward_mode='every_step'")
        scores.append(float(score))
    rewards = []
    previous = 0.0
    for t in range(num_turns):
        if t < len(scores):
            rewards.append(scores[t] - previous)
            previous = scores[t]
        else:  # the closing turn(s): what the episode's end added to the last state's score
            rewards.append(float(final_reward) - previous if t == len(scores) else 0.0)
    return rewards


def group_turn_advantages(rewards: Sequence[Sequence[float]], group_size: int, eps: float = 1e-4) -> list[list[float]]:
    """Group-normalised turn rewards: rollouts ``[g * group_size, (g + 1) * group_size)`` form group ``g``; turn
    ``t`` is normalised over the members that have it (a lone member gets 0)."""
    check_int("group_size", group_size)
    if len(rewards) % group_size:
        raise ConfigError(f"{len(rewards)} rollouts do not split into groups of {group_size}")
    out = [[0.0] * len(r) for r in rewards]
    for start in range(0, len(rewards), group_size):
        members = range(start, start + group_size)
        for t in range(max((len(rewards[i]) for i in members), default=0)):
            having = [i for i in members if t < len(rewards[i])]
            if len(having) < 2:
                continue
            values = [rewards[i][t] for i in having]
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            for i, v in zip(having, values):
                out[i][t] = (v - mean) / (std + eps)
    return out


def token_advantages(episode: Any, tool_mask: Any, turn_advantages: Sequence[Sequence[float]], weight: float) -> Any:
    """(B, T) advantages: ``episode[b] + weight * turn_advantages[b][turn of token]``; tool-result tokens and
    tokens past a rollout's last known turn keep the episode advantage (the loss masks tool tokens anyway)."""
    import torch

    rows = []
    for b in range(tool_mask.shape[0]):
        turns = turn_of_tokens(tool_mask[b].tolist())
        adv = turn_advantages[b]
        extra = [adv[t] if 0 <= t < len(adv) else 0.0 for t in turns]
        rows.append(torch.tensor(extra, dtype=torch.float32))
    extra = torch.stack(rows).to(episode.device, episode.dtype) if rows else torch.zeros_like(tool_mask, dtype=torch.float32)
    return episode.reshape(-1, 1) + float(weight) * extra


def rollout_turn_rewards(tool_env: Any, tool_mask_row: Sequence[int]) -> list[float]:
    """The per-turn rewards of one GRPO rollout from its :class:`~mira_env.train.tools.EditingToolEnv`."""
    turns = [t for t in turn_of_tokens(tool_mask_row) if t >= 0]
    num_turns = (max(turns) + 1) if turns else 0
    scores = [step.get("reward_total") for step in tool_env.steps if step.get("valid", True)]
    return turn_rewards(scores, tool_env.total, num_turns)


def gather_rollouts(accelerator: Any, local: list) -> tuple[list, int]:
    """Every process's per-rollout values, in process order, and where this process's slice starts.

    TRL spreads a group's generations over processes (its sampler repeats each prompt ``num_generations``
    times across the global batch, process ``p`` holding rows ``[p * B, (p + 1) * B)``) and gathers its rewards
    before normalising them per group; turn rewards must be gathered the same way, or a group would be
    normalised over the part of it one process holds. One process: ``(local, 0)``.
    """
    processes = int(getattr(accelerator, "num_processes", 1) or 1)
    if processes == 1:
        return list(local), 0
    from accelerate.utils import gather_object

    gathered = gather_object([list(local)])  # one entry per process, in rank order
    sizes = {len(part) for part in gathered}
    if len(sizes) != 1:
        raise ConfigError(f"processes hold different numbers of rollouts {[len(p) for p in gathered]}; TRL gives "
                          "every process the same per-device batch")
    rank = int(accelerator.process_index)
    return [row for part in gathered for row in part], rank * len(local)


def turn_credit_trainer_class(config: TurnCreditConfig | None = None):
    """A :class:`~mira_env.train.batching.BatchedToolGRPOTrainer` subclass whose ``turn_advantages`` hook returns
    the turn-level advantages of the module docstring (TRL's episode advantages plus the turn term)."""
    from mira_env.train.batching import batched_tool_trainer_class

    credit = config or TurnCreditConfig()
    base = batched_tool_trainer_class()

    class TurnCreditGRPOTrainer(base):
        turn_credit = credit

        def turn_advantages(self, batch: dict, inputs: list[dict]) -> Any:
            environments = getattr(self, "environments", None)
            tool_mask = batch.get("tool_mask")
            if not environments or tool_mask is None:
                raise ConfigError("turn-level credit needs environment_factory rollouts (tool_mask and environments)")
            local = [rollout_turn_rewards(env, tool_mask[b].tolist()) for b, env in enumerate(environments)]
            rewards, lo = gather_rollouts(self.accelerator, local)
            group = int(self.num_generations if self.model.training else self.num_generations_eval)
            per_turn = group_turn_advantages(rewards, group, self.turn_credit.eps)[lo:lo + len(local)]
            self.last_turn_credit = {"turn_rewards": rewards, "process_slice": [lo, lo + len(local)],
                                     "turn_advantages": per_turn}
            return token_advantages(batch["advantages"], tool_mask, per_turn, self.turn_credit.turn_weight)

    return TurnCreditGRPOTrainer


__all__ = ["ADVANTAGES", "TurnCreditConfig", "gather_rollouts", "group_turn_advantages", "rollout_turn_rewards", "token_advantages",
           "turn_credit_trainer_class", "turn_of_tokens", "turn_rewards"]

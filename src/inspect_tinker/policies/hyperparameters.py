"""How the next round's hyperparameters follow from the scores so far (`policy` in the config).

Four policies, each a rule on the scores of the evaluations up to this one:

- `lr_decay` (the original demo's): multiply the learning rate by `lr_decay` after every
  round below the bar.
- `plateau`: decay the learning rate only when the score did not beat the best earlier
  evaluation by at least `min_delta`; while it improves, keep the learning rate.
- `more_steps`: while the score is still rising (up by at least `min_delta` since the
  previous evaluation), multiply the steps per round by `steps_growth` (capped at
  `max_steps_per_round`); once it stops rising, decay the learning rate.
- `grow_rank`: when the adapter has saturated (no gain of `min_delta` over the best earlier
  evaluation), multiply the LoRA rank by `rank_growth` (capped at `max_lora_rank`); at the
  cap, decay the learning rate; while it improves, keep everything. How the adapter grows is
  described in `LocalBackend.grow_lora_rank`.

The baseline evaluation (round 0) counts as an earlier evaluation. With no earlier
evaluation there is nothing to compare with, and the score counts as improving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

PolicyName = Literal["lr_decay", "plateau", "more_steps", "grow_rank"]


@dataclass(frozen=True)
class Hyperparameters:
    """What a round trains with."""

    learning_rate: float
    steps_per_round: int
    lora_rank: int


@dataclass(frozen=True)
class PolicyRules:
    """The policy and its settings, as the config's keys of the same names give them (the config
    states their defaults; loop/settings.py builds these from it)."""

    policy: PolicyName
    lr_decay: float
    min_delta: float
    steps_growth: float
    max_steps_per_round: int | None
    rank_growth: int
    max_lora_rank: int
    max_rounds: int
    on_regression: Literal["continue", "rollback"]


@dataclass(frozen=True)
class Adjustment:
    """The next round's hyperparameters, the rule that chose them and why, in words."""

    rule: str  # "<policy>/<what it did>", e.g. "plateau/decay"
    next: Hyperparameters
    reason: str


def adjust(current: Hyperparameters, score: float, earlier: list[float], rules: PolicyRules) -> Adjustment:
    """The hyperparameters of the next round, after a round below the bar.

    `current` is what the round that scored `score` trained with; `earlier` are the scores
    of the evaluations before it, oldest first (the baseline included when there was one).
    """
    if rules.policy == "lr_decay":
        return _decay(current, rules, "lr_decay/decay", "")
    gain_over_best = score - max(earlier) if earlier else math.inf
    improving = gain_over_best >= rules.min_delta
    versus_best = _gain(gain_over_best, rules.min_delta, "the best earlier score")

    if rules.policy == "plateau":
        if improving:
            return Adjustment("plateau/keep", current, f"{versus_best}: learning rate kept at {current.learning_rate:.2e}")
        return _decay(current, rules, "plateau/decay", f"{versus_best}: ")

    if rules.policy == "more_steps":
        gain_over_last = score - earlier[-1] if earlier else math.inf
        versus_last = _gain(gain_over_last, rules.min_delta, "the previous score")
        if gain_over_last < rules.min_delta:
            return _decay(current, rules, "more_steps/decay", f"{versus_last}: ")
        cap = rules.max_steps_per_round or math.inf
        steps = min(math.ceil(current.steps_per_round * rules.steps_growth), cap)
        if steps <= current.steps_per_round:
            return Adjustment(
                "more_steps/at_cap", current,
                f"{versus_last}, but steps per round are at max_steps_per_round ({rules.max_steps_per_round}): kept",
            )
        return Adjustment(
            "more_steps/raise", replace(current, steps_per_round=int(steps)),
            f"{versus_last}: steps per round {current.steps_per_round} → {int(steps)} (×{rules.steps_growth:g})",
        )

    if rules.policy == "grow_rank":
        if improving:
            return Adjustment(
                "grow_rank/keep", current,
                f"{versus_best}: LoRA rank {current.lora_rank} and learning rate {current.learning_rate:.2e} kept",
            )
        rank = min(current.lora_rank * rules.rank_growth, rules.max_lora_rank)
        if rank <= current.lora_rank:
            return _decay(
                current, rules, "grow_rank/decay",
                f"{versus_best} and the LoRA rank is at max_lora_rank ({rules.max_lora_rank}): ",
            )
        return Adjustment(
            "grow_rank/grow", replace(current, lora_rank=rank),
            f"{versus_best}, the adapter has saturated: LoRA rank {current.lora_rank} → {rank} (×{rules.rank_growth})",
        )
    raise ValueError(f"unknown policy {rules.policy!r}")


def _gain(gain: float, min_delta: float, versus: str) -> str:
    if math.isinf(gain):
        return "no earlier score to compare with"
    relation = "≥" if gain >= min_delta else "<"
    return f"{gain:+.3f} over {versus} ({relation} min_delta {min_delta:g})"


def _decay(current: Hyperparameters, rules: PolicyRules, rule: str, why: str) -> Adjustment:
    next_lr = current.learning_rate * rules.lr_decay
    return Adjustment(
        rule, replace(current, learning_rate=next_lr),
        f"{why}learning rate {current.learning_rate:.2e} → {next_lr:.2e} (×{rules.lr_decay:g})",
    )

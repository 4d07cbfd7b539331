"""The decision after an evaluation: stop when the gate passes or after the last round, otherwise go
on with the hyperparameters the configured policy chooses (policies/hyperparameters.py), from the
best trained round when the round fell below it (`on_regression: rollback`), with no
learning-rate decay into a round that brings new records (`account_for_new_records`), and with
the steps that carry the extra copies of the records still unlearned (`account_for_unlearned`).

The baseline (round 0, the base model) is decided like every round: it stops the run when the
base model meets the bar already, and otherwise starts round 1 with the run's first hyperparameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from inspect_tinker.policies.gate import GateVerdict
from inspect_tinker.policies.hyperparameters import Hyperparameters, PolicyRules, adjust


class ScoredRound(Protocol):
    """An evaluated round as the run's history holds it (tracking's RoundRecord is one)."""

    round: int  # 0 is the untrained baseline
    score: float
    bar_met: bool


def best_round(history: Sequence[ScoredRound], trained_only: bool = False) -> ScoredRound | None:
    """The round that met the bar, else the one with the highest score; the earlier one wins a tie.

    Round 0 is the base model itself, without an adapter: it is the best round when no trained
    round beats it. `trained_only`: the best of the trained rounds (what a rollback can load).
    A round can score higher than the round that met the bar and still miss a task's own bar.
    """
    candidates = [r for r in history if r.round > 0 or not trained_only]
    return max(candidates, key=lambda r: (r.bar_met, r.score, -r.round)) if candidates else None


@dataclass(frozen=True)
class RoundDecision:
    stop: bool
    bar_met: bool
    next_learning_rate: float
    next_steps_per_round: int
    next_lora_rank: int
    rule: str  # which rule fired: "bar_met", "last_round", "baseline/train", or the policy's, e.g. "plateau/decay"
    reason: str
    new_records: int = 0  # pool records data selection added for the next round
    unlearned: int = 0  # focus records whose own loss is above the bound: drawn focus_weight times next round
    focus_steps: int = 0  # of next_steps_per_round, the steps added to carry their extra copies
    rollback_to: int | None = None  # the trained round whose checkpoint the next round starts from, if not this one


@dataclass(frozen=True)
class _Evaluated:
    round: int
    score: float
    bar_met: bool


def decide(
    verdict: GateVerdict, round_no: int, current: Hyperparameters, history: Sequence[ScoredRound], *,
    rules: PolicyRules,
) -> RoundDecision:
    """Decide after the evaluation of round `round_no` (0: the baseline), which got `verdict`;
    `current` is what the round trained with (the baseline: what round 1 will), `history` the
    rounds evaluated before it, oldest first.

    Bar met: stop. Below the bar on the last round: stop, bar not met. Below the bar after the
    baseline: train round 1 with `current`. Otherwise continue with the hyperparameters `rules`
    choose from the round's score and the earlier scores, from the best trained round's
    checkpoint when `rules.on_regression` is `rollback` and this round scored below it.
    """

    def stop(bar_met: bool, rule: str, reason: str) -> RoundDecision:
        return RoundDecision(True, bar_met, current.learning_rate, current.steps_per_round, current.lora_rank, rule, reason)

    if verdict.passed and round_no == 0:
        return stop(True, "bar_met", f"{verdict.reason}: the base model meets the bar untrained, nothing to train")
    if verdict.passed:
        return stop(True, "bar_met", f"{verdict.reason}: bar met, stopping")
    if round_no == 0:
        return RoundDecision(False, False, current.learning_rate, current.steps_per_round, current.lora_rank,
                             "baseline/train", f"{verdict.reason}: training round 1")
    if round_no >= rules.max_rounds:
        return stop(False, "last_round", f"{verdict.reason} after the last round ({rules.max_rounds})")
    step = adjust(current, verdict.score, [r.score for r in history], rules)
    best_trained = best_round([*history, _Evaluated(round_no, verdict.score, verdict.passed)], trained_only=True)
    regressed = rules.on_regression == "rollback" and verdict.score < best_trained.score
    return RoundDecision(
        False, False, step.next.learning_rate, step.next.steps_per_round, step.next.lora_rank, step.rule,
        f"{verdict.reason}; {step.rule}: {step.reason}", rollback_to=best_trained.round if regressed else None,
    )


def account_for_new_records(decision: RoundDecision, current: Hyperparameters, new_records: int) -> RoundDecision:
    """`decision` once data selection has added `new_records` pool records for the next round.

    New records hold facts the adapter has never seen, and one round is all they may get: a
    decayed learning rate leaves them under-trained (selection's facts, added after round 1 and
    trained at a rate decayed twice, scored no better than no selection at all). So a round that
    brings new records trains at the rate of the round before it: a decay the policy chose is
    undone and the rule gets "+new_records/keep_rate". Steps and LoRA rank stay as the policy chose.
    """
    if decision.stop or new_records == 0 or decision.next_learning_rate >= current.learning_rate:
        return replace(decision, new_records=new_records)
    return replace(
        decision, next_learning_rate=current.learning_rate, rule=f"{decision.rule}+new_records/keep_rate",
        new_records=new_records,
        reason=f"{decision.reason}; {new_records} new records for the next round: no decay into a round that "
        f"brings new data, learning rate kept at {current.learning_rate:.2e}",
    )


def account_for_unlearned(decision: RoundDecision, unlearned: int, extra_steps: int,
                          max_steps_per_round: int | None) -> RoundDecision:
    """`decision` once the next round's focus is known: `unlearned` records still above the loss
    bound, whose extra copies take `extra_steps` steps (policies/focus.py). The round trains the
    policy's steps plus those, so that the copies add to the round instead of crowding the other
    records out of it (capped at `max_steps_per_round`); the rule gets "+unlearned/more_steps"."""
    if decision.stop or extra_steps == 0:
        return replace(decision, unlearned=unlearned)
    steps = decision.next_steps_per_round + extra_steps
    if max_steps_per_round is not None:
        steps = max(min(steps, max_steps_per_round), decision.next_steps_per_round)
    added = steps - decision.next_steps_per_round
    return replace(
        decision, next_steps_per_round=steps, unlearned=unlearned, focus_steps=added,
        rule=f"{decision.rule}+unlearned/more_steps",
        reason=f"{decision.reason}; {unlearned} records still above the loss bound, drawn more often: "
        f"steps {decision.next_steps_per_round} → {steps} to carry their copies",
    )

"""The decision after a round: stop when the gate passes or after the last round, otherwise go
on with the hyperparameters the configured policy chooses (policies/hyperparameters.py), and
no learning-rate decay into a round that brings new records (`account_for_new_records`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from inspect_tinker.policies.gate import GateVerdict
from inspect_tinker.policies.hyperparameters import Hyperparameters, PolicyRules, adjust


@dataclass(frozen=True)
class RoundDecision:
    stop: bool
    bar_met: bool
    next_learning_rate: float
    next_steps_per_round: int
    next_lora_rank: int
    rule: str  # which rule fired: "bar_met", "last_round", or the policy's rule, e.g. "plateau/decay"
    reason: str
    new_records: int = 0  # pool records data selection added for the next round


def decide(
    verdict: GateVerdict, round_no: int, current: Hyperparameters, earlier: list[float], *,
    max_rounds: int, rules: PolicyRules,
) -> RoundDecision:
    """Decide after round `round_no` (1-based), whose evaluation got `verdict`, trained with `current`.

    Bar met: stop. Below the bar on the last round: stop, bar not met. Otherwise continue
    with the hyperparameters `rules` choose from the round's score and the `earlier` scores
    (oldest first, the baseline included).
    """

    def stop(bar_met: bool, rule: str, reason: str) -> RoundDecision:
        return RoundDecision(True, bar_met, current.learning_rate, current.steps_per_round, current.lora_rank, rule, reason)

    if verdict.passed:
        return stop(True, "bar_met", f"{verdict.reason}: bar met, stopping")
    if round_no >= max_rounds:
        return stop(False, "last_round", f"{verdict.reason} after the last round ({max_rounds})")
    step = adjust(current, verdict.score, earlier, rules)
    return RoundDecision(
        False, False, step.next.learning_rate, step.next.steps_per_round, step.next.lora_rank, step.rule,
        f"{verdict.reason}; {step.rule}: {step.reason}",
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

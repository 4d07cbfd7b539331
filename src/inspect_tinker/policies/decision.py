"""The decision after a round: stop when the gate passes or after the last round, otherwise go
on with the hyperparameters the configured policy chooses (policies/hyperparameters.py)."""

from __future__ import annotations

from dataclasses import dataclass

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

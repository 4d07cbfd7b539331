"""The original demo's rule on top of the gate: stop at the bar, otherwise decay the learning rate and go on."""

from __future__ import annotations

from dataclasses import dataclass

from evaltune.policies.gate import GateVerdict


@dataclass(frozen=True)
class RoundDecision:
    stop: bool
    bar_met: bool
    next_learning_rate: float
    reason: str


def decide(verdict: GateVerdict, round_no: int, learning_rate: float, *, lr_decay: float, max_rounds: int) -> RoundDecision:
    """Decide after round `round_no` (1-based), whose evaluation got `verdict` at `learning_rate`.

    Bar met: stop. Below the bar on the last round: stop, bar not met. Otherwise continue
    with the learning rate multiplied by `lr_decay`.
    """
    if verdict.passed:
        return RoundDecision(True, True, learning_rate, f"{verdict.reason}: bar met, stopping")
    if round_no >= max_rounds:
        return RoundDecision(True, False, learning_rate, f"{verdict.reason} after the last round ({max_rounds})")
    next_lr = learning_rate * lr_decay
    return RoundDecision(
        False, False, next_lr,
        f"{verdict.reason}: learning rate {learning_rate:.2e} → {next_lr:.2e} (×{lr_decay})",
    )

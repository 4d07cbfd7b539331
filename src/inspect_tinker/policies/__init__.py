"""Policies: from an evaluation result and the history to the next round's decision, its
hyperparameters, and the training data it adds; and the learning rate of every step
(learning_rate.py: `learning_rate: auto`; schedule.py: warmup and the shape within a round)."""

from inspect_tinker.policies.alerts import alerts
from inspect_tinker.policies.decision import (
    RoundDecision, account_for_new_records, account_for_unlearned, best_round, decide,
)
from inspect_tinker.policies.gate import GateVerdict, check_gate
from inspect_tinker.policies.hyperparameters import Adjustment, Hyperparameters, PolicyRules, adjust

__all__ = [
    "Adjustment", "GateVerdict", "Hyperparameters", "PolicyRules", "RoundDecision", "account_for_new_records", "account_for_unlearned",
    "adjust",
    "alerts", "best_round", "check_gate", "decide",
]

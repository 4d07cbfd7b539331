"""Policies: from an evaluation result and the history to the next round's decision, its
hyperparameters, and the training data it adds."""

from evaltune.policies.alerts import alerts
from evaltune.policies.decision import RoundDecision, decide
from evaltune.policies.gate import GateVerdict, check_gate
from evaltune.policies.hyperparameters import Adjustment, Hyperparameters, PolicyRules, adjust

__all__ = [
    "Adjustment", "GateVerdict", "Hyperparameters", "PolicyRules", "RoundDecision", "adjust", "alerts", "check_gate",
    "decide",
]

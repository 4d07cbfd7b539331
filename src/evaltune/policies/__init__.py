"""Policies: from an evaluation result and the history to the next round's decision."""

from evaltune.policies.alerts import alerts
from evaltune.policies.decision import RoundDecision, decide
from evaltune.policies.gate import GateVerdict, check_gate

__all__ = ["GateVerdict", "RoundDecision", "alerts", "check_gate", "decide"]

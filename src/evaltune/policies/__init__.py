"""Policies: from an evaluation result and the history to the next round's decision."""

from evaltune.policies.decision import RoundDecision, decide

__all__ = ["RoundDecision", "decide"]

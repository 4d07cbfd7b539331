"""Group-relative advantages of an RL step, as tinker-cookbook computes them.

A group is the completions sampled for one prompt. A completion's advantage is its reward minus
the group's mean reward: better than its siblings is pushed up, worse pushed down, and no
baseline model is needed. A group whose rewards are all equal teaches nothing (every advantage
is 0) and is skipped (tinker-cookbook's `remove_constant_reward_groups`).
"""

from __future__ import annotations


def group_advantages(rewards: list[float]) -> list[float] | None:
    """Each reward minus the group's mean; None when all rewards are equal (the group is skipped)."""
    if not rewards or all(r == rewards[0] for r in rewards):
        return None
    mean = sum(rewards) / len(rewards)
    return [r - mean for r in rewards]

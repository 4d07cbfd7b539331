"""The learning rate of every optimizer step, as pure functions of the step.

The run's schedule (warmup, then constant, linear or cosine decay) spans all rounds the
run may take (`max_rounds * steps_per_round` steps); the loop multiplies it by the round's
learning rate, which the policy decays after a round below the bar. Because the rate is a
function of the global step alone, a resumed run continues the exact same curve.
"""

from __future__ import annotations

import math
from typing import Literal


Schedule = Literal["constant", "linear", "cosine"]


def schedule_multiplier(step: int, *, schedule: Schedule, warmup_steps: int, total_steps: int) -> float:
    """Factor in (0, 1] applied to the learning rate at global step `step` (0-based).

    Warmup rises linearly to 1 over `warmup_steps` steps (the first step already trains:
    1 / warmup_steps); after it `constant` stays at 1, `linear` falls linearly and `cosine`
    along a half cosine, towards 0 at `total_steps` (the last step still trains a little).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))

"""The learning rate of every optimizer step, as pure functions of the step.

The schedule is per round, because a round's length is only known when it starts (policy
`more_steps` lengthens the rounds that follow a rise, and a forced `steps_per_round` on
resume changes the round in progress): warmup happens once, over the run's first
`warmup_steps` steps; after it, within each round, `constant` stays at 1 and `linear` or
`cosine` decay over that round's own remaining steps towards 0 at the round's end (the
last step still trains a little). The loop multiplies this factor by the round's learning
rate, which the policy decays after a round below the bar. Because the factor is a
function of (global step, step in the round, steps of the round) alone, a resumed run
continues the exact same curve.
"""

from __future__ import annotations

import math
from typing import Literal


Schedule = Literal["constant", "linear", "cosine"]


def schedule_multiplier(
    global_step: int, *, step_in_round: int, round_steps: int, schedule: Schedule, warmup_steps: int
) -> float:
    """Factor in (0, 1] applied to the round's learning rate at one step (all counts 0-based).

    `global_step` counts the run's steps, `step_in_round` this round's, of `round_steps`.
    Warmup rises linearly to 1 over the run's first `warmup_steps` steps (the first step
    already trains: 1 / warmup_steps). After it `linear` and `cosine` fall over the steps
    of the round left after warmup, from 1 at the first of them towards 0 after the last.
    """
    if global_step < warmup_steps:
        return (global_step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    round_start = global_step - step_in_round
    warm_in_round = min(max(warmup_steps - round_start, 0), round_steps)  # warmup steps that fell in this round
    progress = min((step_in_round - warm_in_round) / max(round_steps - warm_in_round, 1), 1.0)
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))

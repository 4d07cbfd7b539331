"""The learning rate of every optimizer step, as pure functions of the step.

The run's schedule (warmup, then constant, linear or cosine decay) spans all rounds the
run may take (`max_rounds * steps_per_round` steps); the loop multiplies it by the round's
learning rate, which the policy decays after a round below the bar. Because the rate is a
function of the global step alone, a resumed run continues the exact same curve.
"""

from __future__ import annotations

import math
from typing import Literal

from evaltune.errors import UsageError

Schedule = Literal["constant", "linear", "cosine"]

# tinker-cookbook's recommended LoRA rate: 5e-5 * 10 * (2000 / hidden_size) ** p, with p
# fitted per model family (LoRA's best rate is about 10x full fine-tuning's).
_LORA_LR_EXPONENT = {"llama": 0.781, "qwen2": 0.0775, "qwen3": 0.0775}


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


def recommended_lora_learning_rate(model_type: str | None, hidden_size: int | None) -> float:
    """The recommended LoRA learning rate for a model family and width (`learning_rate: auto`).

    Raises UsageError for a family without a fitted exponent, naming the fix.
    """
    exponent = _LORA_LR_EXPONENT.get(model_type or "")
    if exponent is None or not hidden_size:
        raise UsageError(
            f"learning_rate: 'auto' knows the Llama and Qwen families, not {model_type!r}; "
            "set learning_rate to a number (1e-4 to 1e-3 is the usual range for LoRA)."
        )
    return 5e-5 * 10 * (2000 / hidden_size) ** exponent

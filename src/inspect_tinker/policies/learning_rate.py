"""`learning_rate: auto`: the recommended LoRA learning rate for a model family.

One formula for every backend. The backend reports the model's architecture (`model_type`
of its Hugging Face config) and hidden size in its `BackendInfo`; the loop turns `auto`
into a number with `resolve_learning_rate` before the first round.

The formula is Thinking Machines' (tinker-cookbook 0.6.1, `hyperparam_utils.get_lr`):
5e-5 × 10 × (2000 / hidden_size) ** p, with a family exponent p fitted for Llama and Qwen.
The factor 10 is LoRA's best learning rate over full fine-tuning's ("LoRA Without Regret").
The cookbook itself is not a dependency: it pulls in its whole training stack and reads
hidden sizes from the Hugging Face hub, which an offline run cannot reach.
"""

from __future__ import annotations

from inspect_tinker.provider.backend import BackendInfo
from inspect_tinker.errors import UsageError

_FULL_FINE_TUNING_LR = 5e-5
_LORA_OVER_FULL_FINE_TUNING = 10.0
_FAMILY_EXPONENT = {"llama": 0.781, "qwen": 0.0775}


def model_family(*names: str | None) -> str | None:
    """The first family (`llama`, `qwen`) named in any of `names` (architecture or model name)."""
    for name in names:
        for family in _FAMILY_EXPONENT:
            if name and family in name.lower():
                return family
    return None


def recommended_lora_learning_rate(family: str, hidden_size: int) -> float:
    """The recommended LoRA learning rate for a model of `family` with `hidden_size`."""
    base = _FULL_FINE_TUNING_LR * _LORA_OVER_FULL_FINE_TUNING
    return base * (2000 / hidden_size) ** _FAMILY_EXPONENT[family]


def resolve_learning_rate(configured: float | str, info: BackendInfo) -> float:
    """`configured` itself, or for `auto` the recommended rate of the backend's model.

    Raises UsageError when the backend does not know its model's family or hidden size.
    """
    if configured != "auto":
        return float(configured)
    family = model_family(info.model_type, info.base_model)
    if family is None or info.hidden_size is None:
        known = " and ".join(f.capitalize() for f in _FAMILY_EXPONENT)
        raise UsageError(
            f"learning_rate: auto knows the {known} model families only, and needs the model's hidden size; "
            f"{info.base_model!r} (architecture {info.model_type or 'unknown'}, hidden size "
            f"{info.hidden_size or 'unknown'}) is not covered. Set learning_rate to a number, for example 0.0002."
        )
    return recommended_lora_learning_rate(family, info.hidden_size)

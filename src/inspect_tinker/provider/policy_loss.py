"""The policy-gradient losses of an RL step, per sampled token, exactly as Tinker defines them.

With `ratio = exp(logprob - sampling_logprob)`, the current policy's probability of the
sampled token over the sampler's, and `A` the token's advantage:
- `importance_sampling`: `-(ratio * A)`;
- `ppo`: `-min(ratio * A, clip(ratio, clip_low, clip_high) * A)`.
Tinker's documentation (tinker-docs.thinkingmachines.ai/tinker/losses) and the local SkyRL
server (skyrl/tinker/loss_fns.py) write them so; the step's loss is their sum over tokens.

One definition serves both backends: the local backend differentiates it on torch tensors,
and the tinker backend evaluates it on numpy arrays of the logprobs the service returns
(that path has no torch), so the loss both report is the same function of the same numbers.
"""

from __future__ import annotations

import numpy as np

from inspect_tinker.provider.backend import PolicyLoss

LOSS_NAMES = ("importance_sampling", "ppo")


def _array_module(array):
    """numpy for numpy arrays, torch for tensors: both spell exp, clip and minimum alike."""
    if isinstance(array, np.ndarray):
        return np
    import torch  # only tensors reach here, so torch is installed

    return torch


def per_token_loss(logprobs, sampling_logprobs, advantages, loss: PolicyLoss):
    """The loss of each sampled token under `loss`, from the current policy's `logprobs` of the
    tokens, the sampler's `sampling_logprobs` of them and their `advantages` (arrays of one
    shape, all numpy or all torch; torch keeps the graph, so its gradient is the loss's)."""
    xp = _array_module(logprobs)
    ratio = xp.exp(logprobs - sampling_logprobs)
    if loss.name == "importance_sampling":
        return -(ratio * advantages)
    if loss.name == "ppo":
        clipped = xp.clip(ratio, loss.clip_low, loss.clip_high)
        return -xp.minimum(ratio * advantages, clipped * advantages)
    raise ValueError(f"unknown policy loss {loss.name!r}; the losses are {', '.join(LOSS_NAMES)}")


def clipped_count(logprobs, sampling_logprobs, advantages, loss: PolicyLoss) -> int:
    """How many tokens PPO's clip decides: where the clipped term is the smaller objective, the
    token pushes the policy no further (its gradient is 0). Always 0 for importance_sampling."""
    if loss.name != "ppo":
        return 0
    xp = _array_module(logprobs)
    ratio = xp.exp(logprobs - sampling_logprobs)
    return int((xp.clip(ratio, loss.clip_low, loss.clip_high) * advantages < ratio * advantages).sum())

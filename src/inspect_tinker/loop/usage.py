"""What a round used: the tokens the Tinker service bills, counted the same way on either
backend, and what they cost at the configured prices (`price_per_million_tokens`).

Training tokens are counted by the loop as it builds each step's batch (every token of every
example, once per step it is in). Prompt and sampled tokens come from Inspect's own usage
records of the round's evaluation logs, which the `tinker` provider fills in for every
generation: those of the `tinker/...` models, the model under test and a base-model judge
alike, since both sample on the service.
"""

from __future__ import annotations

from inspect_ai.log import EvalLog

from inspect_tinker.config import TokenPrices
from inspect_tinker.provider.model_api import PROVIDER
from inspect_tinker.tracking import RoundUsage

PER = 1_000_000


def sampled_tokens(logs: list[EvalLog]) -> tuple[int, int]:
    """(prompt tokens, sampled tokens) of the generations by `tinker/...` models in `logs`."""
    prefilled = sampled = 0
    for log in logs:
        for model, usage in (log.stats.model_usage if log.stats else {}).items():
            if model.startswith(f"{PROVIDER}/"):
                prefilled += usage.input_tokens
                sampled += usage.output_tokens
    return prefilled, sampled


def round_usage(tokens_trained: int, logs: list[EvalLog], prices: TokenPrices | None,
                cost_before: float | None) -> RoundUsage:
    """The usage of a round that trained `tokens_trained` tokens and was evaluated in `logs`,
    priced at `prices` (None: not priced); `cost_before` is the run's cost until this round."""
    prefilled, sampled = sampled_tokens(logs)
    if prices is None:
        return RoundUsage(tokens_trained, prefilled, sampled)
    cost = (tokens_trained * prices.train + prefilled * prices.prefill + sampled * prices.sample) / PER
    return RoundUsage(tokens_trained, prefilled, sampled, cost=cost, total_cost=(cost_before or 0.0) + cost)

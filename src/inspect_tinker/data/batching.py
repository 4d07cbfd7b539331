"""Choose each step's examples, and share a step's batch out into micro-batches.

Data order is a pure function of (seed, step), so a resumed run sees exactly the batches
an uninterrupted one would, without storing sampler state. Plain Python: the Tinker backend
batches without torch; the local backend lays micro-batches out as tensors (data/tensors.py).
"""

from __future__ import annotations

import random
from functools import lru_cache

from inspect_tinker.data.render import TokenizedExample


def batch_for_step(n_examples: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Indices of the examples for global optimizer step `step` (0-based).

    Examples are drawn epoch by epoch, each epoch a fresh seeded shuffle, so every example
    is seen once before any is seen twice.
    """
    indices = []
    start = step * batch_size
    for position in range(start, start + batch_size):
        epoch, offset = divmod(position, n_examples)
        indices.append(_epoch_order(n_examples, seed, epoch)[offset])
    return indices


@lru_cache(maxsize=4)
def _epoch_order(n_examples: int, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(n_examples))
    random.Random(f"{seed}-{epoch}").shuffle(order)
    return tuple(order)


def epoch_of_step(n_examples: int, batch_size: int, step: int) -> float:
    """How many passes over the data have been made after `step` steps."""
    return step * batch_size / n_examples


def micro_batches(
    batch: list[TokenizedExample], micro_batch_size: int | None, rank: int = 0, world_size: int = 1
) -> list[list[TokenizedExample]]:
    """This process's share of a step's batch, cut into micro-batches of similar length.

    Examples are sorted by length first (length bucketing: padded micro-batches then hold
    little padding, and data-parallel ranks get similar amounts of work); rank `rank` takes
    every `world_size`-th of them. The gradient is a sum over examples, so order is free.
    """
    ordered = sorted(batch, key=lambda e: len(e.input_ids))[rank::world_size]
    size = micro_batch_size or len(ordered)
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]

"""Choose each step's examples and lay them out as tensors: padded rows or one packed row.

Data order is a pure function of (seed, step), so a resumed run sees exactly the batches
an uninterrupted one would, without storing sampler state.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where tensors are built: the data step's text phase and the provider load without torch
    import torch

from inspect_tinker.data.render import TokenizedExample

IGNORE_INDEX = -100  # label value that transformers' cross-entropy skips


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


def collate(examples: list[TokenizedExample], pad_token_id: int) -> dict[str, "torch.Tensor"]:
    """Right-pad examples into input_ids, attention_mask and labels (IGNORE_INDEX off the mask)."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids = torch.tensor(e.input_ids, dtype=torch.long)
        input_ids[row, :n] = ids
        attention[row, :n] = 1
        mask = torch.tensor(e.loss_mask, dtype=torch.bool)
        labels[row, :n] = torch.where(mask, ids, torch.full_like(ids, IGNORE_INDEX))
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def pack(examples: list[TokenizedExample], pad_token_id: int) -> dict[str, "torch.Tensor"]:
    """Pack examples into rows as long as the longest one: input_ids, position_ids and labels.

    Rows are filled first-fit, longest examples first, so short examples share a row and
    little padding is left (only at the end of a row). Positions restart at 0 for every
    example (and for a row's padding); transformers reads those restarts as sequence
    boundaries and masks attention so that no token attends across them. Rows no longer
    than the longest example keep attention's cost that of padded batches; one row for the
    whole micro-batch would square it. The first token of each example gets IGNORE_INDEX,
    so the last token of one example is never trained to predict the first of the next:
    the loss is exactly the sum of the examples' own losses.
    """
    import torch

    width = max(len(e.input_ids) for e in examples)
    rows: list[list[TokenizedExample]] = []
    for e in sorted(examples, key=lambda e: len(e.input_ids), reverse=True):
        row = next((r for r in rows if sum(len(x.input_ids) for x in r) + len(e.input_ids) <= width), None)
        if row is None:
            rows.append([e])
        else:
            row.append(e)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for e in row:
            n = len(e.input_ids)
            ids = torch.tensor(e.input_ids, dtype=torch.long)
            mask = torch.tensor(e.loss_mask, dtype=torch.bool)
            mask[0] = False
            input_ids[r, at : at + n] = ids
            position_ids[r, at : at + n] = torch.arange(n)
            labels[r, at : at + n] = torch.where(mask, ids, torch.full_like(ids, IGNORE_INDEX))
            at += n
        position_ids[r, at:] = torch.arange(width - at)
    return {"input_ids": input_ids, "position_ids": position_ids, "labels": labels}

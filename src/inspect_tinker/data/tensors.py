"""Lay a micro-batch of examples out as torch tensors: right-padded rows, or packed rows.

The local backend's input; the only part of the data step that needs torch (the
`inspect-tinker[local]` extra), so nothing else imports it.
"""

from __future__ import annotations

import torch

from inspect_tinker.data.render import TokenizedExample

IGNORE_INDEX = -100  # label value that transformers' cross-entropy skips


def collate(examples: list[TokenizedExample], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad examples into input_ids, attention_mask and labels (IGNORE_INDEX off the mask)."""
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


def pack(examples: list[TokenizedExample], pad_token_id: int) -> dict[str, torch.Tensor]:
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

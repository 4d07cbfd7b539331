"""Focus: the records the next round trains harder, until each one's own loss falls below a bound.

A record data selection added arrives with a round or two left, as one of many in the batches;
a training record whose question still fails was seen as often as the records already learned.
Both are trained too little to be recalled under paraphrase (issue 27, section 2). So after a
round below the bar, each such record (a focus candidate) has its own loss measured on the
weights the next round starts from; one whose mean loss per target token is still above
`focus_loss_bound` is unlearned, and the next round draws it `focus_weight` times instead of
once (oversampling: copies in the round's examples, so the data order stays a pure function of
the seed and the step, data/batching.py). A record whose loss has fallen below the bound is
drawn once again, like every other record.

The extra copies must not crowd the other records out of the round, so the round gets the steps
that carry them: `ceil(extra copies / batch_size)` more than the policy chose
(`decision.account_for_unlearned`). The more facts remain unlearned, the longer the round.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class FocusCandidate:
    """A record the next round may train harder, and why it is one."""

    where: str  # "pool.jsonl:12", "train.jsonl:3"
    conversation: Conversation
    why: str  # "added for failed facts/x" or "covers failed facts/x"


@dataclass(frozen=True)
class FocusRecord:
    """A candidate with its measured loss, and how many extra copies the next round draws of it."""

    where: str
    conversation: Conversation
    why: str
    loss: float
    copies: int  # extra copies beside the record itself: focus_weight - 1 when unlearned, else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FocusRecord":
        return cls(**data)


def weigh(candidates: list[FocusCandidate], losses: list[float], *, weight: int, loss_bound: float) -> list[FocusRecord]:
    """Each candidate with its loss (`losses`, in the same order) and its extra copies: `weight - 1`
    when its loss is above `loss_bound` (unlearned), else 0."""
    return [FocusRecord(c.where, c.conversation, c.why, round(loss, 4), weight - 1 if loss > loss_bound else 0)
            for c, loss in zip(candidates, losses, strict=True)]


def extra_steps(focus: list[FocusRecord], batch_size: int) -> int:
    """The steps that carry the extra copies of `focus` (`batch_size` examples a step), rounded up."""
    return math.ceil(sum(r.copies for r in focus) / batch_size)


def unlearned(focus: list[FocusRecord]) -> list[FocusRecord]:
    """The records of `focus` whose loss is still above the bound (those drawn more than once)."""
    return [r for r in focus if r.copies]

"""Failure-driven data selection: after a round below the bar, add training data aimed at
the questions the round got wrong.

Two moves, both plain data in and out:
- `select_candidates`: for each failed sample, rank the records of the candidate pool by
  relevance to its question (policies/retrieval.py) and take the best ones that pass the
  relevance floor (policies/relevance.py: the record plausibly answers the question, it is not
  a look-alike), the failures taking turns (in each turn every failure takes its best record
  not yet taken; those with fewer records so far first, then the closest matches) until
  `limit` records are chosen or no failure has a relevant record left: a round whose failures
  have nothing relevant left adds nothing. A candidate already added, or sharing nothing with
  the question (score 0 or below), is never chosen. Only the question is used as the query,
  never the expected answer: selection finds data about what was asked, it does not look the
  answer up.
- `select_repeats`: for each failed sample, the training record that covers its question
  best, to be repeated (upweighted) in the next rounds.

Every choice is a `DataAddition` that says which failed sample it targets, its retrieval score
and why it passed the floor; every record the floor refused on the way is a `Refusal` saying
why, and so is each failure's nearest miss (the refused record that passed the most of the
floor's checks), so that a relevant record the floor wrongly refused shows where it is read. The loop records both as events, and the additions in the run state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np

from inspect_tinker.policies.relevance import RelevanceFloor
from inspect_tinker.policies.retrieval import RetrievalIndex

Conversation = list[dict[str, str]]
UNCATEGORISED = "(no category)"


@dataclass(frozen=True)
class Failure:
    """A sample of a gate task that the round answered wrongly."""

    task: str
    sample_id: str
    question: str
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolRecord:
    """A record the selection may draw from, and where it comes from (`file:line`)."""

    where: str
    conversation: Conversation


@dataclass(frozen=True)
class DataAddition:
    """A record added to the training data, and why.

    action: "added" (a candidate-pool record, now trained on) or "repeated" (a training
    record upweighted: it appears `copies` more times in the training data).
    """

    round: int  # the round whose failures chose it
    action: Literal["added", "repeated"]
    where: str
    conversation: Conversation
    task: str
    sample_id: str
    question: str
    score: float
    retrieval: str
    copies: int = 1
    categories: list[str] = field(default_factory=list)
    relevance: str = ""  # why the relevance floor let it through (pool records only)

    @property
    def reason(self) -> str:
        verb = "added" if self.action == "added" else f"repeated ×{self.copies}"
        why = f": {self.relevance}" if self.relevance else ""
        return (
            f"{self.where} {verb} for failed {self.task}/{self.sample_id} "
            f"({self.question!r}), {self.retrieval} score {self.score:.2f}{why}"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict) -> "DataAddition":
        return cls(**{k: v for k, v in data.items() if k != "reason"})


@dataclass(frozen=True)
class Refusal:
    """A pool record that retrieval ranked for a failed question and the relevance floor refused."""

    round: int
    where: str
    task: str
    sample_id: str
    score: float
    why: str
    nearest: bool = False  # the failure's nearest miss: of the records refused for it, the one closest to passing

    @property
    def reason(self) -> str:
        what = "nearest miss" if self.nearest else "refused"
        return f"{self.where} {what} for failed {self.task}/{self.sample_id}, score {self.score:.2f}: {self.why}"

    def to_dict(self) -> dict:
        return {**asdict(self), "reason": self.reason}


def prompt_and_answer(conversation: Conversation) -> tuple[str, str]:
    """A record's user turns and its assistant turns, each joined: what it asks about, and what it
    states (the relevance floor reads them apart)."""
    turns = lambda role: "\n".join(m["content"] for m in conversation if m["role"] == role)
    return turns("user"), turns("assistant")


def conversation_text(conversation: Conversation) -> str:
    """The text a record is retrieved by: its user and assistant messages (system prompts are
    instructions shared by many records, not content)."""
    return "\n".join(m["content"] for m in conversation if m["role"] != "system")


def select_candidates(
    failures: list[Failure], pool: list[PoolRecord], index: RetrievalIndex, floor: RelevanceFloor, *,
    limit: int, taken: Iterable[str] = (), round_no: int, refusals_per_failure: int = 3,
) -> tuple[list[DataAddition], list[Refusal]]:
    """At most `limit` pool records for `failures`, each failure's best relevant one first, in
    turns; and the records the floor refused on the way, at most `refusals_per_failure` per
    failure (the best-ranked ones: those a person would expect to see added), then each
    failure's nearest miss (`Refusal.nearest`) among all the records retrieval ranked for it.

    `index` is built over `conversation_text` of `pool` and `floor` over its `prompt_and_answer`,
    in the same order; `taken` are the `where` of records added before, never chosen again.
    """
    if not failures or not pool or limit <= 0:
        return [], []
    taken = set(taken)
    ranked = [ranked_documents(row) for row in index.scores([f.question for f in failures])]
    queues = [iter(r) for r in ranked]
    verdicts = [floor.floor(f.question) for f in failures]
    refused: list[Refusal] = []
    shown = [0] * len(failures)

    def refusal(i: int, document: int, score: float, why: str, nearest: bool = False) -> Refusal:
        f = failures[i]
        return Refusal(round_no, pool[document].where, f.task, f.sample_id, round(score, 4), why, nearest)

    def next_relevant(i: int) -> tuple[int, float, str] | None:
        for document, score in queues[i]:
            if pool[document].where in taken:
                continue
            verdict = verdicts[i](document)
            if verdict.relevant:
                return document, score, verdict.reason
            if shown[i] < refusals_per_failure:
                shown[i] += 1
                refused.append(refusal(i, document, score, verdict.reason))
        return None

    def with_nearest_misses(chosen: list[DataAddition]) -> tuple[list[DataAddition], list[Refusal]]:
        # Over every record ranked for the failure, not only those reached before the budget was
        # spent: the record to look at is the one closest to passing, not the best-ranked one.
        for i in range(len(failures)):
            misses = [(verdicts[i](d), -rank, d, score) for rank, (d, score) in enumerate(ranked[i])
                      if pool[d].where not in taken]
            misses = [m for m in misses if not m[0].relevant]
            if misses:
                verdict, _, document, score = max(misses, key=lambda m: (m[0].checks_passed, m[1]))
                nearest = refusal(i, document, score, verdict.reason, nearest=True)
                shown_already = [n for n, r in enumerate(refused) if replace(r, nearest=True) == nearest]
                if shown_already:  # one of the best-ranked refusals: marked, not listed twice
                    refused[shown_already[0]] = nearest
                else:
                    refused.append(nearest)
        return chosen, refused

    pending = [next_relevant(i) for i in range(len(failures))]
    got = [0] * len(failures)
    chosen: list[DataAddition] = []
    while any(pending):
        # One turn: every failure with a candidate left takes its best untaken one; those with
        # fewer records so far go first, then the closest matches.
        for i in sorted((i for i, hit in enumerate(pending) if hit), key=lambda i: (got[i], -pending[i][1])):
            document, score, why = pending[i]
            record = pool[document]
            if record.where not in taken:  # else an earlier failure took it this turn: try next turn
                taken.add(record.where)
                got[i] += 1
                chosen.append(_addition(round_no, "added", record, failures[i], score, index.kind, 1, why))
                if len(chosen) == limit:
                    return with_nearest_misses(chosen)
            pending[i] = next_relevant(i)
    return with_nearest_misses(chosen)


def select_repeats(
    failures: list[Failure], training: list[PoolRecord], index: RetrievalIndex, *,
    copies: int, taken: Iterable[str] = (), round_no: int,
) -> list[DataAddition]:
    """For each failure, the training record that covers its question best, to repeat `copies`
    more times; records in `taken` (already repeated) and records that share nothing with the
    question are skipped."""
    if not failures or not training or copies <= 0:
        return []
    taken = set(taken)
    chosen = []
    for failure, row in zip(failures, index.scores([f.question for f in failures])):
        best = next(((i, s) for i, s in ranked_documents(row) if training[i].where not in taken), None)
        if best is not None:
            taken.add(training[best[0]].where)
            chosen.append(_addition(round_no, "repeated", training[best[0]], failure, best[1], index.kind, copies))
    return chosen


def by_category(failures: list[Failure], additions: list[DataAddition]) -> dict[str, dict[str, list[str]]]:
    """What failed, what was added and what was repeated, per category of the evaluation samples.

    `{category: {"failed": ["task/id", ...], "added": [where, ...], "repeated": [where, ...]}}`;
    empty when no failed sample has a category. A sample in several categories (tags) is
    counted in each; an uncategorised one under "(no category)".
    """
    if not any(f.categories for f in failures):
        return {}
    report: dict[str, dict[str, list[str]]] = {}

    def entry(category: str) -> dict[str, list[str]]:
        return report.setdefault(category, {"failed": [], "added": [], "repeated": []})

    for f in failures:
        for category in f.categories or (UNCATEGORISED,):
            entry(category)["failed"].append(f"{f.task}/{f.sample_id}")
    for a in additions:
        for category in a.categories or [UNCATEGORISED]:
            entry(category)[a.action].append(a.where)
    return dict(sorted(report.items()))


def ranked_documents(row: np.ndarray) -> list[tuple[int, float]]:
    """(document, score) pairs scoring above 0, best first; ties keep the pool's order."""
    order = np.argsort(-row, kind="stable")
    return [(int(i), float(row[i])) for i in order if row[i] > 0]


def _addition(round_no, action, record: PoolRecord, failure: Failure, score, retrieval, copies,
              relevance: str = "") -> DataAddition:
    return DataAddition(
        round=round_no, action=action, where=record.where, conversation=record.conversation, task=failure.task,
        sample_id=failure.sample_id, question=failure.question, score=round(score, 4), retrieval=retrieval,
        copies=copies, categories=list(failure.categories), relevance=relevance,
    )

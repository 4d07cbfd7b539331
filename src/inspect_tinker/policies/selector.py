"""The data-selection step as the loop runs it: the candidate pool read and checked once, the
retrieval indexes built once, and after each round below the bar, the failed gate samples
turned into data additions (policies/selection.py holds the choosing itself) and into the
records the next round may train harder (policies/focus.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inspect_tinker.data.decontamination import EvalInput
from inspect_tinker.data.prepare import CheckedRecords, check_training_records
from inspect_tinker.data.reading import cite
from inspect_tinker.data.render import TokenizedExample, render_batch, text_limit, truncate
from inspect_tinker.data.settings import DataConfig
from inspect_tinker.evals.result import EvalResult
from inspect_tinker.policies.focus import FocusCandidate
from inspect_tinker.policies.relevance import RelevanceFloor
from inspect_tinker.policies.retrieval import RetrievalIndex, RetrievalKind, build_index, check_retrieval
from inspect_tinker.policies.selection import (
    DataAddition, Failure, PoolRecord, Refusal, by_category, conversation_text, prompt_and_answer, ranked_documents,
    select_candidates, select_repeats,
)


@dataclass(frozen=True)
class SelectionSettings:
    """What data selection is told by the run's configuration (the keys of the same names; no
    defaults here, the configuration states them once). Built where the run is set up (loop/settings.py)."""

    train_file: Path
    candidate_file: Path | None
    select_per_round: int
    upweight_repeats: int
    retrieval: RetrievalKind
    focus_weight: int  # 1: no record is trained harder (policies/focus.py)
    data: DataConfig  # the checks the candidates pass, as training records do


@dataclass
class SelectionRound:
    """What one round's failures led to."""

    failures: list[Failure]
    additions: list[DataAddition]
    refusals: list[Refusal]
    budget: int  # select_per_round: the most pool records the round could add

    @property
    def new_records(self) -> int:
        """How many pool records this round added: new data the next round trains on."""
        return sum(a.action == "added" for a in self.additions)

    def summary(self) -> dict:
        """Plain data for the `data_selected` event: the counts, and per failure what was added
        and what was refused, and why."""
        return {
            "failed": len(self.failures),
            "added": self.new_records,
            "repeated": sum(a.action == "repeated" for a in self.additions),
            "refused": len(self.refusals),
            "by_category": by_category(self.failures, self.additions),
            "per_failure": [self._of(f) for f in self.failures],
        }

    def _of(self, failure: Failure) -> dict:
        mine = [a for a in self.additions if (a.task, a.sample_id) == (failure.task, failure.sample_id)]
        mine_refused = [r for r in self.refusals if (r.task, r.sample_id) == (failure.task, failure.sample_id)]
        added = [a.reason for a in mine if a.action == "added"]
        if added:
            note = ""
        elif self.new_records < self.budget:
            note = "nothing added: no relevant record left in the pool"
        else:
            note = f"nothing added: no relevant record found before select_per_round ({self.budget}) was spent"
        return {
            "task": failure.task, "sample_id": failure.sample_id, "question": failure.question,
            "added": added, "repeated": [a.reason for a in mine if a.action == "repeated"], "note": note,
            "refused": [r.reason for r in mine_refused],
            # The refused record closest to passing: where a relevant record the floor missed shows.
            "nearest_miss": next((r.reason for r in mine_refused if r.nearest), None),
        }


class DataSelector:
    """Chooses data additions for failed gate samples from the candidate pool and the training set."""

    def __init__(self, settings: SelectionSettings, training: list[PoolRecord], pool: list[PoolRecord], categories: dict,
                 pool_report: dict | None):
        self.settings = settings
        self.training, self.pool, self.categories = training, pool, categories
        self.pool_report = pool_report  # the candidate file's data report summary, for the `candidates_checked` event
        self._pool_index: RetrievalIndex | None = None
        self._pool_floor: RelevanceFloor | None = None
        self._training_index: RetrievalIndex | None = None
        self._training_floor: RelevanceFloor | None = None

    @classmethod
    def from_settings(
        cls, settings: SelectionSettings, training: CheckedRecords, tasks, eval_inputs: list[EvalInput]
    ) -> "DataSelector | None":
        """The selector of a run, or None when its settings ask for no selection.

        Reads `candidate_file` now, so that a bad pool fails before the model loads. Candidates
        pass the same checks as training data (`data` keys) and are always decontaminated
        against `eval_inputs`, every evaluation set's inputs, whatever `data.decontamination`
        says: an added record must never hold an evaluation question. `training` are the run's
        checked training records; `tasks` the built evaluation tasks.
        """
        if settings.candidate_file is None and not settings.upweight_repeats and settings.focus_weight <= 1:
            return None
        check_retrieval(settings.retrieval)
        pool, report = [], None
        if settings.candidate_file is not None:
            checks = settings.data.model_copy(update={"decontamination": "drop"})
            checked = check_training_records(settings.candidate_file, checks, eval_inputs, strict=False)
            pool = _records(settings.candidate_file.name, checked)
            report = checked.report.summary()
        return cls(settings, _records(settings.train_file.name, training), pool, sample_categories(tasks), report)

    @property
    def selects(self) -> bool:
        """Whether this selector adds or repeats records (else it only names focus candidates)."""
        return self.settings.candidate_file is not None or bool(self.settings.upweight_repeats)

    def choose(self, result: EvalResult, round_no: int, earlier: list[DataAddition]) -> SelectionRound:
        """The additions for the failed gate samples of `result` (round `round_no`), skipping
        records that `earlier` additions already added or repeated."""
        failures = failed_gate_samples(result, self.categories)
        additions, refusals = select_candidates(
            failures, self.pool, self.pool_index, self.pool_floor, limit=self.settings.select_per_round,
            round_no=round_no, taken={a.where for a in earlier if a.action == "added"},
        ) if self.pool else ([], [])
        additions += select_repeats(
            failures, self.training, self.training_index, copies=self.settings.upweight_repeats, round_no=round_no,
            taken={a.where for a in earlier if a.action == "repeated"},
        ) if self.settings.upweight_repeats else []
        return SelectionRound(failures, additions, refusals, self.settings.select_per_round)

    def focus_candidates(self, chosen: SelectionRound, additions: list[DataAddition]) -> list[FocusCandidate]:
        """The records the next round may train harder (policies/focus.py): every pool record
        `additions` (all so far, this round's too) added, and for each failure of `chosen`, the
        training record retrieval ranks first among those the relevance floor lets through (the
        record that teaches what was asked; none when no training record is about it). Each once."""
        candidates = {a.where: FocusCandidate(a.where, a.conversation, f"added for failed {a.task}/{a.sample_id}")
                      for a in additions if a.action == "added"}
        if chosen.failures and self.training:
            rows = self.training_index.scores([f.question for f in chosen.failures])
            for failure, row in zip(chosen.failures, rows):
                relevant = self.training_floor.floor(failure.question)
                best = next((i for i, _ in ranked_documents(row) if relevant(i).relevant), None)
                if best is not None and self.training[best].where not in candidates:
                    record = self.training[best]
                    candidates[record.where] = FocusCandidate(
                        record.where, record.conversation, f"covers failed {failure.task}/{failure.sample_id}")
        return list(candidates.values())

    @property
    def pool_index(self) -> RetrievalIndex:
        if self._pool_index is None:
            self._pool_index = build_index(self.settings.retrieval, [conversation_text(r.conversation) for r in self.pool])
        return self._pool_index

    @property
    def pool_floor(self) -> RelevanceFloor:
        if self._pool_floor is None:
            self._pool_floor = RelevanceFloor(
                [prompt_and_answer(r.conversation) for r in self.pool], lexical=self.settings.retrieval == "bm25"
            )
        return self._pool_floor

    @property
    def training_floor(self) -> RelevanceFloor:
        # Without the embedding model's second opinion: a training file may be large, and the
        # record that teaches a failed question names what it asks about.
        if self._training_floor is None:
            self._training_floor = RelevanceFloor(
                [prompt_and_answer(r.conversation) for r in self.training], lexical=self.settings.retrieval == "bm25",
                second_opinion=False,
            )
        return self._training_floor

    @property
    def training_index(self) -> RetrievalIndex:
        if self._training_index is None:
            self._training_index = build_index(
                self.settings.retrieval, [conversation_text(r.conversation) for r in self.training]
            )
        return self._training_index


def _records(file_name: str, checked: CheckedRecords) -> list[PoolRecord]:
    # `where` reads "pool.jsonl:12" (or "pool.json (record 3)"): how a person finds the record.
    return [PoolRecord(cite(file_name, w), c) for w, c in zip(checked.wheres, checked.conversations)]


def sample_categories(tasks) -> dict[tuple[str, str], tuple[str, ...]]:
    """`{(task, sample id): categories}` from each sample's `category` and `tags` metadata."""
    categories = {}
    for task in tasks:
        for index, sample in enumerate(task.task.dataset, start=1):
            metadata = sample.metadata or {}
            found = ([metadata["category"]] if metadata.get("category") else []) + list(metadata.get("tags") or [])
            if found:
                sample_id = str(sample.id) if sample.id is not None else str(index)
                categories[(task.name, sample_id)] = tuple(str(c) for c in found)
    return categories


def failed_gate_samples(result: EvalResult, categories: dict) -> list[Failure]:
    """The samples of `result`'s gate tasks answered wrongly, with their categories.

    Confirmation tasks (and the regression guard) never feed selection: training towards
    them would make them a second gate, and confirm nothing.
    """
    return [
        Failure(task.name, s.id, s.question, categories.get((task.name, s.id), ()))
        for task in result.tasks_with_role("gate")
        for s in task.samples
        if not s.correct
    ]


def addition_examples(additions: list, tokenizer, data: DataConfig, max_seq_length: int) -> list[TokenizedExample]:
    """The training examples that `additions` (DataAddition or FocusRecord: a `conversation` and its
    `copies`) stand for, in order, each `copies` times; those not trainable are left out."""
    rendered = rendered_records([a.conversation for a in additions], tokenizer, data, max_seq_length)
    return [example for addition, example in zip(additions, rendered) if example is not None
            for _ in range(addition.copies)]


def rendered_records(conversations: list, tokenizer, data: DataConfig, max_seq_length: int) -> list[TokenizedExample | None]:
    """Each conversation rendered like training data (`data.train_on`, cut to `max_seq_length` as
    `data.too_long` says), in order; None for one that would not be trained on (too long to keep,
    or fewer than `data.min_target_tokens` target tokens)."""
    if not conversations:
        return []
    out = []
    for example in render_batch(tokenizer, conversations, data.train_on, text_limit(tokenizer, max_seq_length)):
        if len(example.input_ids) > max_seq_length:
            example = truncate(example, max_seq_length) if data.too_long == "truncate" else None
        out.append(example if example is not None and example.n_target_tokens >= data.min_target_tokens else None)
    return out

"""The data-selection step as the loop runs it: the candidate pool read and checked once, the
retrieval indexes built once, and after each round below the bar, the failed gate samples
turned into data additions (policies/selection.py holds the choosing itself)."""

from __future__ import annotations

from dataclasses import dataclass

from inspect_tinker.config import Config
from inspect_tinker.data.decontamination import EvalInput
from inspect_tinker.data.prepare import CheckedRecords, check_training_records
from inspect_tinker.data.reading import cite
from inspect_tinker.data.render import TokenizedExample, render_batch, text_limit, truncate
from inspect_tinker.evals.result import EvalResult
from inspect_tinker.policies.retrieval import RetrievalIndex, build_index, check_retrieval
from inspect_tinker.policies.selection import (
    DataAddition, Failure, PoolRecord, by_category, conversation_text, select_candidates, select_repeats,
)


@dataclass
class SelectionRound:
    """What one round's failures led to."""

    failures: list[Failure]
    additions: list[DataAddition]

    def summary(self) -> dict:
        """Plain data for the `data_selected` event."""
        return {
            "failed": len(self.failures),
            "added": sum(a.action == "added" for a in self.additions),
            "repeated": sum(a.action == "repeated" for a in self.additions),
            "by_category": by_category(self.failures, self.additions),
        }


class DataSelector:
    """Chooses data additions for failed gate samples from the candidate pool and the training set."""

    def __init__(self, config: Config, training: list[PoolRecord], pool: list[PoolRecord], categories: dict,
                 pool_report: dict | None):
        self.config = config
        self.training, self.pool, self.categories = training, pool, categories
        self.pool_report = pool_report  # the candidate file's data report summary, for the `candidates_checked` event
        self._pool_index: RetrievalIndex | None = None
        self._training_index: RetrievalIndex | None = None

    @classmethod
    def from_config(
        cls, config: Config, training: CheckedRecords, tasks, eval_inputs: list[EvalInput]
    ) -> "DataSelector | None":
        """The selector of a run, or None when the config asks for no selection.

        Reads `candidate_file` now, so that a bad pool fails before the model loads. Candidates
        pass the same checks as training data (`data` keys) and are always decontaminated
        against `eval_inputs`, every evaluation set's inputs, whatever `data.decontamination`
        says: an added record must never hold an evaluation question. `training` are the run's
        checked training records; `tasks` the built evaluation tasks.
        """
        if config.candidate_file is None and not config.upweight_repeats:
            return None
        check_retrieval(config.retrieval)
        pool, report = [], None
        if config.candidate_file is not None:
            settings = config.data.model_copy(update={"decontamination": "drop"})
            checked = check_training_records(config.candidate_file, settings, eval_inputs, strict=False)
            pool = _records(config.candidate_file.name, checked)
            report = checked.report.summary()
        return cls(config, _records(config.train_file.name, training), pool, sample_categories(tasks), report)

    def choose(self, result: EvalResult, round_no: int, earlier: list[DataAddition]) -> SelectionRound:
        """The additions for the failed gate samples of `result` (round `round_no`), skipping
        records that `earlier` additions already added or repeated."""
        failures = failed_gate_samples(result, self.categories)
        additions = select_candidates(
            failures, self.pool, self.pool_index, limit=self.config.select_per_round, round_no=round_no,
            taken={a.where for a in earlier if a.action == "added"},
        ) if self.pool else []
        additions += select_repeats(
            failures, self.training, self.training_index, copies=self.config.upweight_repeats, round_no=round_no,
            taken={a.where for a in earlier if a.action == "repeated"},
        ) if self.config.upweight_repeats else []
        return SelectionRound(failures, additions)

    @property
    def pool_index(self) -> RetrievalIndex:
        if self._pool_index is None:
            self._pool_index = build_index(self.config.retrieval, [conversation_text(r.conversation) for r in self.pool])
        return self._pool_index

    @property
    def training_index(self) -> RetrievalIndex:
        if self._training_index is None:
            self._training_index = build_index(
                self.config.retrieval, [conversation_text(r.conversation) for r in self.training]
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


def addition_examples(additions: list[DataAddition], tokenizer, config: Config) -> list[TokenizedExample]:
    """The training examples the additions stand for, in order: rendered like training data
    (`data.train_on`, cut to `max_seq_length`), a repeated record `copies` times."""
    if not additions:
        return []
    examples = []
    for addition, example in zip(additions, render_batch(
        tokenizer, [a.conversation for a in additions], config.data.train_on, text_limit(tokenizer, config.max_seq_length)
    )):
        if len(example.input_ids) > config.max_seq_length:
            example = truncate(example, config.max_seq_length) if config.data.too_long == "truncate" else None
        if example is not None and example.n_target_tokens >= config.data.min_target_tokens:
            examples += [example] * addition.copies
    return examples

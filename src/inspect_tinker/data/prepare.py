"""The data step: a training file -> checked conversations -> training examples, with a report.

Two phases, so that everything that can fail on bad data fails before the model loads:
1. `check_training_records` (text only): read, validate, quality checks, decontamination,
   exact and near duplicates.
2. `prepare_training_data` (needs the tokenizer): render with the chat template and the
   assistant-only loss mask, then the token-length checks.
Records stream through both: memory holds the kept conversations and examples and, for the
duplicate detectors, a fingerprint per kept record (about 3.5 KB with the near-duplicate
index), never a second copy of the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from inspect_tinker.data.checks import failed_check
from inspect_tinker.data.decontamination import ContaminationIndex, EvalInput
from inspect_tinker.data.dedup import ExactDuplicates, NearDuplicates
from inspect_tinker.data.normalize import normalize_conversation
from inspect_tinker.data.reading import cite, open_records
from inspect_tinker.data.records import Conversation, InvalidRecord, record_to_conversation
from inspect_tinker.data.render import TokenizedExample, render_batch, text_limit, truncate
from inspect_tinker.data.report import DataReport, token_length_stats
from inspect_tinker.data.settings import DataConfig
from inspect_tinker.errors import UsageError

# Called as progress(stage=..., done=..., total=...) every PROGRESS_EVERY records and at the end of a stage.
ProgressCallback = Callable[..., object]
PROGRESS_EVERY = 1000
RENDER_BATCH = 1000  # conversations tokenized together


class NoTrainingData(UsageError):
    """Nothing is left to train on; `report` says what happened to every record."""

    def __init__(self, message: str, report: DataReport):
        super().__init__(message)
        self.report = report


@dataclass
class CheckedRecords:
    """Conversations that passed every text check, where each came from, and the report so far."""

    path: Path
    report: DataReport
    conversations: list[Conversation] = field(default_factory=list)
    wheres: list[str] = field(default_factory=list)


def check_training_records(
    path: Path,
    settings: DataConfig,
    eval_inputs: list[EvalInput],
    strict: bool = False,
    progress: ProgressCallback | None = None,
) -> CheckedRecords:
    """Read `path` and keep the records that pass the checks of `settings`.

    `eval_inputs` are the evaluation samples to decontaminate against. With `strict`, the
    first invalid record raises UsageError naming the file and line; otherwise it is
    dropped and reported. Raises NoTrainingData when no record is left.
    """
    source = open_records(path, settings.format)
    report = DataReport(file=str(path), format=source.format)
    checked = CheckedRecords(Path(path), report)
    contamination = ContaminationIndex(
        eval_inputs if settings.decontamination != "off" else [], settings.contamination_ngram_words
    )
    report.contamination = {
        "action": settings.decontamination, "ngram_words": contamination.ngram_words,
        "eval_inputs": contamination.inputs, "eval_inputs_too_short": contamination.too_short,
    }
    exact = ExactDuplicates() if settings.exact_dedup else None
    near = NearDuplicates(settings.near_duplicate_threshold) if settings.near_duplicate_threshold else None

    for record in source:
        report.records += 1
        if progress and report.records % PROGRESS_EVERY == 0:
            progress(stage="checking", done=report.records, total=max(source.estimated_records, report.records))
        where = record.where
        try:
            if record.error:
                raise InvalidRecord(record.error)
            conversation = record_to_conversation(record.value, settings.fields, settings.roles)
        except InvalidRecord as err:
            if strict:
                raise UsageError(
                    f"{cite(path, where)}: {err}. Fix the record, or drop `strict: true` to skip invalid records."
                ) from None
            report.drop(where, "invalid", str(err))
            continue
        if failed := failed_check(conversation, settings.checks):
            report.drop(where, *failed)
            continue
        normalized = normalize_conversation(conversation)
        if hits := contamination.hits(normalized):
            dropped = settings.decontamination == "drop"
            report.contamination_hits += [{"where": where, **asdict(h), "dropped": dropped} for h in hits]
            if dropped:
                report.drop(where, "contaminated", ", ".join(f"{h.task}/{h.sample_id}" for h in hits))
                continue
        if exact and (first := exact.first_copy(normalized, where)):
            report.drop(where, "exact_duplicate", f"same as {first}")
            report.add_duplicate("exact", first, where)
            continue
        if near and (similar := near.first_similar(normalized, where)):
            report.drop(where, "near_duplicate", f"similar to {similar[0]} ({similar[1]:.2f})")
            report.add_duplicate("near", similar[0], where, similar[1])
            continue
        checked.conversations.append(conversation)
        checked.wheres.append(where)
    if progress:
        progress(stage="checking", done=report.records, total=report.records)
    if not checked.conversations:
        raise NoTrainingData(_nothing_left(path, report), report)
    return checked


def prepare_training_data(
    checked: CheckedRecords,
    tokenizer,
    max_seq_length: int,
    settings: DataConfig,
    progress: ProgressCallback | None = None,
) -> tuple[list[TokenizedExample], DataReport]:
    """Render every checked conversation into token ids with the loss mask, and apply the
    token-length checks (`settings.min_target_tokens`, `settings.too_long`).

    Returns the examples and the completed report. Raises NoTrainingData when no example is left.
    """
    report = checked.report
    examples: list[TokenizedExample] = []
    lengths: list[int] = []
    total = len(checked.conversations)
    limit = text_limit(tokenizer, max_seq_length)
    for first in range(0, total, RENDER_BATCH):
        batch = render_batch(tokenizer, checked.conversations[first : first + RENDER_BATCH], settings.train_on, limit)
        for where, example in zip(checked.wheres[first : first + RENDER_BATCH], batch):
            lengths.append(len(example.input_ids))
            if example.n_target_tokens < settings.min_target_tokens:
                report.drop(where, "too_short", f"{example.n_target_tokens} trained tokens, fewer than {settings.min_target_tokens}")
                continue
            if len(example.input_ids) > max_seq_length:
                cut = truncate(example, max_seq_length) if settings.too_long == "truncate" else None
                if cut is None:
                    why = "nothing left to train on after cutting to" if settings.too_long == "truncate" else "longer than"
                    report.drop(where, "too_long", f"{_length(example)}; {why} max_seq_length {max_seq_length}")
                    continue
                report.truncate(where, f"{_length(example)}; cut to max_seq_length {max_seq_length}")
                example = cut
            examples.append(example)
        if progress:
            progress(stage="tokenizing", done=min(first + RENDER_BATCH, total), total=total)
    report.examples = len(examples)
    report.token_lengths = token_length_stats(lengths)
    report.total_tokens = sum(len(e.input_ids) for e in examples)
    report.target_tokens = sum(e.n_target_tokens for e in examples)
    if not examples:
        raise NoTrainingData(_nothing_left(checked.path, report), report)
    return examples, report


def _length(example: TokenizedExample) -> str:
    if example.untokenized_chars:  # cut as text before tokenizing: the whole count is unknown
        return f"over {len(example.input_ids)} tokens (the last {example.untokenized_chars} characters were not tokenized)"
    return f"{len(example.input_ids)} tokens"


def _nothing_left(path: Path, report: DataReport) -> str:
    reasons = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in report.dropped.items() if n)
    first = report.dropped_records[0] if report.dropped_records else None
    example = f" First: {cite(path, first['where'])}: {first['detail']}." if first else ""
    return (
        f"{path}: no usable training record among {report.records} ({reasons or 'the file is empty'}).{example} "
        f"See the record formats in docs/data.md, or run `inspect-tinker data check {path}` for the full report."
    )

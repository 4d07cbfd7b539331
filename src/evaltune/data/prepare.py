"""Turn checked conversations into training examples and describe what happened to them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from evaltune.data.records import LoadedRecords
from evaltune.data.render import TokenizedExample, render_conversation


@dataclass
class DataReport:
    """Counts from file to examples; plain data for events and the console."""

    file: str
    records: int
    invalid: list[dict] = field(default_factory=list)  # {"line", "reason"}
    truncated: int = 0
    dropped_too_long: int = 0
    examples: int = 0
    target_tokens: int = 0
    total_tokens: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def prepare_training_data(
    loaded: LoadedRecords, tokenizer, max_seq_length: int
) -> tuple[list[TokenizedExample], DataReport]:
    """Render every conversation to token ids with an assistant-only loss mask.

    Examples longer than `max_seq_length` are cut; those left with no assistant token
    are dropped. Returns the examples and a report of every count.
    """
    report = DataReport(
        file=str(loaded.path),
        records=loaded.total,
        invalid=[{"line": d.line, "reason": d.reason} for d in loaded.dropped],
    )
    examples = []
    for conversation in loaded.conversations:
        full_length = len(tokenizer.apply_chat_template(conversation, tokenize=True)["input_ids"])
        example = render_conversation(tokenizer, conversation, max_seq_length)
        if example is None:
            report.dropped_too_long += 1
            continue
        report.truncated += full_length > max_seq_length
        examples.append(example)
    report.examples = len(examples)
    report.target_tokens = sum(e.n_target_tokens for e in examples)
    report.total_tokens = sum(len(e.input_ids) for e in examples)
    return examples, report

"""Samples of the built-in tasks, read from JSONL files and checked record by record.

Every problem is a UsageError naming the file and line, raised when the task is built,
which the loop does before the model loads.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path

from inspect_ai.dataset import Sample

from inspect_tinker.errors import UsageError
from inspect_tinker.data.text_encoding import decode_utf8


def _records(path: Path) -> Iterator[tuple[str, int, dict]]:
    """(where, line number, record) for each non-blank line; bad JSON is an error naming the line."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UsageError(f"{path}: cannot read the evaluation file ({err.strerror}).") from None
    lines = decode_utf8(raw, path).splitlines()
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UsageError(f"{where}: invalid JSON ({err.msg}).") from None
        if not isinstance(record, dict):
            raise UsageError(f"{where}: expected a JSON object.")
        yield where, line_no, record


def _text(record: dict, key: str, where: str, numbers: bool = False) -> str:
    """The string at `key`; with `numbers`, a JSON number is taken as its text (`"answer": 42`)."""
    value = record.get(key)
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if key not in record or value is None or (isinstance(value, str) and not value.strip()):
        raise UsageError(f"{where}: missing or empty '{key}' (a string{' or a number' if numbers else ''}).")
    if not isinstance(value, str):
        raise UsageError(
            f"{where}: '{key}' must be a string{' or a number' if numbers else ''}, not {type(value).__name__} {value!r}."
        )
    return value


def _non_empty(samples: list[Sample], lines: list[int], path: Path) -> list[Sample]:
    """`samples` (read from lines `lines` of `path`), checked: at least one, ids unique."""
    if not samples:
        raise UsageError(f"{path}: no evaluation questions in the file.")
    first_line: dict[str, int] = {}
    for sample, line_no in zip(samples, lines):
        if str(sample.id) in first_line:
            raise UsageError(
                f"{path}:{line_no}: sample id {sample.id!r} is already used on line {first_line[str(sample.id)]}; "
                "sample ids must be unique, so give one of them another id."
            )
        first_line[str(sample.id)] = line_no
    return samples


def load_qa_samples(path: Path) -> list[Sample]:
    """QA records `{question, answer, aliases?, id?, category?, tags?}` -> Samples whose targets are
    the answer and aliases; `category` and `tags` go into the sample's metadata (data selection
    reports failures by them)."""
    samples, lines = [], []
    for where, line_no, record in _records(path):
        question, answer = _text(record, "question", where), _text(record, "answer", where, numbers=True)
        aliases = record.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, (str, int, float)) for a in aliases):
            raise UsageError(f"{where}: 'aliases' must be a list of strings (or numbers).")
        metadata = {k: record[k] for k in ("category", "tags") if k in record}
        samples.append(Sample(id=str(record.get("id", line_no)), input=question, target=[answer, *map(str, aliases)],
                              metadata=metadata or None))
        lines.append(line_no)
    return _non_empty(samples, lines, path)


def load_choice_samples(path: Path) -> list[Sample]:
    """Multiple-choice records `{question, choices, answer, id?}` -> Samples whose target is a letter.

    `answer` is the letter of the right choice (`"B"`) or that choice's exact text.
    """
    samples, lines = [], []
    for where, line_no, record in _records(path):
        question, answer = _text(record, "question", where), _text(record, "answer", where, numbers=True)
        choices = record.get("choices")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise UsageError(f"{where}: 'choices' must be a list of at least two non-empty strings.")
        letters = string.ascii_uppercase[: len(choices)]
        if len(choices) > len(string.ascii_uppercase):
            raise UsageError(f"{where}: at most {len(string.ascii_uppercase)} choices.")
        if answer.strip().upper() in letters and len(answer.strip()) == 1:
            letter = answer.strip().upper()
        elif answer in choices:
            letter = letters[choices.index(answer)]
        else:
            raise UsageError(
                f"{where}: 'answer' {answer!r} is neither a choice letter ({', '.join(letters)}) nor the text of a choice."
            )
        samples.append(Sample(id=str(record.get("id", line_no)), input=question, choices=choices, target=letter))
        lines.append(line_no)
    return _non_empty(samples, lines, path)

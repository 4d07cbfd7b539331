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

from evaltune.errors import UsageError


def _records(path: Path) -> Iterator[tuple[str, int, dict]]:
    """(where, line number, record) for each non-blank line; bad JSON is an error naming the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise UsageError(f"{path}: cannot read the evaluation file ({err.strerror}).") from None
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


def _text(record: dict, key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: missing or empty '{key}' (a string).")
    return value


def _non_empty(samples: list[Sample], path: Path) -> list[Sample]:
    if not samples:
        raise UsageError(f"{path}: no evaluation questions in the file.")
    ids = [s.id for s in samples]
    twice = sorted({str(i) for i in ids if ids.count(i) > 1})
    if twice:
        raise UsageError(f"{path}: sample ids must be unique; {', '.join(twice)} appears more than once.")
    return samples


def load_qa_samples(path: Path) -> list[Sample]:
    """QA records `{question, answer, aliases?, id?, category?, tags?}` -> Samples whose targets are
    the answer and aliases; `category` and `tags` go into the sample's metadata (data selection
    reports failures by them)."""
    samples = []
    for where, line_no, record in _records(path):
        question, answer = _text(record, "question", where), _text(record, "answer", where)
        aliases = record.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise UsageError(f"{where}: 'aliases' must be a list of strings.")
        metadata = {k: record[k] for k in ("category", "tags") if k in record}
        samples.append(Sample(id=str(record.get("id", line_no)), input=question, target=[answer, *aliases],
                              metadata=metadata or None))
    return _non_empty(samples, path)


def load_choice_samples(path: Path) -> list[Sample]:
    """Multiple-choice records `{question, choices, answer, id?}` -> Samples whose target is a letter.

    `answer` is the letter of the right choice (`"B"`) or that choice's exact text.
    """
    samples = []
    for where, line_no, record in _records(path):
        question, answer = _text(record, "question", where), _text(record, "answer", where)
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
    return _non_empty(samples, path)

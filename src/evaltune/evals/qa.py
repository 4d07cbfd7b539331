"""The built-in QA task: questions from a JSONL file, scored by "answer included".

Records: `{"question": str, "answer": str, "aliases"?: [str], "id"?: str}`.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState, generate, system_message

from evaltune.errors import UsageError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalize_answer(text: str) -> str:
    """Lower-case, fold unicode, drop punctuation and English articles, squeeze spaces.

    SQuAD-style normalisation; Inspect's own `includes()` only folds case, which would
    count "Paris." and "paris" as different answers.
    """
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_included_in(response: str, targets: list[str]) -> bool:
    """True when a normalised target appears in the normalised response as whole words."""
    haystack = f" {normalize_answer(response)} "
    return any(f" {n} " in haystack for n in map(normalize_answer, targets) if n)


@scorer(metrics=[accuracy(), stderr()])
def answer_included():
    """Correct when the expected answer (or an alias) is included in the response."""

    async def score(state: TaskState, target: Target) -> Score:
        response = state.output.completion
        ok = answer_included_in(response, list(target.target))
        return Score(value=CORRECT if ok else INCORRECT, answer=response)

    return score


def load_qa_samples(path: Path) -> list[Sample]:
    """Read QA records; raise UsageError naming the file and line of the first bad record."""
    samples = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise UsageError(f"{where}: invalid JSON ({err.msg}).") from None
            if not isinstance(record, dict):
                raise UsageError(f"{where}: expected an object with 'question' and 'answer'.")
            question, answer = record.get("question"), record.get("answer")
            if not isinstance(question, str) or not question.strip():
                raise UsageError(f"{where}: missing or empty 'question' (a string).")
            if not isinstance(answer, str) or not answer.strip():
                raise UsageError(f"{where}: missing or empty 'answer' (a string).")
            aliases = record.get("aliases", [])
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise UsageError(f"{where}: 'aliases' must be a list of strings.")
            samples.append(
                Sample(id=str(record.get("id", line_no)), input=question, target=[answer, *aliases])
            )
    if not samples:
        raise UsageError(f"{path}: no evaluation questions in the file.")
    return samples


@task
def qa(path: str, name: str | None = None, system_prompt: str | None = None) -> Task:
    """Built-in QA task over a JSONL file of {question, answer, aliases?} records."""
    samples = load_qa_samples(Path(path))
    solver = [system_message(system_prompt), generate()] if system_prompt else [generate()]
    return Task(
        dataset=MemoryDataset(samples, name=name or Path(path).stem),
        solver=solver,
        scorer=answer_included(),
        name=name or Path(path).stem,
    )

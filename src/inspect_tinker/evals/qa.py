"""The built-in QA task: questions from a JSONL file, scored by "answer included" by default.

Records: `{"question": str, "answer": str, "aliases"?: [str], "id"?: str}`.
"""

from __future__ import annotations

import re
import string
import unicodedata
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState, generate, system_message

from inspect_tinker.evals.datasets import load_qa_samples

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


@task
def qa(path: str, name: str | None = None, system_prompt: str | None = None) -> Task:
    """Built-in QA task over a JSONL file of {question, answer, aliases?} records."""
    name = name or Path(path).stem
    solver = [system_message(system_prompt), generate()] if system_prompt else [generate()]
    return Task(
        dataset=MemoryDataset(load_qa_samples(Path(path)), name=name),
        solver=solver,
        scorer=answer_included(),
        name=name,
    )

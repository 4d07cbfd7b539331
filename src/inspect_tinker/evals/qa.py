"""The built-in QA task: questions from a JSONL file, scored by `qa_grader`.

Records: `{"question": str, "answer": str, "aliases"?: [str], "id"?: str}`.
"""

from __future__ import annotations

from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset
from inspect_ai.solver import generate, system_message

from inspect_tinker.evals.datasets import load_qa_samples
from inspect_tinker.evals.scorers import qa_grader


@task
def qa(path: str, name: str | None = None, system_prompt: str | None = None) -> Task:
    """Built-in QA task over a JSONL file of {question, answer, aliases?} records, scored by `qa_grader`."""
    name = name or Path(path).stem
    solver = [system_message(system_prompt), generate()] if system_prompt else [generate()]
    return Task(
        dataset=MemoryDataset(load_qa_samples(Path(path)), name=name),
        solver=solver,
        scorer=qa_grader(),
        name=name,
    )

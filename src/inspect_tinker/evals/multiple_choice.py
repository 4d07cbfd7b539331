"""The built-in multiple-choice task: `{question, choices, answer}` records, scored by the letter picked.

Inspect's `multiple_choice` solver lists the choices as `A) ...` and asks for `ANSWER: X`;
its `choice` scorer compares the letter with the record's answer.
"""

from __future__ import annotations

from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset
from inspect_ai.scorer import choice
from inspect_ai.solver import multiple_choice, system_message

from inspect_tinker.evals.datasets import load_choice_samples


@task(name="multiple_choice")
def multiple_choice_task(path: str, name: str | None = None, system_prompt: str | None = None) -> Task:
    """Built-in multiple-choice task over a JSONL file of {question, choices, answer} records."""
    name = name or Path(path).stem
    solver = [system_message(system_prompt), multiple_choice()] if system_prompt else [multiple_choice()]
    return Task(
        dataset=MemoryDataset(load_choice_samples(Path(path)), name=name),
        solver=solver,
        scorer=choice(),
        name=name,
    )

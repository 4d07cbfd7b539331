"""Run the built tasks against a backend's current weights and extract an EvalResult.

The round's Model is the `tinker` provider over a sampler of the backend the loop trains with
(as tinker-cookbook's Inspect evaluator builds its Model over a sampling client), so the loop
evaluates through the same provider as `inspect eval --model tinker/...`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import inspect_ai
from inspect_ai import Task, task_with
from inspect_ai.log import EvalLog
from inspect_ai.model import GenerateConfig, Model
from inspect_ai.scorer import value_to_float

from inspect_tinker.errors import UsageError
from inspect_tinker.evals.result import EvalResult, SampleResult, TaskResult
from inspect_tinker.evals.scores import task_score
from inspect_tinker.provider.backend import Backend
from inspect_tinker.provider.model_api import backend_model

# Inspect opens a control socket per eval unless told not to; we need none.
os.environ.setdefault("INSPECT_EVAL_CTL_SERVER", "false")

_to_float = value_to_float()


@dataclass
class EvalTask:
    """An Inspect task with what inspect-tinker needs to know about it."""

    task: Task
    name: str
    role: str  # "gate", "confirm" or "guard"
    weight: float
    threshold: float | None
    scorer: str  # label shown in output
    generation: dict  # the settings its answers are generated with


def stage_tasks(
    backend: Backend, backend_name: str, tasks: list[EvalTask], judges: dict[str, GenerateConfig],
    model_path: str | None = None, labels: Callable[[EvalTask], tuple[dict, list[str]]] | None = None,
) -> list[Task]:
    """Fresh copies of `tasks`' Inspect tasks that answer with the backend's current weights.

    `model_path` is the checkpoint those weights were saved as (None: the base model), which
    the logs' model_args name. The base model (adapter off) answers as the judge of
    model-graded scorers without a judge of their own: `judges` maps each of their Inspect model
    roles (eval_tasks.base_model_judges) to its generation settings. `labels(task)` gives the
    metadata entries and tags added to a task (the loop's round and checkpoint).
    Build new `tasks` for every stage: `task_with` changes the task it is given.
    """
    model = backend_model(backend, backend.sampler(), backend_name=backend_name, model_path=model_path,
                          config=GenerateConfig())
    base = backend.sampler(with_adapter=False) if judges else None
    roles: dict[str, Model] = {
        role: backend_model(backend, base, backend_name=backend_name, model_path=None, config=settings)
        for role, settings in judges.items()
    }
    staged = []
    for t in tasks:
        metadata, tags = labels(t) if labels else ({}, [])
        staged.append(task_with(
            t.task, model=model, model_roles=roles or None,
            metadata={**(t.task.metadata or {}), **metadata}, tags=[*(t.task.tags or []), *tags],
        ))
    return staged


def eval_options(tasks: list[EvalTask], batch_size: int) -> dict:
    """`inspect_ai.eval` options for a stage: its tasks run together, `batch_size` questions at a time."""
    return dict(max_tasks=len(tasks), max_connections=batch_size, max_samples=batch_size,
                display="none", log_level="error", score_display=False)


def stage_result(tasks: list[EvalTask], logs: list[EvalLog]) -> EvalResult:
    """The EvalResult of one stage: `tasks` and the Inspect logs they wrote (full logs, with samples)."""
    by_name = {log.eval.task: log for log in logs}
    return EvalResult.combine([_task_result(t, by_name[t.name]) for t in tasks])


def evaluate(
    backend: Backend, backend_name: str, tasks: list[EvalTask], judges: dict[str, GenerateConfig], batch_size: int,
    log_dir: Path, model_path: str | None = None,
) -> EvalResult:
    """Evaluate the backend's current weights on `tasks` in one `inspect_ai.eval` of its own;
    Inspect logs go to `log_dir`. Arguments as for `stage_tasks`; the loop runs its evaluations
    as stages of its task source instead (loop/rounds.py)."""
    try:
        logs = inspect_ai.eval(stage_tasks(backend, backend_name, tasks, judges, model_path),
                               log_dir=str(log_dir), **eval_options(tasks, batch_size))
    finally:
        backend.end_sampling()  # a sharded backend still serves the other processes' evaluations
    return stage_result(tasks, logs)


def _task_result(task: EvalTask, log: EvalLog) -> TaskResult:
    if log.status != "success":
        message = log.error.message if log.error else log.status
        raise RuntimeError(f"evaluation of task {task.name} failed: {message}")
    headline = task_score(log)
    if headline is not None and not 0.0 <= headline.value <= 1.0:
        raise UsageError(
            f"task {task.name}: its metric {headline.scorer}/{headline.metric} is {headline.value:g}; the bar needs a "
            "score in 0..1: set `scorer` on this task in eval_tasks."
        )
    return TaskResult.from_samples(
        [sample_result(task.name, s) for s in log.samples or []],
        name=task.name, role=task.role, weight=task.weight, threshold=task.threshold, scorer=task.scorer,
        generation=task.generation, log_path=log.location, headline=headline,
    )


def sample_result(task_name: str, s) -> SampleResult:
    """The result of the Inspect sample `s` of task `task_name`, by its first scorer (the task's score,
    evals/scores.py); UsageError when that score is not one value in 0..1."""
    score = next(iter(s.scores.values()))
    if isinstance(score.value, (dict, list)):
        raise UsageError(
            f"task {task_name}: its scorer gives several values per sample ({score.value!r}); "
            "inspect-tinker needs one: set `scorer` on this task in eval_tasks."
        )
    value = _to_float(score.value)
    scored = not math.isnan(value)  # Inspect's unscored marker, e.g. a judge's unreadable grade
    if scored and not 0.0 <= value <= 1.0:
        raise UsageError(
            f"task {task_name}: its scorer gave {score.value!r} for sample {s.id}; the bar needs values in 0..1: "
            "set `scorer` on this task in eval_tasks."
        )
    value = value if scored else 0.0
    target = s.target if isinstance(s.target, str) else s.target[0]
    return SampleResult(
        id=str(s.id),
        question=s.input if isinstance(s.input, str) else s.input[-1].text,
        expected=target,
        answer=s.output.completion,
        value=value,
        correct=value >= 0.5,
        scored=scored,
        epoch=s.epoch,
    )

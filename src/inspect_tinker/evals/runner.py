"""Run the built tasks against an engine's current weights and extract an EvalResult."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import inspect_ai
from inspect_ai import Task
from inspect_ai.log import EvalLog
from inspect_ai.scorer import value_to_float

from inspect_tinker.engines.base import TrainingEngine
from inspect_tinker.errors import UsageError
from inspect_tinker.evals.provider import engine_model, register_engine, release_engine_model
from inspect_tinker.evals.result import EvalResult, SampleResult, TaskResult

# Inspect opens a control socket per eval unless told not to; we need none.
os.environ.setdefault("INSPECT_EVAL_CTL_SERVER", "false")

_to_float = value_to_float()

# The provider name under which evaluation registers the engine with its adapter switched off:
# the local base model as the judge of model-graded scorers.
BASE_JUDGE = "base-model-judge"


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


def evaluate(engine: TrainingEngine, tasks: list[EvalTask], batch_size: int, log_dir: Path, label: str) -> EvalResult:
    """Evaluate the engine's current weights on `tasks`, `batch_size` questions at a time;
    Inspect logs go to `log_dir`.

    `label` names this evaluation's model (for example `myrun-round-2`) in the logs. The
    base model (adapter off) answers as the judge of model-graded scorers meanwhile.
    """
    model = engine_model(engine, label, batch_size)
    register_engine(engine, BASE_JUDGE, batch_size, with_adapter=False)
    try:
        logs = inspect_ai.eval(
            [t.task for t in tasks],
            model=model,
            log_dir=str(log_dir),
            display="none",
            log_level="error",
            max_tasks=len(tasks),
            max_connections=batch_size,
            max_samples=batch_size,
            score_display=False,
        )
    finally:
        engine.end_sampling()  # a sharded engine still serves the other processes' evaluations
        release_engine_model(BASE_JUDGE)
        release_engine_model(label)
    by_name = {log.eval.task: log for log in logs}
    return EvalResult.combine([_task_result(t, by_name[t.name]) for t in tasks])


def _task_result(task: EvalTask, log: EvalLog) -> TaskResult:
    if log.status != "success":
        message = log.error.message if log.error else log.status
        raise RuntimeError(f"evaluation of task {task.name} failed: {message}")
    return TaskResult.from_samples(
        [_sample_result(task.name, s) for s in log.samples or []],
        name=task.name, role=task.role, weight=task.weight, threshold=task.threshold, scorer=task.scorer,
        generation=task.generation, log_path=log.location,
    )


def _sample_result(task_name: str, s) -> SampleResult:
    # A task may carry several scorers; the first one is the task's score.
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
    )

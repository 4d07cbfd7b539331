"""Evaluation: Inspect AI tasks run against the engine's current weights -> EvalResult.

Importing this package registers the built-in tasks with Inspect (`inspect_tinker/qa`,
`inspect_tinker/multiple_choice`, `inspect_tinker/general_knowledge`); it is also the package's
`inspect_ai` entry point, so `inspect eval inspect_tinker/general_knowledge` finds them.
"""

from inspect_tinker.evals.history import mark_changes, sample_history
from inspect_tinker.evals.result import EvalResult, SampleResult, TaskResult
from inspect_tinker.evals.runner import evaluate
from inspect_tinker.evals.tasks import EvalTask, adds_guard, build_tasks

__all__ = [
    "EvalResult", "EvalTask", "SampleResult", "TaskResult", "adds_guard", "build_tasks", "evaluate", "mark_changes", "sample_history",
]

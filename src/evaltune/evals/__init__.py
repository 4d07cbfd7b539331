"""Evaluation: Inspect AI tasks run against the engine's current weights -> EvalResult.

Importing this package registers the built-in tasks with Inspect (`evaltune/qa`,
`evaltune/multiple_choice`, `evaltune/general_knowledge`); it is also the package's
`inspect_ai` entry point, so `inspect eval evaltune/general_knowledge` finds them.
"""

from evaltune.evals.history import mark_changes, sample_history
from evaltune.evals.result import EvalResult, SampleResult, TaskResult
from evaltune.evals.runner import evaluate
from evaltune.evals.tasks import EvalTask, adds_guard, build_tasks

__all__ = [
    "EvalResult", "EvalTask", "SampleResult", "TaskResult", "adds_guard", "build_tasks", "evaluate", "mark_changes", "sample_history",
]

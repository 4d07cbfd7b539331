"""Evaluation: Inspect AI tasks run against the engine's current weights -> EvalResult."""

from evaltune.evals.result import EvalResult, SampleResult, TaskResult
from evaltune.evals.runner import build_tasks, evaluate

__all__ = ["EvalResult", "SampleResult", "TaskResult", "build_tasks", "evaluate"]

"""EvalResults built from per-sample outcomes, for tests of the policies that read them."""

from __future__ import annotations

from inspect_tinker.evals.result import EvalResult, SampleResult, TaskResult


def task_result(name: str, correct: list[bool], **fields) -> TaskResult:
    """A TaskResult whose samples `s0, s1, ...` are right where `correct` says so."""
    samples = [SampleResult(f"s{i}", f"q{i}?", "x", "y", float(c), c) for i, c in enumerate(correct)]
    return TaskResult.from_samples(samples, name=name, **fields)


def eval_result(*tasks: TaskResult) -> EvalResult:
    return EvalResult.combine(list(tasks))

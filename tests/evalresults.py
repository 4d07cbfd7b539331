"""EvalResults built from per-sample outcomes, for tests of the policies that read them."""

from __future__ import annotations

from inspect_tinker.evals.result import EvalResult, SampleResult, TaskResult


def task_result(name: str, correct: list[bool], **fields) -> TaskResult:
    """A TaskResult whose samples `s0, s1, ...` are right where `correct` says so."""
    samples = [SampleResult(f"s{i}", f"q{i}?", "x", "y", float(c), c) for i, c in enumerate(correct)]
    return TaskResult.from_samples(samples, name=name, **fields)


def eval_result(*tasks: TaskResult) -> EvalResult:
    return EvalResult.combine(list(tasks))


def scripted_scores(monkeypatch, scores: dict[int, float]):
    """The loop's evaluation of round n scores `scores[n]`: ten samples, that fraction of them right.

    Inspect still runs the round's tasks (the logs are real); only their scores are replaced,
    so that regressions happen on cue.
    """

    def scripted_result(tasks, logs):
        right = round(scores[logs[0].eval.metadata["inspect_tinker"]["round"]] * 10)
        return eval_result(task_result("eval", [i < right for i in range(10)]))

    monkeypatch.setattr("inspect_tinker.loop.evaluation.stage_result", scripted_result)

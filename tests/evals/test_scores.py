"""One reading of a task's score (evals/scores.py) for the loop and the tracking hooks: the task's
own headline metric, also when that metric is not a mean of the sample values."""

from __future__ import annotations

import inspect_ai
import pytest
from inspect_ai import Task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import SampleScore, includes, metric, value_to_float

from inspect_tinker.evals.runner import EvalTask, stage_result
from inspect_tinker.evals.scores import task_score
from inspect_tinker.tracking.task_events import task_finished

# mockllm answers "Default output from mockllm/model" to everything: `includes` finds the first
# target in it and not the other two, so the mean of the sample values is 1/3.
SAMPLES = [Sample(id="found", input="Say it.", target="default output"),
           Sample(id="missed", input="Say it.", target="Paris"), Sample(id="also-missed", input="Say it.", target="Rome")]


@metric
def all_right():
    """1 when every sample is right, else 0: a task-level verdict, not a mean."""
    to_float = value_to_float()

    def compute(scores: list[SampleScore]) -> float:
        return float(all(to_float(s.score.value) == 1.0 for s in scores))

    return compute


def evaluated(task: Task, tmp_path, monkeypatch, offline_tiktoken):
    for name, value in offline_tiktoken.items():
        monkeypatch.setenv(name, value)
    [log] = inspect_ai.eval(task, model="mockllm/model", log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success"
    return log


def loop_reading(log):
    """The score the loop holds against its bar, and its interval."""
    task = EvalTask(task=None, name=log.eval.task, role="gate", weight=1.0, threshold=None, scorer="includes",
                    generation={})
    result = stage_result([task], [log]).tasks[0]
    return result.score, (result.ci_low, result.ci_high)


def test_a_task_whose_metric_is_not_a_mean_is_scored_by_that_metric_for_the_loop_and_the_hooks(
    tmp_path, monkeypatch, offline_tiktoken,
):
    log = evaluated(Task(name="verdict", dataset=SAMPLES, scorer=includes(), metrics=[all_right()]),
                    tmp_path, monkeypatch, offline_tiktoken)
    assert task_score(log).value == 0.0  # not 1/3, the mean of the samples
    score, interval = loop_reading(log)
    assert score == task_finished(log)["score"] == 0.0
    assert interval == (0.0, 1.0)  # the task reports no stderr: nothing bounds such a metric's spread


def test_a_mean_metric_reads_the_same_for_the_loop_and_the_hooks_with_the_samples_interval(
    tmp_path, monkeypatch, offline_tiktoken,
):
    log = evaluated(Task(name="mean", dataset=SAMPLES, scorer=includes()), tmp_path, monkeypatch, offline_tiktoken)
    score, (low, high) = loop_reading(log)
    assert score == task_finished(log)["score"] == pytest.approx(1 / 3)
    assert 0.0 < low < 1 / 3 < high < 1.0  # the samples' own (Wilson) interval
    assert task_score(log).metric == "accuracy" and task_score(log).stderr == pytest.approx(1 / 3)

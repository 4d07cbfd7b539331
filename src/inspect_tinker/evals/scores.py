"""A task's score as its Inspect log states it, read one way for the loop (evals/runner.py) and the
tracking hooks (tracking/task_events.py).

The score is the task's own headline: its first scorer's first numeric metric, the number
`inspect eval` prints first and `inspect view` shows, computed by the metrics the task defines
(a mean such as `accuracy`, or any other). Inspect leaves unscored samples (a judge's unreadable
grade, `Score.unscored`) out of every metric, so they count towards no score here either; their
number is reported beside it (TaskResult.n_unscored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskScore:
    """The headline of one task's log: `value` of metric `metric` of scorer `scorer`, with that
    scorer's `stderr` metric where the task computes one (None otherwise)."""

    scorer: str
    metric: str
    value: float
    stderr: float | None


def task_score(log) -> TaskScore | None:
    """The headline score of the Inspect `EvalLog` `log`; None when it has no numeric metric
    (no scorer, an unfinished task, no sample scored, or metrics whose values are all dictionaries)."""
    for scored in log.results.scores if log.results else []:
        for name, metric in scored.metrics.items():
            if _is_number(metric.value) and name != "stderr":
                stderr = scored.metrics.get("stderr")
                return TaskScore(scored.name, name, float(metric.value),
                                 float(stderr.value) if stderr is not None and _is_number(stderr.value) else None)
    return None


def metric_values(log) -> dict[str, float]:
    """Every numeric metric of `log`, as `<scorer>/<metric>`: value."""
    return {
        f"{scored.name}/{name}": float(metric.value)
        for scored in (log.results.scores if log.results else [])
        for name, metric in scored.metrics.items()
        if _is_number(metric.value)
    }


def _is_number(value) -> bool:
    # NaN is Inspect's "no value": a metric over no scored sample at all.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)

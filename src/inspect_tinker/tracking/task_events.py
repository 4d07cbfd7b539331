"""A finished Inspect task as one plain event (`task_finished`), for the tracking hooks.

The hooks (tracking/hooks.py) see each task's full `EvalLog`; this turns it into the dict that
is recorded in the hook's events.jsonl and that each destination (EvalOps, MLflow, webhooks
through tracking/alerts.py) reads. Fields:

    task, task_id, eval_id, inspect_run_id, model   str   as in the log's `eval`
    status      str          success, error or cancelled
    error       str | null   the task's error message
    log         str | null   the log file (`inspect view` opens it)
    tags        list[str]    the task's tags
    score       float | null the headline score: the first scorer's first metric (accuracy for
                             qa_grader), the number `inspect eval` prints first
    scores      dict         every numeric metric as `<scorer>/<metric>`: value
    samples     int          samples completed
    threshold   float | null the bar of a task outside a loop (a loop task's bar is loop.threshold)
    loop        dict | null  the loop's entry in the task's metadata (tracking/task_metadata.py), or null for a
                             plain `inspect eval` task
    training    dict | null  a loop training task's per-step record (losses, learning_rates,
                             global_step_start), from its one sample's metadata
"""

from __future__ import annotations

from inspect_ai.log import read_eval_log

from inspect_tinker.tracking.task_metadata import loop_metadata


def task_finished(log, threshold: float | None = None) -> dict:
    """The `task_finished` event's fields for the Inspect `EvalLog` `log` (see the module docstring);
    `threshold` is the bar of a task that is not part of a loop."""
    spec = log.eval
    scores: dict[str, float] = {}
    headline = None
    for eval_score in (log.results.scores if log.results else []):
        for metric_name, metric in eval_score.metrics.items():
            if isinstance(metric.value, (int, float)):
                scores[f"{eval_score.name}/{metric_name}"] = float(metric.value)
                headline = float(metric.value) if headline is None else headline
    loop = loop_metadata(spec.metadata)
    return {
        "task": spec.task, "task_id": spec.task_id, "eval_id": spec.eval_id, "inspect_run_id": spec.run_id,
        "model": spec.model, "status": log.status, "error": log.error.message if log.error else None,
        "log": log.location or None, "tags": list(spec.tags or []), "score": headline, "scores": scores,
        "samples": log.results.completed_samples if log.results else 0, "threshold": threshold,
        "loop": loop,
        "training": _training(log) if loop and loop.get("stage") == "train" else None,
    }


def _training(log) -> dict | None:
    # The loop's contract: a training task has one sample whose metadata holds the round's steps.
    # The log a hook is handed holds no samples (Inspect streams them to the file), so read it back.
    samples = log.samples or (read_eval_log(log.location).samples if log.location else None)
    metadata = samples[0].metadata if samples else {}
    if "losses" not in metadata:
        return None
    return {key: metadata.get(key) for key in ("losses", "learning_rates", "global_step_start")}

"""A finished Inspect task as one plain event (`task_finished`), for the tracking hooks.

The hooks (tracking/hooks.py) see each task's full `EvalLog`; this turns it into the dict that
is recorded in the hook's events.jsonl and that each destination (EvalOps, MLflow, webhooks
through tracking/alerts.py) reads. Fields:

    task, task_id, eval_id, inspect_run_id, model   str   as in the log's `eval`
    status      str          success, error or cancelled
    error       str | null   the task's error message
    log         str | null   the log file (`inspect view` opens it)
    tags        list[str]    the task's tags
    score       float | null the task's headline score, read as the loop reads it (evals/scores.py):
                             the first scorer's first metric (accuracy for qa_grader), the number
                             `inspect eval` prints first
    scores      dict         every numeric metric as `<scorer>/<metric>`: value
    samples     int          samples completed
    threshold   float | null the bar of a task outside a loop (a loop task's bar is loop.threshold)
    loop        dict | null  the loop's entry in the task's metadata (tracking/task_metadata.py), or null for a
                             plain `inspect eval` task
    first_score float | null a loop's regression guard task: its score at the run's first evaluation, from
                             the run folder's events (null for other tasks, or when there was none before)
    training    dict | null  a loop training task's per-step record (losses, learning_rates,
                             global_step_start), from its one sample's metadata
"""

from __future__ import annotations

from pathlib import Path

from inspect_ai.log import read_eval_log

from inspect_tinker.evals.result import EvalResult
from inspect_tinker.evals.scores import metric_values, task_score
from inspect_tinker.tracking.run_folder import RunFolder
from inspect_tinker.tracking.task_metadata import loop_metadata


def task_finished(log, threshold: float | None = None) -> dict:
    """The `task_finished` event's fields for the Inspect `EvalLog` `log` (see the module docstring);
    `threshold` is the bar of a task that is not part of a loop."""
    spec = log.eval
    headline = task_score(log)
    loop = loop_metadata(spec.metadata)
    return {
        "task": spec.task, "task_id": spec.task_id, "eval_id": spec.eval_id, "inspect_run_id": spec.run_id,
        "model": spec.model, "status": log.status, "error": log.error.message if log.error else None,
        "log": log.location or None, "tags": list(spec.tags or []), "score": headline.value if headline else None, "scores": metric_values(log),
        "samples": log.results.completed_samples if log.results else 0, "threshold": threshold,
        "loop": loop,
        "first_score": _first_score(loop, spec.task) if loop and loop.get("role") == "guard" else None,
        "training": _training(log) if loop and loop.get("stage") == "train" else None,
    }


def _first_score(loop: dict, task: str) -> float | None:
    """Task `task`'s score at the first evaluation its run recorded (None: none yet, or no run folder to read)."""
    if not isinstance(loop.get("run_dir"), str) or not loop["run_dir"]:
        return None
    try:
        events = RunFolder(Path(loop["run_dir"])).read_events()
    except OSError:  # no run folder where the metadata says: nothing to compare with
        return None
    first = next((EvalResult.from_dict(e) for e in events if e["event"] == "eval_result"), None)
    found = first.task(task) if first else None
    return found.score if found else None


def _training(log) -> dict | None:
    # The loop's contract: a training task has one sample whose metadata holds the round's steps.
    # The log a hook is handed holds no samples (Inspect streams them to the file), so read it back.
    samples = log.samples or (read_eval_log(log.location).samples if log.location else None)
    metadata = samples[0].metadata if samples else {}
    if "losses" not in metadata:
        return None
    return {key: metadata.get(key) for key in ("losses", "learning_rates", "global_step_start")}

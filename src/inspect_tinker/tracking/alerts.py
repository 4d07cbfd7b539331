"""Alerts: what in a run needs a person, derived from its events and recorded as `alert` events.

- `round_below_best`: a round scored below the best evaluation before it (the baseline included);
- `bar_not_met`: the run finished without reaching the bar;
- `run_crashed`: the run stopped on an error, or its process was found dead (`crash_detected`,
  see tracking/crashes.py), or an Inspect task ended in error (`task_finished`);
- `task_below_bar`: an Inspect task (`task_finished`, from the tracking hooks) scored below its bar;
- `regression_guard_fell`: a loop's regression guard task (role `guard`) scored below its score at the
  run's first evaluation (policies/alerts.py states the rule, for the loop's own alerts too).
"""

from __future__ import annotations

from inspect_tinker.policies.alerts import GUARD_MEANING, guard_fall


class AlertWatch:
    """Follows a run's events and says which alerts each one raises."""

    def __init__(self) -> None:
        self._best: tuple[int, float] | None = None  # (round, score) of the best evaluation so far

    def alerts(self, event: dict) -> list[dict]:
        """The fields of the `alert` events that `event` raises: `alert` (the kind), `message`
        (a sentence for a person) and the numbers behind it."""
        kind = event["event"]
        if kind == "eval_result":
            best, round_no, score = self._best, event["round"], event["score"]
            if best is None or score > best[1]:
                self._best = (round_no, score)
            if best is not None and score < best[1]:
                return [{
                    "alert": "round_below_best",
                    "message": f"round {round_no} scored {score:.3f}, below the best so far ({best[1]:.3f} in round {best[0]}).",
                    "round": round_no, "score": score, "best_round": best[0], "best_score": best[1],
                }]
        elif kind == "run_finished" and not event["bar_met"]:
            return [{
                "alert": "bar_not_met",
                "message": f"bar not met after the last round: best score {event['best_score']:.3f} "
                           f"(bar {event['threshold']}) in round {event['best_round']} after {event['rounds_run']} round(s).",
                **{key: event[key] for key in ("best_score", "best_round", "threshold", "rounds_run", "best_adapter")},
            }]
        elif kind == "task_finished":
            return _task_alerts(event)
        elif kind in ("error", "crash_detected"):
            named = {"run": event["run"]} if "run" in event else {}  # a hook's error names its Inspect run
            return [{"alert": "run_crashed", "message": f"crashed: {event['message']}", "error": event["message"], **named}]
        return []


def _task_alerts(event: dict) -> list[dict]:
    """The alerts of one finished Inspect task: its error; a loop's regression guard that fell
    (policies/alerts.guard_fall); or its score below the bar (the loop's `threshold` for a loop task,
    the `threshold` the hook was given for any other)."""
    loop = event["loop"] or {}
    task, score = event["task"], event["score"]
    where = f" (round {loop['round']})" if loop else ""
    run = loop.get("run") or event["inspect_run_id"]
    if event["status"] != "success":
        message = f"crashed: task {task}{where} ended in {event['status']}: {event['error'] or 'no error message'}"
        return [{"alert": "run_crashed", "message": message, "error": event["error"], "task": task, "run": run}]
    if loop.get("stage") == "train" or score is None:
        return []  # a training task's score is its loss, not a grade held against the bar
    numbers = {"task": task, "run": run, "score": score, "log": event["log"], **({"round": loop["round"]} if loop else {})}
    if loop.get("role") == "guard":  # it never gates: it falls below where it started, or not at all
        fell = guard_fall(task, event["first_score"], score)
        return [] if fell is None else [{
            "alert": "regression_guard_fell", "message": f"{fell}{where}: {GUARD_MEANING}.",
            "first_score": event["first_score"], **numbers,
        }]
    bar = loop.get("threshold") if loop else event.get("threshold")
    if bar is None or score >= bar:
        return []
    return [{"alert": "task_below_bar", "message": f"task {task}{where} scored {score:.3f}, below the bar {bar}.",
             "threshold": bar, **numbers}]

"""Alerts: what in a run needs a person, derived from its events and recorded as `alert` events.

- `round_below_best`: a round scored below the best evaluation before it (the baseline included);
- `bar_not_met`: the run finished without reaching the bar;
- `run_crashed`: the run stopped on an error, or its process was found dead (`crash_detected`,
  see tracking/crashes.py).
"""

from __future__ import annotations


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
        elif kind in ("error", "crash_detected"):
            return [{"alert": "run_crashed", "message": f"crashed: {event['message']}", "error": event["message"]}]
        return []

"""Webhooks: a JSON POST when a run needs a person: the bar not met after the last round, a round
scoring below the best before it, a crashed run, a finished run (chosen with `webhook_events`).

The body is Slack-compatible (`text`) and carries structured fields for other receivers
(`alert`, `run`, `run_id`, `run_dir`, `idempotency_key`, and the alert's numbers).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from evaltune.tracking.delivery import post_json


class WebhookDestination:
    """Alerts derived from the event stream, POSTed to one URL (held by the secret `secret_name`)."""

    def __init__(self, secret_name: str, url: str, alerts: list[str], timeout_seconds: float):
        self.name = f"webhook:{secret_name}"  # the secret's name, never its value
        self._url = url
        self._alerts = set(alerts)
        self._client = httpx.Client(timeout=timeout_seconds)
        self._run_dir: str | None = None
        self._best: tuple[int, float] | None = None  # (round, score) of the best evaluation so far

    def payloads(self, event: dict) -> list[tuple[str, dict]]:
        out = []
        for alert, text, fields in self._alerts_in(event):
            if alert in self._alerts:
                key = f"{event['id']}:{alert}"
                run = Path(self._run_dir).name if self._run_dir else event["run_id"]
                out.append((key, {
                    "text": f"evaltune run {run}: {text}", "alert": alert, "run": run, "run_id": event["run_id"],
                    "run_dir": self._run_dir, "time": event["time"], "idempotency_key": key, **fields,
                }))
        return out

    def send(self, key: str, payload: dict) -> None:
        post_json(self._client, self._url, payload, key)

    def _alerts_in(self, event: dict) -> list[tuple[str, str, dict]]:
        """(alert, sentence, fields) for each alert that `event` raises, chosen or not."""
        kind = event["event"]
        if kind == "run_started":
            self._run_dir = event["run_dir"]
        elif kind == "eval_result":
            score, round_no, best = event["score"], event["round"], self._best
            if best is None or score > best[1]:
                self._best = (round_no, score)
            if best is not None and score < best[1]:
                return [("round_below_best", f"round {round_no} scored {score:.3f}, below the best so far "
                         f"({best[1]:.3f} in round {best[0]}).",
                         {"round": round_no, "score": score, "best_round": best[0], "best_score": best[1]})]
        elif kind == "run_finished":
            fields = {key: event[key] for key in ("bar_met", "best_score", "best_round", "threshold", "rounds_run", "best_adapter")}
            outcome = (f"best score {event['best_score']:.3f} (bar {event['threshold']}) in round {event['best_round']} "
                       f"after {event['rounds_run']} round(s).")
            alerts = [("run_finished", f"finished, bar {'met' if event['bar_met'] else 'not met'}: {outcome}", fields)]
            if not event["bar_met"]:
                alerts.append(("bar_not_met", f"bar not met after the last round: {outcome} Run folder: {event['run_dir']}", fields))
            return alerts
        elif kind == "error":
            return [("run_crashed", f"crashed: {event['message']}", {"message": event["message"]})]
        return []

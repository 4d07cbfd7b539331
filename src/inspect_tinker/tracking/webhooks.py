"""Webhooks: a JSON POST to each configured URL on the `alert` events chosen in `webhook_events`
(bar_not_met, round_below_best, run_crashed) and, when chosen, on `run_finished`.

The body is Slack-compatible (`text`) and carries structured fields for other receivers:
`alert`, `run`, `run_id`, `run_dir`, `time`, `idempotency_key`, and the alert's numbers.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from inspect_tinker.tracking.delivery import post_json

# Fields every event carries; the rest of an alert event are its numbers.
_ENVELOPE = {"event", "seq", "id", "run_id", "time", "alert", "message"}


class WebhookDestination:
    """POSTs the chosen alerts to one URL (held by the secret `secret_name`)."""

    def __init__(self, secret_name: str, url: str, chosen: list[str], timeout_seconds: float):
        self.name = f"webhook:{secret_name}"  # the secret's name, never its value
        self._url = url
        self._chosen = set(chosen)
        self._client = httpx.Client(timeout=timeout_seconds)
        self._run_dir: str | None = None

    def payload(self, event: dict) -> tuple[str, dict] | None:
        kind = event["event"]
        if kind == "run_started":
            self._run_dir = event["run_dir"]
        if kind == "alert" and event["alert"] in self._chosen:
            alert, text = event["alert"], event["message"]
            fields = {k: v for k, v in event.items() if k not in _ENVELOPE}
        elif kind == "run_finished" and "run_finished" in self._chosen:
            alert = "run_finished"
            text = (f"finished, bar {'met' if event['bar_met'] else 'not met'}: best score {event['best_score']:.3f} "
                    f"(bar {event['threshold']}) in round {event['best_round']} after {event['rounds_run']} round(s).")
            fields = {k: event[k] for k in ("bar_met", "best_score", "best_round", "threshold", "rounds_run", "best_adapter")}
        else:
            return None
        # A hook's task alert names its run itself (the loop's run, or the Inspect run id of a plain eval).
        run = event.get("run") or (Path(self._run_dir).name if self._run_dir else event["run_id"])
        return event["id"], {
            "text": f"inspect-tinker run {run}: {text}", "alert": alert, "run": run, "run_id": event["run_id"],
            "run_dir": self._run_dir, "time": event["time"], "idempotency_key": event["id"], **fields,
        }

    def send(self, key: str, payload: dict) -> None:
        post_json(self._client, self._url, payload, key)

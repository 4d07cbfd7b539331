"""MLflow: one MLflow run per inspect-tinker run, through the MLflow client library.

Parameters: the resolved configuration (config.json, flattened). Metrics: per step `train/loss`
and `train/learning_rate`; per round `eval/score` and `eval/<task>/score` (step = round),
`train/tokens_per_second`, and what the round used: `usage/tokens_trained`,
`usage/tokens_prefilled`, `usage/tokens_sampled`, and when priced `usage/cost` and
`usage/total_cost`. Artifacts: `rounds/<n>/adapter/`, `rounds/<n>/eval/` (Inspect logs), and
at the end `summary.json` and `events.jsonl`. Tag `inspect_tinker.outcome`: bar_met,
bar_not_met, crashed or interrupted.

The tracking hook (tracking/hooks.py) adds one MLflow run per finished Inspect task
(`task_finished`), found again by its `inspect.eval_id` tag: parameters task, model and, for a
loop task, run, round, stage, role, learning_rate and checkpoint; metrics `<scorer>/<metric>`
(step = the loop's round, else 0) and `samples`; for a loop's training task `train/loss` and
`train/learning_rate` per step; status FINISHED, or FAILED for a task that ended in error.

Every delivery is idempotent, so a repeated one changes nothing: the run is found again by its
`inspect_tinker.run_id` tag, metrics carry the event's own timestamp and step (MLflow's SQL store keeps
one row per key, timestamp, step and value), parameters and tags are rewritten with equal
values, and artifacts are overwritten.

`mlflow_tracking_uri` is a server (http://..., databricks, ...), a database (sqlite:///...), or a
local folder, which becomes `<folder>/mlflow.db` with artifacts in `<folder>/artifacts`: MLflow 3
refuses its old plain-folder store.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from inspect_tinker.tracking.delivery import DeliveryError, is_permanent_status

_OUTCOME = {"error": ("crashed", "FAILED"), "interrupted": ("interrupted", "KILLED")}


def local_store(tracking_uri: str) -> tuple[str, str | None]:
    """(the URI the client uses, the artifact location of new experiments) for `mlflow_tracking_uri`."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("", "file"):
        return tracking_uri, None
    folder = Path(parts.path if parts.scheme else tracking_uri).absolute()
    return f"sqlite:///{folder / 'mlflow.db'}", str(folder / "artifacts")


class MLflowDestination:
    """Logs the run's events to MLflow; the client is created in the delivery thread on first use
    (importing MLflow and opening a database take seconds that training should not wait for)."""

    name = "mlflow"
    _LOGGED = (
        "run_started", "step", "round_trained", "checkpoint_saved", "eval_result", "run_finished", "error", "interrupted",
        "task_finished",
    )

    def __init__(self, tracking_uri: str, experiment: str, timeout_seconds: float):
        self._uri, self._artifact_location = local_store(tracking_uri)
        self._experiment = experiment
        self._timeout_seconds = timeout_seconds
        self._client = None
        self._experiment_id: str | None = None
        self._runs: dict[str, str] = {}  # inspect-tinker run_id (Inspect eval id of a task) -> MLflow run id
        self._run_dir: str | None = None

    def payload(self, event: dict) -> tuple[str, dict] | None:
        if event["event"] == "run_started":
            self._run_dir = event["run_dir"]
        # Each payload names the run folder, so that it can be delivered alone (by `inspect-tinker sync`).
        return (event["id"], {**event, "run_dir": self._run_dir}) if event["event"] in self._LOGGED else None

    def send(self, key: str, payload: dict) -> None:
        from mlflow.exceptions import MlflowException

        try:
            client = self._connect()
            run_id = self._run_for(client, payload)
            getattr(self, f"_log_{payload['event']}")(client, run_id, payload)
        except MlflowException as err:
            raise DeliveryError(str(err), permanent=is_permanent_status(err.get_http_status_code())) from None

    def _connect(self):
        if self._client is None:
            # The client's own retries wait minutes by default; the delivery lane retries instead,
            # bounded by the run's flush deadline. setdefault: values the user set win.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(math.ceil(self._timeout_seconds)))
            from mlflow import MlflowClient

            if self._artifact_location is not None:
                Path(self._artifact_location).parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(self._uri)
        return self._client

    def _run_for(self, client, event: dict) -> str:
        """The MLflow run of the event's inspect-tinker run (of its Inspect task, for `task_finished`),
        found by tag or created."""
        if event["event"] == "task_finished":
            tag, key, name = "inspect.eval_id", event["eval_id"], event["task"]
        else:
            tag, key = "inspect_tinker.run_id", event["run_id"]
            name = Path(event["run_dir"]).name if event["run_dir"] else key
        if key not in self._runs:
            if self._experiment_id is None:
                found = client.get_experiment_by_name(self._experiment)
                self._experiment_id = found.experiment_id if found else client.create_experiment(
                    self._experiment, artifact_location=self._artifact_location
                )
            runs = client.search_runs([self._experiment_id], filter_string=f"tags.`{tag}` = '{key}'", max_results=1)
            self._runs[key] = runs[0].info.run_id if runs else client.create_run(
                self._experiment_id, run_name=name, tags={tag: key}
            ).info.run_id
        return self._runs[key]

    def _log_run_started(self, client, run_id: str, e: dict) -> None:
        from mlflow.entities import Param, RunTag

        if e.get("resumed"):
            # MLflow parameters cannot change; a resume with --force may have changed keys (an event says which).
            client.update_run(run_id, status="RUNNING")
            return
        config = json.loads((Path(e["run_dir"]) / "config.json").read_text(encoding="utf-8"))
        params = [Param(key, value) for key, value in _flatten(config).items()]
        client.log_batch(run_id, params=params, tags=[RunTag("inspect_tinker.run_dir", e["run_dir"])])

    def _log_step(self, client, run_id: str, e: dict) -> None:
        self._metrics(client, run_id, e, e["step"], {"train/loss": e["loss"], "train/learning_rate": e["learning_rate"]})

    def _log_round_trained(self, client, run_id: str, e: dict) -> None:
        self._metrics(client, run_id, e, e["round"], {"train/tokens_per_second": e["tokens_per_second"]})

    def _log_checkpoint_saved(self, client, run_id: str, e: dict) -> None:
        client.log_artifacts(run_id, e["path"], f"rounds/{e['round']}/adapter")

    def _log_eval_result(self, client, run_id: str, e: dict) -> None:
        scores = {"eval/score": e["score"], **{f"eval/{t['name']}/score": t["score"] for t in e["tasks"]}}
        usage = {f"usage/{k}": v for k, v in (e.get("usage") or {}).items() if v is not None}
        self._metrics(client, run_id, e, e["round"], {**scores, **usage})
        for task in e["tasks"]:
            client.log_artifact(run_id, task["log_path"], f"rounds/{e['round']}/eval")

    def _log_task_finished(self, client, run_id: str, e: dict) -> None:
        from mlflow.entities import Metric, Param, RunTag

        loop = e["loop"] or {}
        params = {"task": e["task"], "model": e["model"],
                  **{key: loop[key] for key in ("run", "round", "stage", "role", "learning_rate", "checkpoint") if key in loop}}
        tags = {"inspect.run_id": e["inspect_run_id"], "inspect.task": e["task"], "inspect.model": e["model"],
                "inspect.status": e["status"], **({"inspect.log": e["log"]} if e["log"] else {})}
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()],
                         tags=[RunTag(k, v) for k, v in tags.items()])
        self._metrics(client, run_id, e, loop.get("round", 0), {**e["scores"], "samples": e["samples"]})
        if training := e["training"]:
            start, timestamp = training.get("global_step_start") or 0, _millis(e["time"])
            steps = [("train/loss", v) for v in training["losses"]], [("train/learning_rate", v) for v in training.get("learning_rates") or []]
            # One batch per series: a round's steps stay well under log_batch's 1000 metrics.
            for series in filter(None, steps):
                client.log_batch(run_id, metrics=[Metric(key, value, timestamp, start + i) for i, (key, value) in enumerate(series)])
        client.set_terminated(run_id, "FINISHED" if e["status"] == "success" else "FAILED", end_time=_millis(e["time"]))

    def _log_run_finished(self, client, run_id: str, e: dict) -> None:
        from mlflow.entities import RunTag

        self._metrics(client, run_id, e, 0, {"best_score": e["best_score"]})
        outcome = "bar_met" if e["bar_met"] else "bar_not_met"
        client.log_batch(run_id, tags=[RunTag("inspect_tinker.outcome", outcome), RunTag("inspect_tinker.best_round", str(e["best_round"]))])
        self._finish(client, run_id, e, "FINISHED")

    def _log_error(self, client, run_id: str, e: dict) -> None:
        from mlflow.entities import RunTag

        outcome, status = _OUTCOME[e["event"]]
        client.log_batch(run_id, tags=[RunTag("inspect_tinker.outcome", outcome), RunTag("inspect_tinker.message", e["message"][:5000])])
        self._finish(client, run_id, e, status)

    _log_interrupted = _log_error

    def _finish(self, client, run_id: str, e: dict, status: str) -> None:
        folder = Path(e["run_dir"])
        for name in ("summary.json", "events.jsonl"):
            if (folder / name).is_file():
                client.log_artifact(run_id, str(folder / name))
        client.set_terminated(run_id, status, end_time=_millis(e["time"]))

    @staticmethod
    def _metrics(client, run_id: str, e: dict, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        timestamp = _millis(e["time"])
        client.log_batch(run_id, metrics=[Metric(key, value, timestamp, step) for key, value in values.items()])


def _millis(iso_time: str) -> int:
    return int(datetime.fromisoformat(iso_time).timestamp() * 1000)


def _flatten(data: dict, prefix: str = "") -> dict[str, str]:
    """Nested config values as MLflow parameters: `generation.max_tokens`, `eval_tasks.0.path`."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            flat.update(_flatten({str(i): v for i, v in enumerate(value)}, f"{name}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat

"""Tracking as Inspect hooks, for any `inspect eval` (a plain one, or a loop's tasks).

Three hooks, each turned on by the environment (tracking/hook_settings.py lists the variables):

- `inspect_tinker/evalops`: every finished evaluation task becomes an EvalOps test run (its
  scores; for a loop task also its run, round, checkpoint and learning rate);
- `inspect_tinker/mlflow`: every finished task becomes an MLflow run with its metrics;
- `inspect_tinker/alerts`: webhooks when a task scores below its bar, a loop's regression guard
  falls below its bar, or a task or the whole run ends in error.

Each finished task is one `task_finished` event (tracking/task_events.py), recorded and
delivered through the same machinery as a loop run's events (tracking/events.py, delivery.py):
each hook keeps a folder per `inspect eval` run in the log dir,
`<log_dir>/inspect-tinker/<run id>/<hook>/` (config.json, events.jsonl, outbox.jsonl), so a
destination that cannot be reached loses nothing: what is undelivered when the run ends waits in
outbox.jsonl, and `inspect-tinker sync <log_dir>` delivers it later.

One owner per destination, so nothing is posted twice: a loop task (one whose metadata carries the
loop's entry) is left to the loop's own sinks for every destination the loop's configuration
turns on (`evalops_enabled`, `mlflow_tracking_uri`, `webhooks` in its run folder's config.json);
those post per round, with per-step losses. The hooks take loop tasks only for destinations the
loop's configuration leaves off, and every task of a plain `inspect eval`.

MLflow through our own destination rather than the `inspect-mlflow` package (checked: 0.9.0):
that package imports mlflow when Inspect loads its entry point, so every `inspect eval` pays for
it, and it suppresses every MLflow error, so a task logged while the server is down is lost with
no outbox and no retry; its runs are keyed by Inspect's fluent active run, not idempotent, so a
retried delivery would duplicate them. Ours imports mlflow only in the delivery thread, retries,
journals, and finds its runs again by tag (tracking/mlflow.py). Both can be installed together:
they log to different experiments (inspect-mlflow's `inspect_ai` unless MLFLOW_EXPERIMENT_NAME
says otherwise, in which case both log into it).

A hook's exception becomes a warning in Inspect (it cannot stop the eval); ours say what to fix.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from inspect_ai.hooks import Hooks, RunEnd, TaskEnd, hooks

from inspect_tinker.tracking.events import EventLog
from inspect_tinker.tracking.hook_settings import HookSettings, settings_from_environment
from inspect_tinker.tracking.run_folder import RunFolder, make_folder, write_json_atomic
from inspect_tinker.tracking.sinks import HOOK_KEY, hook_delivery
from inspect_tinker.tracking.task_events import task_finished

logger = logging.getLogger(__name__)


@dataclass
class _HookRun:
    """One hook's record of one `inspect eval` run: its folder and event log (with the Delivery sink)."""

    folder: RunFolder
    events: EventLog
    log_dir: Path


class _TrackingHook(Hooks):
    """What the three hooks share: a `task_finished` event per task, delivered through the hook's outbox."""

    hook: str  # the folder's name and hook_delivery's choice
    loop_config_key: str  # the key of a loop's configuration that makes the loop's sinks the owner

    def __init__(self) -> None:
        self._runs: dict[str, _HookRun] = {}  # by Inspect run id, created at the first task recorded
        self._seen: dict[str, dict[str, str]] = {}  # Inspect run id -> eval id -> status, of every task seen
        self._left_to_the_loop: set[str] = set()  # Inspect run ids with a task left to the loop's sinks

    async def on_task_end(self, data: TaskEnd) -> None:
        self._task_ended(data.run_id, data.log)

    async def on_run_end(self, data: RunEnd) -> None:
        # Inspect calls on_task_end only for tasks that got to scoring; one that crashed (its
        # solver raised, say) is only among the run's logs.
        for log in data.logs:
            if log.eval.eval_id not in self._seen.get(data.run_id, {}):
                self._task_ended(data.run_id, log)
        self._seen.pop(data.run_id, None)
        self._left_to_the_loop.discard(data.run_id)
        run = self._runs.pop(data.run_id, None)
        if run is None:
            return
        try:
            await asyncio.to_thread(run.events.close)  # waits up to delivery_flush_seconds
        finally:
            run.folder.release()
        report = next((e for e in reversed(run.folder.read_events()) if e["event"] == "delivery_report"), None)
        if report and report["outbox"]:
            missed = ", ".join(f"{d['name']} ({d['undelivered']}: {d['error']})" for d in report["destinations"] if d["undelivered"])
            logger.warning(
                f"inspect-tinker {self.hook} hook: undelivered to {missed}; kept in {report['outbox']}. "
                f"Deliver it later with: inspect-tinker sync {run.log_dir}"
            )

    def _task_ended(self, run_id: str, log) -> None:
        settings = settings_from_environment()
        event = task_finished(log, settings.alert_threshold)
        self._seen.setdefault(run_id, {})[event["eval_id"]] = event["status"]
        if self._loop_sends(event["loop"]):
            self._left_to_the_loop.add(run_id)
            return
        self._run(run_id, _log_dir(log.location), settings).events.emit("task_finished", **event)

    def _run(self, run_id: str, log_dir: Path, settings: HookSettings) -> _HookRun:
        if run_id not in self._runs:
            delivery = hook_delivery(self.hook, settings)  # first: a missing secret leaves no folder behind
            root = log_dir / "inspect-tinker" / run_id / self.hook
            make_folder(root)
            folder = RunFolder(root.absolute())
            write_json_atomic(folder.root / "config.json", {HOOK_KEY: self.hook, "inspect_run_id": run_id, "log_dir": str(log_dir.absolute())})
            folder.acquire()  # `inspect-tinker sync` refuses the folder while this process delivers it
            self._runs[run_id] = _HookRun(folder, EventLog(folder, [delivery.start(folder)]), log_dir.absolute())
        return self._runs[run_id]

    def _loop_sends(self, loop: dict | None) -> bool:
        """True when `loop` (a task's loop entry) names a run whose configuration has this destination on."""
        if not loop or not loop.get("run_dir"):
            return False
        try:
            config = json.loads((Path(loop["run_dir"]) / "config.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False  # no readable configuration: the loop's sinks are not known to send anything
        return bool(config.get(self.loop_config_key))


def _log_dir(location: str | None) -> Path:
    """The local folder of the log at `location`, else Inspect's log dir (INSPECT_LOG_DIR or ./logs).

    A remote log dir (s3://...) cannot hold the outbox, which needs appends and locks: the hook's
    folder then goes in the local default log dir."""
    if location and urlsplit(location).scheme in ("", "file"):
        return Path(urlsplit(location).path if location.startswith("file:") else location).parent
    default = os.environ.get("INSPECT_LOG_DIR", "logs")
    return Path(default) if urlsplit(default).scheme in ("", "file") else Path("logs")


@hooks(name="evalops", description="inspect-tinker: every finished task as an EvalOps test run")
class EvalOpsHook(_TrackingHook):
    hook, loop_config_key = "evalops", "evalops_enabled"

    def enabled(self) -> bool:
        return bool(os.environ.get("EVALOPS_API_KEY") and os.environ.get("EVALOPS_TEST_SUITE_ID"))


@hooks(name="mlflow", description="inspect-tinker: every finished task's metrics in MLflow")
class MLflowHook(_TrackingHook):
    hook, loop_config_key = "mlflow", "mlflow_tracking_uri"

    def enabled(self) -> bool:
        return bool(os.environ.get("MLFLOW_TRACKING_URI"))


@hooks(name="alerts", description="inspect-tinker: webhooks on a missed bar, a fallen regression guard or a crash")
class AlertsHook(_TrackingHook):
    hook, loop_config_key = "alerts", "webhooks"

    def enabled(self) -> bool:
        return bool(os.environ.get("INSPECT_TINKER_WEBHOOKS"))

    async def on_run_end(self, data: RunEnd) -> None:
        # A run that failed as a whole is a crash too, and so is a task that ended in error after
        # on_task_end saw it succeed (a task source's `task_complete` raised: the loop's decision),
        # unless the loop's own sinks send its crash.
        if data.run_id not in self._left_to_the_loop:
            seen = self._seen.get(data.run_id, {})
            for log in (log for log in data.logs if log.status == "error" and seen.get(log.eval.eval_id) == "success"):
                run = self._run(data.run_id, _log_dir(log.location), settings_from_environment())
                run.events.emit("error", message=f"task {log.eval.task} ended in error: {log.error.message if log.error else '?'}",
                                run=data.run_id, task=log.eval.task)
            if data.exception is not None:
                run = self._run(data.run_id, _log_dir(None), settings_from_environment())
                run.events.emit("error", message=f"the inspect eval run failed: {data.exception!r}", run=data.run_id)
        await super().on_run_end(data)

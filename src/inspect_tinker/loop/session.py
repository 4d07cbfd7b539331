"""One run of the loop, start to end: the run folder, its lock and events around `rounds`, driven by Inspect.

`run` is what `inspect-tinker run`, `resume`, `tune` and the Python API call; `inspect eval
inspect_tinker/train_until_threshold` (source.py) opens the same run with `open_run` and drives
the same stages. Everything a run does between its first and its last event is `run_stages`:
`rounds` (rounds.py), plus what a crash, a stop request or a full disk leave behind in the run
folder (an event saying what happened and how to resume, the report, the lock released).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import inspect_ai
from inspect_ai import Task
from inspect_ai.log import EvalLog

from inspect_tinker.config import Config, input_files
from inspect_tinker.errors import UsageError
from inspect_tinker.loop.eval_tasks import adds_guard, build_tasks
from inspect_tinker.evals.runner import EvalTask, eval_options
from inspect_tinker.loop.graceful_stop import GracefulStop, RunInterrupted, StoppedAtOnce
from inspect_tinker.loop.rounds import rounds
from inspect_tinker.loop.settings import backend_settings, delivery_settings
from inspect_tinker.loop.stages import StageSource
from inspect_tinker.provider import check_backend_requirements
from inspect_tinker.provider.launch import LaunchedProcess
from inspect_tinker.report.html import write_report
from inspect_tinker.tracking import EventLog, RunFolder, RunState, Sink
from inspect_tinker.tracking.crashes import record_crash
from inspect_tinker.tracking.inputs import ChangedInput, changed_inputs, changed_inputs_message, hash_inputs
from inspect_tinker.tracking.run_folder import disk_full
from inspect_tinker.tracking.sinks import delivery_for


def run(
    config: Config, sinks: list[Sink] | None = None, *, resume: Path | None = None, changed_keys: list[str] = (),
    allow_changed_inputs: bool = False,
) -> dict:
    """Run the evaluation-driven loop described by `config` in one `inspect_ai.eval`; return the summary dict.

    With `resume`, continue the run in that folder from its last durable point (the caller
    has compared `config` with the run's configuration; `changed_keys` are the accepted
    differences, recorded as an event). A file the run read whose content changed since
    (inputs.json) refuses the resume, unless `allow_changed_inputs`: then the change is
    recorded as an `inputs_changed` event. The summary's `exit_code` is 0
    when the bar was met and 1 when it was not. Ctrl-C or SIGTERM stops at the next safe
    point and raises RunInterrupted. Bad input found before training raises UsageError
    here, before Inspect starts.
    """
    opened = open_run(config, sinks, resume=resume, changed_keys=changed_keys, allow_changed_inputs=allow_changed_inputs)
    source = StageSource(run_stages(opened))
    source.start()
    try:
        inspect_ai.eval(source, log_dir=str(opened.folder.logs_dir), **eval_options(opened.tasks, config.eval_batch_size))
    except BaseException as err:  # Inspect itself failed or stopped (a full disk, a second Ctrl-C)
        source.abort(err)  # the loop records it, and outcome() raises what the loop made of it
    return source.outcome()


@dataclass
class OpenedRun:
    """A run whose folder is created (or reopened) and locked, its events started."""

    config: Config
    tasks: list[EvalTask]
    folder: RunFolder
    events: EventLog
    state: RunState
    resumed: bool


def open_run(
    config: Config, sinks: list[Sink] | None = None, *, resume: Path | None = None, changed_keys: list[str] = (),
    allow_changed_inputs: bool = False, log_dir: Path | None = None,
) -> OpenedRun:
    """Check what can be checked without the model, then create (or reopen, with `resume`) and lock
    the run folder and start its events. Arguments as for `run`; a new run's Inspect logs go to
    `log_dir` (recorded in the run folder) instead of its own `logs/`. Raises UsageError on bad input."""
    check_backend_requirements(backend_settings(config))  # the local extra and the base model, or the API key
    process = LaunchedProcess.from_env()
    if process.rank > 0:  # under torchrun, the other processes keep a silent record of their own aside
        config, sinks = config.model_copy(update={
            "output_dir": config.output_dir / f".rank-{process.rank}",
            "mlflow_tracking_uri": None, "evalops_enabled": False, "webhooks": [],  # rank 0 reports for all
        }), []
        resume = resume and resume.parent / f".rank-{process.rank}" / resume.name
    delivery = delivery_for(delivery_settings(config))  # MLflow, EvalOps, webhooks; a missing secret fails here
    tasks = build_tasks(config)  # every evaluation file, task and scorer checked before a run folder exists
    first = RunState(learning_rate=config.learning_rate, steps_per_round=config.steps_per_round, lora_rank=config.lora_rank)
    inputs = hash_inputs(input_files(config))
    changed_files = []
    if resume is None:
        folder, state = RunFolder.create(config.output_dir, config.run_name, log_dir), first
        folder.write_config(config.model_dump(mode="json"))
        folder.write_inputs([f.to_dict() for f in inputs])
    else:
        folder = RunFolder.open(resume)
        state = folder.read_state() or first
        not_started = folder.never_started()
        if not_started is not None:
            raise UsageError(
                f"{folder.root} never started ({not_started}); there is nothing to resume. Fix that and start "
                "the run again with `inspect-tinker run` (the same run_name replaces this folder)."
            )
        if state.phase == "finished":
            raise UsageError(f"{folder.root} has already finished (see summary.json); there is nothing to resume.")
        for key in ("learning_rate", "steps_per_round"):  # carried in the run state: a forced change
            if key in changed_keys:                        # applies from the round in progress
                setattr(state, key, getattr(config, key))
        changed_files = changed_inputs(folder.read_inputs() or [], inputs)
        if changed_files and not allow_changed_inputs:
            raise UsageError(changed_inputs_message(folder.root, changed_files))
    dead_pid = folder.acquire()
    if changed_keys:  # accepted with --force: the run goes on under the new configuration
        folder.write_config(config.model_dump(mode="json"))
    events = EventLog(folder, [*(sinks or []), delivery.start(folder)])
    record_crash(folder, events, dead_pid)  # the session before this one was killed without a word
    events.emit("run_started", run_dir=str(folder.root), log_dir=str(folder.logs_dir), config=brief(config),
                resumed=resume is not None)
    if changed_keys:
        events.emit("config_changed", keys=list(changed_keys))
    if resume is not None:
        if changed_files:
            events.emit("inputs_changed", files=[c.to_dict() for c in changed_files],
                        previous_data_report=_keep_data_report(folder, changed_files))
        folder.write_inputs([f.to_dict() for f in inputs])  # what the run reads from now on
    return OpenedRun(config, tasks, folder, events, state, resumed=resume is not None)


def _keep_data_report(folder: RunFolder, changed: list[ChangedInput]) -> str | None:
    """Keep the data report of the training file the earlier rounds read, beside the one the new
    contents will get, as data_report.<its sha256, 12 digits>.json; its path, or None when there is none."""
    train = next((c for c in changed if c.key == "train_file"), None)
    if train is None or not folder.data_report_path.is_file():
        return None
    kept = folder.data_report_path.with_name(f"data_report.{train.recorded[:12]}.json")
    folder.data_report_path.replace(kept)
    return str(kept)


def run_stages(opened: OpenedRun) -> Generator[list[Task], list[EvalLog], dict]:
    """The stages of the opened run (rounds.py), and what its end leaves in the run folder however it ends.

    Closing the generator early (Inspect gave up on the run) is recorded as an error with the
    resume command, never as a finished run.
    """
    config, tasks, folder, events, state = opened.config, opened.tasks, opened.folder, opened.events, opened.state
    resume_command = folder.resume_command
    try:
        with GracefulStop() as stop:
            return (yield from rounds(config, tasks, folder, events, state, stop))
    except RunInterrupted as err:
        events.emit("interrupted", message=str(err), signal=err.signal, resume_command=resume_command)
        raise
    except GeneratorExit:
        events.emit("error", message="Inspect ended the run before the loop finished", resume_command=resume_command)
        raise
    except KeyboardInterrupt as err:
        by = f"a second {err.signal}" if isinstance(err, StoppedAtOnce) else "the user"
        events.emit("interrupted", message=f"stopped at once by {by}", resume_command=resume_command)
        raise
    except Exception as err:
        if isinstance(err, UsageError) and not opened.resumed and folder.read_state() is None:
            # Bad input (training data, candidate pool, model size) found before any durable work:
            # the run never started, and there is nothing to resume.
            events.emit("not_started", message=str(err))
            raise
        full = disk_full(err, folder.root)
        if full is None:
            events.emit("error", message=f"{err.__class__.__name__}: {err}", resume_command=resume_command)
            raise
        message = f"{full}; free some space there, then continue the run with: {resume_command}"
        with contextlib.suppress(OSError):  # the full disk may refuse the event too
            events.emit("error", message=message, resume_command=resume_command)
        raise UsageError(message) from err
    finally:
        try:
            events.close()  # waits at most delivery_flush_seconds; the rest stays in the outbox
        finally:
            folder.release()  # even when a second Ctrl-C cuts the wait short
        if folder.never_started() is None:  # a run that never started has nothing to report
            _write_report(folder, events)  # after the release: the report sees a run that has stopped


def _write_report(folder: RunFolder, events: EventLog) -> None:
    """Every run leaves its HTML report when it ends, finished or not."""
    try:
        path = write_report(folder.root)
    except Exception as err:  # a report that cannot be drawn must not change the run's outcome
        with contextlib.suppress(OSError):  # nor can a full disk that refuses this event as well
            events.emit("report_failed", message=f"{err.__class__.__name__}: {err}",
                        command=shlex.join(["inspect-tinker", "report", str(folder.root)]))
    else:
        events.emit("report_written", path=str(path))


def brief(config: Config) -> dict:
    """The few configuration values a person wants to see at the start of a run."""
    return {
        "base_model": config.base_model,
        "backend": config.backend,
        "train_file": str(config.train_file) if config.train_file else None,
        "method": config.method,
        "rl": {"tasks": [t.display_name for t in config.rl.tasks], "group_size": config.rl.group_size,
               "prompts_per_step": config.rl.prompts_per_step, "loss": config.rl.loss} if config.rl else None,
        "eval_tasks": [_task_brief(t) for t in config.eval_tasks]
        + (["general_knowledge (regression guard)"] if adds_guard(config) else []),
        "gate_on": config.gate_on,
        "max_rounds": config.max_rounds,
        "steps_per_round": config.steps_per_round,
        "batch_size": config.batch_size,
        "eval_threshold": config.eval_threshold,
        "learning_rate": config.learning_rate,
        "lr_decay": config.lr_decay,
        "lr_schedule": config.lr_schedule,
        "warmup_steps": config.warmup_steps,
        "policy": config.policy,
        "candidate_file": str(config.candidate_file) if config.candidate_file else None,
    }


def _task_brief(task) -> str:
    details = [f"weight {task.weight:g}"] if task.weight != 1 else []
    details += [f"own bar {task.threshold}"] if task.threshold is not None else []
    details = ["confirmation, never gates"] if task.role == "confirm" else details
    return f"{task.display_name} ({', '.join(details)})" if details else task.display_name

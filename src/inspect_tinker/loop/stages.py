"""A TaskSource that drives a generator of stages: how the loop runs inside one Inspect eval.

Inspect cannot nest evaluations, so the loop is not a solver that calls `eval`: it is a source
of tasks (design.md). The generator (session.py's `run_stages`) runs up to its first stage
before Inspect starts, so bad input is reported before any Inspect output; each `task_complete`
collects one log, and when the stage's last log is in, sends the stage's logs to the generator,
which runs on to its next stage (returned to Inspect) or to its end (nothing returned, so the
run ends). When the loop fails there, the exception is raised to Inspect too, which ends the
run and marks the log that was being collected as failed with the loop's error.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from inspect_ai import Task, TaskSource
from inspect_ai.log import EvalLog, list_eval_logs, read_eval_log

from inspect_tinker.tracking.run_folder import RunFolder
from inspect_tinker.tracking.task_metadata import loop_metadata


class StageSource(TaskSource):
    """A TaskSource over a generator that yields stages (lists of tasks) and receives their logs.

    `start()` runs the generator to its first stage (its exceptions propagate); after Inspect
    is done, `outcome()` is the generator's return value, or raises what ended it.
    """

    def __init__(self, stages: Generator[list[Task], list[EvalLog], dict]):
        self._stages = stages
        self._stage: list[Task] = []
        self._logs: list[EvalLog] = []
        self._done = False
        self._result: dict | None = None
        self._failure: BaseException | None = None

    def start(self) -> None:
        self._advance(lambda: next(self._stages), catch=False)

    def initial_tasks(self) -> list[Task]:
        return self._stage

    async def task_complete(self, log: EvalLog) -> list[Task] | None:
        if self._done:
            return None
        self._logs.append(log)
        if len(self._logs) < len(self._stage):
            return None
        # Inspect hands a task source the log without its samples: the stage needs them.
        logs = [read_eval_log(log.location) if log.samples is None else log for log in self._logs]
        self._logs = []
        self._advance(lambda: self._stages.send(logs))
        if self._failure is not None:  # Inspect marks this task's log as failed with it: no reader takes it for success
            raise self._failure
        return self._stage or None

    def abort(self, err: BaseException) -> None:
        """Inspect stopped before the loop did: the loop records `err` (its own `except` clauses run)."""
        if not self._done:
            self._advance(lambda: self._stages.throw(err))

    def outcome(self) -> dict:
        """The loop's return value (the run's summary); raises what ended the loop instead, if anything did."""
        if not self._done:  # Inspect ended the run without sending the last stage's logs
            self.abort(RuntimeError("Inspect ended the run before the loop finished (see its log for why)"))
        if self._failure is not None:
            raise self._failure
        return self._result

    def _advance(self, step, catch: bool = True) -> None:
        try:
            self._stage = step()
        except StopIteration as done:
            self._done, self._result, self._stage = True, done.value, []
        except BaseException as err:  # the loop's own exception ends the run: kept for outcome(), never success
            self._done, self._stage = True, []
            if not catch:
                raise
            self._failure = err


def drop_stage_logs(folder: RunFolder, round_no: int, stage: str, from_step: int = 0) -> None:
    """Delete the Inspect logs of run `folder` that an earlier, cut-short attempt at stage `stage`
    ("train", "rollout" or "eval") of round `round_no` left (a resumed run redoes it); of the
    rollouts, only those of step `from_step` on (the steps before are in the resumed checkpoint).

    In a log dir other runs share, only logs whose metadata names this run folder are its own.
    """
    shared = folder.shares_log_dir
    for info in list_eval_logs(str(folder.logs_dir), recursive=False):
        try:
            entry = loop_metadata(read_eval_log(info, header_only=True).eval.metadata) or {}
        except Exception:  # a log a kill cut off mid-write cannot be read: the stage it belongs to is redone
            if shared:  # unless it may be another run's
                continue
            entry = {"round": round_no, "stage": stage}
        if shared and entry.get("run_dir") != str(folder.root):
            continue
        if entry.get("round") == round_no and entry.get("stage") == stage and entry.get("step", from_step) >= from_step:
            Path(info.name.removeprefix("file://")).unlink(missing_ok=True)

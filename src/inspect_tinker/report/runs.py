"""Where each run stands, read from its folder alone: the list `inspect-tinker runs` prints.

A run folder tells its status by what it holds. summary.json (written last) means finished;
run.lock locked by a process (RunFolder.running_pid) means running; otherwise the run stopped
early, and its last session's closing event says how: `interrupted` (Ctrl-C, SIGTERM),
`error`, or `crash_detected` or none at all (killed, power lost; see tracking/crashes.py).
Such a run continues with `inspect-tinker resume`. A `not_started` event means bad input stopped the
run before it did anything durable: nothing to resume. A folder whose files cannot be read is
listed as unreadable, naming the damaged file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from inspect_tinker.errors import UsageError
from inspect_tinker.policies import best_round
from inspect_tinker.tracking import RunFolder, RunState
from inspect_tinker.tracking.crashes import CLOSING_EVENTS, last_session



@dataclass
class RunStatus:
    status: Literal["finished", "running", "interrupted", "crashed", "not started", "unreadable"]
    detail: str  # one line saying what happened or is happening
    resumable: bool
    resume_command: str | None = None


@dataclass
class RunRow:
    """One line of `inspect-tinker runs`: plain data, the same in the table and in --json."""

    name: str
    run_dir: str
    status: str
    detail: str
    resumable: bool
    resume_command: str | None
    started: str | None  # ISO time of the first run_started event
    rounds: int  # trained rounds evaluated
    baseline_score: float | None
    best_score: float | None
    best_round: int | None
    best_adapter: str | None
    bar_met: bool | None  # None until the run has finished
    wall_seconds: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def run_status(folder: RunFolder, events: list[dict], state: RunState | None) -> RunStatus:
    """Classify a run folder as finished, running, interrupted or crashed (see the module doc)."""
    if (folder.root / "summary.json").is_file():
        return RunStatus("finished", "finished", resumable=False)
    where = _where(state, events)
    pid = folder.running_pid()
    if pid is not None:
        return RunStatus("running", f"running (process {pid or 'starting'}), {where}", resumable=False)
    not_started = folder.never_started()
    if not_started is not None:
        return RunStatus("not started", f"never started: {not_started}", resumable=False)
    if state is not None and state.phase == "finished":
        # Decided its last round, then died before summary.json was written.
        return RunStatus("crashed", "stopped after its last decision, before writing summary.json", resumable=False)
    resume = folder.resume_command
    closing = next((e for e in reversed(last_session(events)) if e.get("event") in CLOSING_EVENTS), None)
    if closing is not None and closing["event"] == "interrupted":
        return RunStatus("interrupted", f"interrupted {where}: {closing.get('message', '')}", True, resume)
    if closing is not None and closing["event"] == "error":
        return RunStatus("crashed", f"failed {where}: {closing.get('message', '')}", True, resume)
    return RunStatus("crashed", f"stopped without a word {where} (killed?)", True, resume)


def _where(state: RunState | None, events: list[dict]) -> str:
    if state is None:  # killed before the baseline was recorded, or written by an older version
        rounds = [e["round"] for e in events if isinstance(e.get("round"), int)]
        return f"in round {rounds[-1]}" if rounds else "before the baseline evaluation"
    if state.phase == "evaluating":
        return f"evaluating round {state.round}"
    return f"training round {state.round} (step {state.step_in_round})"


def _wall_seconds(events: list[dict], now: datetime | None = None) -> float | None:
    """Wall time across sessions: from each run_started to that session's last event (or `now`)."""
    total, start, last = 0.0, None, None
    for e in events:
        t = _time(e)
        if t is None:
            continue
        if e.get("event") == "run_started":
            if start is not None:
                total += (last - start).total_seconds()
            start = t
        last = t
    if start is None:
        return None
    return total + ((now or last) - start).total_seconds()


def _time(event: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(event["time"])
    except (KeyError, TypeError, ValueError):
        return None


def read_run_row(run_dir: Path) -> RunRow:
    """Read one run folder into its RunRow; UsageError when it is not a run folder."""
    folder = RunFolder.open(run_dir)
    return run_row(folder, folder.read_events(), folder.read_state())


def run_row(folder: RunFolder, events: list[dict], state: RunState | None) -> RunRow:
    """The RunRow of a run folder whose events and state have been read."""
    status = run_status(folder, events, state)
    started = next((e.get("time") for e in events if e.get("event") == "run_started"), None)
    common = dict(
        name=folder.name, run_dir=str(folder.root), status=status.status, detail=status.detail,
        resumable=status.resumable, resume_command=status.resume_command, started=started,
    )
    if status.status == "finished":
        s = folder.read_summary()
        return RunRow(
            **common, rounds=s.get("rounds_run", 0), baseline_score=s.get("baseline_score"),
            best_score=s.get("best_score"), best_round=s.get("best_round"), best_adapter=s.get("best_adapter"),
            bar_met=s.get("bar_met"), wall_seconds=s.get("wall_seconds"),
        )
    history = state.history if state else []
    best = best_round(history)
    now = datetime.now(timezone.utc) if status.status == "running" else None
    return RunRow(
        **common, rounds=sum(1 for r in history if r.round > 0),
        baseline_score=next((r.score for r in history if r.round == 0), None),
        best_score=best.score if best else None, best_round=best.round if best else None,
        best_adapter=best.adapter if best else None, bar_met=None, wall_seconds=_wall_seconds(events, now),
    )


def list_runs(parent: Path) -> list[RunRow]:
    """Every run folder directly under `parent` (a folder holding config.json), oldest first."""
    parent = Path(parent)
    if not parent.is_dir():
        raise UsageError(f"{parent} is not a folder; pass the folder your runs are in (output_dir, default runs).")
    rows = [_row_or_unreadable(d) for d in sorted(parent.iterdir()) if (d / "config.json").is_file()]
    return sorted(rows, key=lambda r: (r.started or "", r.name))


def _row_or_unreadable(run_dir: Path) -> RunRow:
    # One damaged folder is listed as such; it must not hide the others.
    try:
        return read_run_row(run_dir)
    except UsageError as err:
        return RunRow(
            name=run_dir.name, run_dir=str(run_dir.absolute()), status="unreadable", detail=str(err), resumable=False,
            resume_command=None, started=None, rounds=0, baseline_score=None, best_score=None, best_round=None,
            best_adapter=None, bar_met=None, wall_seconds=None,
        )


STATUS_STYLE = {"finished": "green", "running": "cyan", "interrupted": "yellow", "crashed": "red",
                "not started": "dim", "unreadable": "red"}


def print_runs(rows: list[RunRow], parent: Path, console: Console) -> None:
    """The runs as a table for a person, with the resume command of each run that stopped early."""
    if not rows:
        console.print(f"No runs in {parent} (a run folder holds config.json).")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")  # fits 80 columns for run names up to ~15 characters
    table.add_column("run", overflow="fold", min_width=min(max(len(r.name) for r in rows), 20))
    for col, justify in (("status", "left"), ("rounds", "right"), ("baseline", "right"), ("best", "right"),
                         ("bar met", "left"), ("wall time", "right"), ("started", "left")):
        table.add_column(col, justify=justify, no_wrap=True)
    for r in rows:
        best = "–" if r.best_score is None else f"{format_score(r.best_score)} ({r.best_round})"
        table.add_row(
            r.name, f"[{STATUS_STYLE[r.status]}]{r.status}[/]", str(r.rounds), format_score(r.baseline_score), best,
            {True: "yes", False: "no", None: "–"}[r.bar_met], format_duration(r.wall_seconds), _local_time(r.started),
        )
    console.print(table)
    for r in rows:
        if r.status != "finished":
            hint = f"; resume: {r.resume_command}" if r.resumable else ""
            console.print(f"  {r.name}: {r.detail}{hint}", soft_wrap=True, highlight=False)


def format_duration(seconds: float | None) -> str:
    """`92` -> "1m32s", `4080` -> "1h08m", `7` -> "7s"; None -> "–"."""
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


def format_score(value: float | None) -> str:
    """A score as the report and the list show it: three decimals, "–" when there is none."""
    return "–" if value is None else f"{value:.3f}"


def _local_time(iso: str | None) -> str:
    if iso is None:
        return "–"
    return datetime.fromisoformat(iso).astimezone().strftime("%m-%d %H:%M")

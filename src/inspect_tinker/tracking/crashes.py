"""A run whose process died without a word (SIGKILL, the kernel's OOM killer, a power loss)
cannot report its own end. The next command that takes its lock (`resume`, `sync`, `runs`)
notices: run.lock is still there, no process holds it, and the run's last session has no
closing event. It records a `crash_detected` event, which raises the `run_crashed` alert
(tracking/alerts.py) that the run's webhooks and other sinks deliver through the outbox.

Recorded once: the event closes the session, and the command that records it removes the
stale run.lock when it releases the lock.
"""

from __future__ import annotations

from inspect_tinker.tracking.events import EventLog
from inspect_tinker.tracking.run_folder import RunFolder

# Events that end a session of a run, however it ended; a session without one died silently.
CLOSING_EVENTS = ("run_finished", "interrupted", "error", "crash_detected")


def last_session(events: list[dict]) -> list[dict]:
    """The events since the last `run_started` (a resume starts a new session)."""
    starts = [i for i, e in enumerate(events) if e.get("event") == "run_started"]
    return events[starts[-1]:] if starts else events


def record_crash(folder: RunFolder, events: EventLog, dead_pid: int | None) -> dict | None:
    """Record that the run's last session died silently, when it did; return the event, else None.

    `dead_pid` is what `RunFolder.acquire` returned: the pid a holder that never released
    left in run.lock (None: the last holder released it, so it stopped cleanly or had
    already been recorded).
    """
    if dead_pid is None:
        return None
    session = last_session(folder.read_events())
    if not any(e.get("event") == "run_started" for e in session):
        return None  # killed before it started: nothing ran that anyone waits for
    if any(e.get("event") in CLOSING_EVENTS for e in session):
        return None  # it said how it ended, then died before releasing its lock
    state = folder.read_state()
    where = "" if state is None else f" in round {state.round} ({state.phase})"
    return events.emit(
        "crash_detected", pid=dead_pid, round=state.round if state else None,
        message=f"process {dead_pid} died without a word{where}: killed (SIGKILL, the OOM killer) or the machine went down",
        resume_command=folder.resume_command,
    )

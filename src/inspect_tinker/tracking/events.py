"""Events: one plain dict per thing that happened, written to the run folder first, then
handed to every sink; an event that calls for a person is followed by an `alert` event.

Every event carries `run_id` (random, fixed for the run folder: event_counter.json keeps it) and
`id` (`<run_id>:<seq>`), which remote sinks use as the idempotency key of its delivery.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Protocol

from inspect_tinker.tracking.alerts import AlertWatch
from inspect_tinker.tracking.run_folder import RunFolder, event_seqs


class Sink(Protocol):
    def handle(self, event: dict) -> None: ...


class EventLog:
    """The run's events, for the process that holds the run folder.

    Opening it repairs a torn last line of events.jsonl (a kill or a full disk broke off a
    write): the fragment is cut off and kept in an `events_repaired` event. Sequence numbers
    continue above the last one handed out, which event_counter.json records before each
    event is written: events.jsonl that lost lines (a restored backup, a hand edit, a disk
    that dropped its last writes) cannot make a number, and so an id or idempotency key,
    repeat within a run. The highest number in events.jsonl counts too, for run folders
    older than the counter.
    """

    def __init__(self, folder: RunFolder, sinks: list[Sink] | None = None):
        self.folder = folder
        self.sinks = list(sinks or [])
        fragment = folder.cut_torn_event()
        earlier = folder.read_events()
        counted_run_id, counted = folder.read_event_counter()
        self._seq = max([counted, folder.last_event_seq(), *event_seqs(fragment or "")])
        self.run_id = counted_run_id or (earlier[0].get("run_id") if earlier else None) or uuid.uuid4().hex
        self._alerts = AlertWatch()
        for event in earlier:  # a continued run compares its rounds with the earlier ones
            self._alerts.alerts(event)
        if fragment is not None:
            self.emit("events_repaired", fragment=fragment, fragment_bytes=len(fragment.encode("utf-8")))

    def emit(self, kind: str, **fields) -> dict:
        """Record an event of type `kind` with `fields`; return the event dict."""
        self._seq += 1
        self.folder.write_event_counter(self.run_id, self._seq)  # before the line: a number handed out stays spent
        event = {
            "event": kind, "seq": self._seq, "id": f"{self.run_id}:{self._seq}", "run_id": self.run_id,
            "time": datetime.now(timezone.utc).isoformat(), **fields,
        }
        self.folder.append_event(event)
        for sink in self.sinks:
            sink.handle(event)
        for alert in self._alerts.alerts(event):
            self.emit("alert", **alert)
        return event

    def close(self) -> None:
        """Close the sinks that deliver elsewhere, each waiting a bounded time for its deliveries
        (announced by a `delivery_flush` event when there is something to wait for), and record
        what each reports as a `delivery_report` event for the remaining sinks."""
        closing = [s for s in self.sinks if callable(getattr(s, "close", None))]
        self.sinks = [s for s in self.sinks if s not in closing]
        for sink in closing:
            if waiting := sink.waiting():
                self.emit("delivery_flush", waiting=waiting, flush_seconds=sink.flush_seconds)
            report = sink.close()
            if report is not None:
                self.emit("delivery_report", **report)

"""Events: one plain dict per thing that happened, written to the run folder first, then
handed to every sink."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol

from evaltune.tracking.run_folder import RunFolder


class Sink(Protocol):
    def handle(self, event: dict) -> None: ...


class EventLog:
    def __init__(self, folder: RunFolder, sinks: list[Sink] | None = None):
        self.folder = folder
        self.sinks = list(sinks or [])
        self._seq = len(folder.read_events())

    def emit(self, kind: str, **fields) -> dict:
        """Record an event of type `kind` with `fields`; return the event dict."""
        self._seq += 1
        event = {"event": kind, "seq": self._seq, "time": datetime.now(timezone.utc).isoformat(), **fields}
        self.folder.append_event(event)
        for sink in self.sinks:
            sink.handle(event)
        return event

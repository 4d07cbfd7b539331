"""Recording: every step and round is an event; sinks (run folder, console, ...) consume them."""

from evaltune.tracking.events import EventLog, Sink
from evaltune.tracking.run_folder import RunFolder

__all__ = ["EventLog", "RunFolder", "Sink"]

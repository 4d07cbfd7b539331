"""Recording: every step and round is an event; sinks (run folder, console, ...) consume them."""

from inspect_tinker.tracking.checkpoints import checkpoint_address, verify_checkpoint, write_checkpoint
from inspect_tinker.tracking.events import EventLog, Sink
from inspect_tinker.tracking.run_folder import RunFolder
from inspect_tinker.tracking.round_adapter import round_adapter
from inspect_tinker.tracking.run_state import RoundRecord, RoundUsage, RunState, next_state

__all__ = [
    "EventLog",
    "RoundRecord",
    "RoundUsage",
    "RunFolder",
    "RunState",
    "Sink",
    "checkpoint_address",
    "next_state",
    "round_adapter",
    "verify_checkpoint",
    "write_checkpoint",
]

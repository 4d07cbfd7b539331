"""Choosing the point a resumed run restarts from, past a torn checkpoint if need be."""

from __future__ import annotations

from pathlib import Path

from evaltune.errors import UsageError
from evaltune.tracking.checkpoints import verify_checkpoint
from evaltune.tracking.events import EventLog
from evaltune.tracking.run_folder import RunFolder
from evaltune.tracking.run_state import RunState


def restore_point(folder: RunFolder, state: RunState, events: EventLog) -> None:
    """Check `state.checkpoint`; when it is torn, move `state` back to the start of the round.

    The start of the round in progress is always durable: either the fresh adapter (round 1)
    or an earlier round's verified checkpoint. Raises UsageError when that is torn too.
    """
    if state.checkpoint is None or verify_checkpoint(Path(state.checkpoint)):
        return
    torn = state.checkpoint
    start = state.round_start_checkpoint
    if start is not None and not verify_checkpoint(Path(start)):
        raise UsageError(
            f"{folder.root}: checkpoints {torn} and {start} are both damaged; the run cannot be resumed safely. "
            "Start a new run, or export an earlier round's adapter with `evaltune export`."
        )
    events.emit("checkpoint_damaged", checkpoint=torn, fallback=start, round=state.round)
    state.checkpoint = start
    state.phase = "training"
    state.global_step = state.round_start_step

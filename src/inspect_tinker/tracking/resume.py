"""Choosing the point a resumed run restarts from, past damaged checkpoints if need be."""

from __future__ import annotations

from pathlib import Path

from inspect_tinker.errors import UsageError
from inspect_tinker.tracking.checkpoints import verify_checkpoint
from inspect_tinker.tracking.events import EventLog
from inspect_tinker.tracking.run_folder import RunFolder
from inspect_tinker.tracking.run_state import RunState


def restore_point(folder: RunFolder, state: RunState, events: EventLog) -> None:
    """Check `state.checkpoint`; when it is damaged, move `state` back to the start of the
    round in progress, from the newest sealed checkpoint that still verifies.

    Walks back from the round's own starting point (the fresh adapter in round 1) through
    every earlier round's checkpoint, newest first, skipping damaged ones and those whose
    optimizer state `keep_last` pruned; records the choice as a `checkpoint_damaged` event.
    Raises UsageError when none is left.
    """
    if state.checkpoint is None or verify_checkpoint(Path(state.checkpoint)):
        return
    damaged, fallback = [state.checkpoint], None
    if state.round_start_checkpoint is not None:  # else the round started from the fresh adapter
        earlier = [state.round_start_checkpoint, *(r.checkpoint for r in reversed(state.history))]
        candidates = [c for c in dict.fromkeys(earlier) if c is not None and c != state.checkpoint]
        for candidate in candidates:
            if not (Path(candidate) / "trainer").is_dir():
                continue  # its optimizer state was pruned on purpose, not damaged
            if verify_checkpoint(Path(candidate)):
                fallback = candidate
                break
            damaged.append(candidate)
        else:
            raise UsageError(
                f"{folder.root}: every checkpoint the run could restart from is damaged ({', '.join(damaged)}); "
                "it cannot be resumed safely. Start a new run, or export an earlier round's adapter with `inspect-tinker export`."
            )
    events.emit("checkpoint_damaged", checkpoint=state.checkpoint, damaged=damaged, fallback=fallback, round=state.round)
    state.checkpoint = fallback
    state.phase = "training"
    state.global_step = state.round_start_step

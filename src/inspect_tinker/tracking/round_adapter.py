"""Which round of a run folder `inspect-tinker eval --run` and `inspect-tinker export` use, and its adapter.

One answer for both commands and for every state a run folder can be in: finished (its
best round), unfinished or killed (the best of the rounds evaluated so far, from
state.json's history, which a running loop extends after each evaluation), or the round
asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

from inspect_tinker.errors import UsageError
from inspect_tinker.tracking.checkpoints import MANIFEST, verify_checkpoint
from inspect_tinker.tracking.run_folder import RunFolder
from inspect_tinker.policies import best_round


def round_adapter(folder: RunFolder, round_no: int | None) -> Path | None:
    """The PEFT adapter folder of round `round_no`, or of the run's best round when None.

    None means round 0: the base model itself, without an adapter (a run's best round when no
    trained round beat its baseline). The best round is the one summary.json names (the same
    rule, `best_round`, over the same history). Raises UsageError, saying what to do instead,
    when the run has no evaluated round yet, the round's adapter is missing or damaged, or it
    lives on the Tinker service.
    """
    state = folder.read_state()
    history = state.history if state else []
    trained = sorted(r.round for r in history if r.adapter is not None)
    have = f"rounds evaluated so far: {', '.join(map(str, trained))}" if trained else "no round has been evaluated yet"
    if round_no is None:
        best = best_round(history)
        if best is None:
            raise UsageError(
                f"{folder.root} has no trained and evaluated round yet ({'the run is unfinished; ' if state else ''}"
                f"{have}); wait for round 1 to be evaluated, or pass --round N for a round whose checkpoint is saved."
            )
        round_no = best.round
    if round_no == 0:
        return None
    round_dir = folder.round_dir(round_no)
    manifest = round_dir / MANIFEST
    address = json.loads(manifest.read_text()).get("address", "") if manifest.is_file() else ""
    if "://" in address:
        raise UsageError(
            f"round {round_no} of {folder.root} lives on the training service ({address}); "
            f"download it with `tinker checkpoint download {address}`."
        )
    if not verify_checkpoint(round_dir, parts=("adapter",)):
        raise UsageError(f"{round_dir}: no complete adapter for round {round_no} (missing or damaged); {have}.")
    return round_dir / "adapter"

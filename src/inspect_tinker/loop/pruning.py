"""`inspect-tinker prune RUN` and `prune_checkpoints`: a run's checkpoints on the Tinker service,
but for the best round's and the last round's, deleted (stored checkpoints are billed).

Kept: the training state and sampler weights of the best trained round and of the last one,
and the state a resume would start from; everything else the run saved in its training runs
on the service is deleted. Without `delete` nothing is deleted: the plan is only shown.
The run folder keeps its records; a deleted state's round can no longer be resumed or rolled
back to, which a finished run does not need.
"""

from __future__ import annotations

import json
from pathlib import Path

from inspect_tinker.errors import UsageError
from inspect_tinker.policies import best_round
from inspect_tinker.tracking import EventLog, RunFolder, RunState

TINKER = "tinker://"


def kept_states(state: RunState) -> set[str]:
    """The tinker:// training states to keep: the best trained round's, the last round's, and
    the checkpoint a resume would load."""
    trained = [r for r in state.history if r.round > 0 and r.adapter]
    kept = {best_round(trained).adapter, trained[-1].adapter} if trained else set()
    record = Path(state.checkpoint) / "tinker_checkpoint.json" if state.checkpoint else None
    if record is not None and record.is_file():
        kept.add(json.loads(record.read_text())["state_path"])
    return {path for path in kept if path.startswith(TINKER)}


def recorded_paths(folder: RunFolder, state: RunState) -> set[str]:
    """Every tinker:// checkpoint the run folder records: the rounds' and each saved one's."""
    paths = {r.adapter for r in state.history if r.adapter}
    paths |= {e["path"] for e in folder.read_events() if e.get("event") == "checkpoint_saved" and e.get("path")}
    return {path for path in paths if path.startswith(TINKER)}


def prune_run(folder: RunFolder, events: EventLog, *, base_url: str | None, unreachable_timeout: float,
              delete: bool, say=print):
    """Show, and with `delete` carry out, the pruning of the run in `folder` (its backend was
    `tinker`) on the service at `base_url`; the deletion is recorded as a `checkpoints_pruned`
    event. Returns the PrunePlan."""
    import tinker
    from tinker.lib.base_url import resolve_base_url

    from inspect_tinker.provider.tinker_backend import ResultWaiter, check_api_key
    from inspect_tinker.provider.tinker_checkpoints import delete_checkpoints, plan_pruning, training_run_of

    state = folder.read_state()
    if state is None:
        raise UsageError(f"{folder.root} has no state.json: the run saved nothing to prune.")
    check_api_key()
    keep = kept_states(state)
    runs = sorted({training_run_of(path) for path in recorded_paths(folder, state)})
    wait = ResultWaiter(resolve_base_url(base_url), unreachable_timeout)
    rest = tinker.RestClient(base_url=base_url)
    plan = plan_pruning(rest, wait, runs, keep)
    say(f"{folder.root.name}: {len(plan.delete)} checkpoint(s) to delete, {len(plan.keep)} kept "
        f"(the best and the last round's training state and sampler weights), in {len(runs)} training run(s) on the service.")
    for checkpoint in plan.keep:
        say(f"  keep   {checkpoint.tinker_path}")
    if not delete:
        for checkpoint in plan.delete:
            say(f"  delete {checkpoint.tinker_path}")
        if plan.delete:
            say(f"Nothing deleted (a dry run); to delete them: inspect-tinker prune {folder.root} --delete")
        return plan
    delete_checkpoints(rest, wait, plan.delete, say=say)
    events.emit("checkpoints_pruned", deleted=[c.tinker_path for c in plan.delete],
                kept=[c.tinker_path for c in plan.keep])
    return plan


def prune_at_run_end(folder: RunFolder, events: EventLog, *, base_url: str | None, unreachable_timeout: float) -> None:
    """`prune_checkpoints`: prune the finished run's checkpoints. A failure does not undo the
    finished run: it is recorded (`prune_failed`, with the command that prunes later)."""
    from inspect_tinker.provider.tinker_backend import TinkerServiceError

    try:
        prune_run(folder, events, base_url=base_url, unreachable_timeout=unreachable_timeout, delete=True,
                  say=lambda line: None)
    except TinkerServiceError as err:
        events.emit("prune_failed", message=str(err), command=f"inspect-tinker prune {folder.root} --delete")

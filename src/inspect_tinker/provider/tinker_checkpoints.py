"""The checkpoints a run left on the Tinker service, and deleting those it no longer needs.

Every stored checkpoint is billed. A run leaves, in each training run it created on the
service (the first, and one per resume or rollback): a training state per round
(`weights/step-<n>`, from `save_state`), partial states (`save_every_steps`, Ctrl-C), and the
sampler weights each evaluation sampled from (`save_weights_and_get_sampling_client`). What
is worth keeping are the training states of the rounds to keep (the best and the last), and
the sampler weights saved from them: those saved in the same training run after the state
and before the next training state there (each round saves its state, then evaluates).
Listing and deleting go through the SDK's RestClient (`list_checkpoints`,
`delete_checkpoint_from_tinker_path`).
"""

from __future__ import annotations

from dataclasses import dataclass

import tinker
from tinker import types

from inspect_tinker.provider.tinker_backend import ResultWaiter, service_call


@dataclass(frozen=True)
class PrunePlan:
    """What a run has on the service, split into what to keep and what to delete."""

    keep: list[types.Checkpoint]
    delete: list[types.Checkpoint]


def training_run_of(path: str) -> str:
    """The id of the training run on the service that holds the checkpoint `path` (tinker://)."""
    return types.ParsedCheckpointTinkerPath.from_tinker_path(path).training_run_id


def plan_pruning(rest: tinker.RestClient, wait: ResultWaiter, training_runs: list[str],
                 kept_states: set[str]) -> PrunePlan:
    """Which checkpoints of `training_runs` to keep: the training states `kept_states`
    (tinker:// paths) and the sampler weights saved from them; the rest is to delete."""
    keep, delete = [], []
    for run in training_runs:
        with service_call(f"listing the checkpoints of the training run {run}",
                          refused=f"the training run {run} was not found on the Tinker service"):
            checkpoints = sorted(wait(rest.list_checkpoints(run)).checkpoints, key=lambda c: c.time)
        keeping = False  # whether the latest training state so far is one to keep
        for checkpoint in checkpoints:
            if checkpoint.checkpoint_type == "training":
                keeping = checkpoint.tinker_path in kept_states
                (keep if keeping else delete).append(checkpoint)
            elif checkpoint.checkpoint_type == "sampler":
                (keep if keeping else delete).append(checkpoint)
            else:  # exported weights (`external`) are the user's own doing: left alone
                keep.append(checkpoint)
    return PrunePlan(keep=keep, delete=delete)


def delete_checkpoints(rest: tinker.RestClient, wait: ResultWaiter, checkpoints: list[types.Checkpoint],
                       say=print) -> None:
    """Delete `checkpoints` on the service, saying each; one already gone is no error."""
    for checkpoint in checkpoints:
        with service_call(f"deleting {checkpoint.tinker_path}"):
            try:
                wait(rest.delete_checkpoint_from_tinker_path(checkpoint.tinker_path))
            except tinker.NotFoundError:  # deleted since it was listed (by another prune)
                pass
        say(f"  deleted {checkpoint.tinker_path}")

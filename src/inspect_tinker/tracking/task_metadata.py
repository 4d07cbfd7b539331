"""What every task of the loop carries in its Inspect metadata and tags: the contract between the
loop (loop/) and the tracking hooks, which also see tasks of a plain `inspect eval`.

    Task.metadata["inspect_tinker"] = {
        "run": <run name>, "run_dir": <absolute run folder>, "round": <int, 0 = baseline>,
        "stage": "eval" | "train" | "rollout", "learning_rate": <float | None>,
        "checkpoint": <str | None: tinker:// path or adapter folder>,
        "role": "gate" | "confirm" | "guard" (eval stage only), "threshold": <the run's bar>,
        "step": <int: the RL step in the round, 1 = first> (rollout stage only),
    }
    Task.tags = ["inspect-tinker", "run-<run name>", "round-<n>", <stage>]

The run's tag tells its logs apart in a log dir that several runs share (`inspect view`
filters by tag). A task without the key is not part of a loop. The checkpoint of a training task is the one its
round starts from (None: a fresh adapter); that of an evaluation task the one it evaluates
(None: the base model, round 0).
"""

from __future__ import annotations

KEY = "inspect_tinker"


def loop_metadata(metadata: dict | None) -> dict | None:
    """The loop's entry of a task's or log's metadata; None for a task that is not part of a loop."""
    entry = (metadata or {}).get(KEY)
    return entry if isinstance(entry, dict) else None


def stage_labels(
    *, run: str, run_dir: str, round_no: int, stage: str, learning_rate: float | None, checkpoint: str | None,
    threshold: float, role: str | None = None, step: int | None = None,
) -> tuple[dict, list[str]]:
    """The metadata (the loop's entry under KEY) and the tags of one task of the loop."""
    entry = {"run": run, "run_dir": run_dir, "round": round_no, "stage": stage, "learning_rate": learning_rate,
             "checkpoint": checkpoint, "threshold": threshold}
    if role is not None:
        entry["role"] = role
    if step is not None:
        entry["step"] = step
    return {KEY: entry}, ["inspect-tinker", f"run-{run}", f"round-{round_no}", stage]

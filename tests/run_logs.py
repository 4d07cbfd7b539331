"""What a run folder's Inspect log dir holds, in the order the stages ran."""

from __future__ import annotations

from pathlib import Path

from inspect_ai.log import read_eval_log


def stage_logs(run_dir: Path) -> list[tuple[int, str, str]]:
    """(round, stage, task name) of every log under `run_dir/logs`, in the order they were finished.

    By the files' modification times: Inspect's own times have whole seconds, and a tiny model's
    stages take less; each log is last written when its task ends, and a stage starts after the
    one before it has ended.
    """
    paths = sorted((run_dir / "logs").glob("*.eval"), key=lambda p: p.stat().st_mtime_ns)
    specs = [read_eval_log(str(p), header_only=True).eval for p in paths]
    return [(s.metadata["inspect_tinker"]["round"], s.metadata["inspect_tinker"]["stage"], s.task) for s in specs]

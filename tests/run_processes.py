"""`inspect-tinker` runs as real processes, and the events their run folders hold so far."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from inspect_tinker.tracking import RunFolder


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """`python -m inspect_tinker *args` started in `cwd`, its stdout and stderr one text pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "inspect_tinker", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def events(run_dir: Path) -> list[dict]:
    """The run's events so far; a line torn by a kill is left out."""
    return RunFolder(run_dir).read_events()


def wait_for_event(proc: subprocess.Popen, run_dir: Path, predicate, timeout: float = 900) -> None:
    """Return once an event of `run_dir` satisfies `predicate`; fail if `proc` ends first or `timeout` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(predicate(e) for e in events(run_dir)):
            return
        assert proc.poll() is None, f"run ended before the kill point: {proc.stdout.read()}"
        time.sleep(0.02)
    raise AssertionError("kill point never reached")

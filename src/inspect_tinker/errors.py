"""The process contract: what a user is told when a run cannot go on, and the exit codes.

Every layer raises `UsageError` for what the user must fix (bad usage, configuration or data,
a missing extra); the CLI prints it as one message and exits `ExitCode.USAGE`. The exit codes
are stated here once: the CLI returns them, the run's summary records them, the README and
design.md list them.
"""

from __future__ import annotations

import importlib.util
import signal
from enum import IntEnum


class ExitCode(IntEnum):
    """What `inspect-tinker` exits with (`EXIT_CODES` says each in words)."""

    BAR_MET = 0
    BAR_NOT_MET = 1
    USAGE = 2
    BUG = 3
    # The shell's code for a process ended by the signal: 128 + its number. Both are resumable;
    # keeping them apart tells a script whether a person or the machine's manager stopped the run.
    INTERRUPTED = 128 + signal.SIGINT  # 130, Ctrl-C
    TERMINATED = 128 + signal.SIGTERM  # 143, what docker stop, Kubernetes and SLURM send


EXIT_CODES = {
    ExitCode.BAR_MET: "bar met",
    ExitCode.BAR_NOT_MET: "bar not met after the last round",
    ExitCode.USAGE: "bad usage, configuration or data (the message says what, where and how to fix it)",
    ExitCode.BUG: "unexpected error, a bug in inspect-tinker (the message says how to report it)",
    ExitCode.INTERRUPTED: "stopped by Ctrl-C (inspect-tinker resume continues the run)",
    ExitCode.TERMINATED: "stopped by SIGTERM (inspect-tinker resume continues the run)",
}

BUG_REPORT = ("this is a bug in inspect-tinker: please report it on the project's issue tracker with the output of the "
              "same command run with --verbose")


def exit_code_for(signum: int) -> ExitCode:
    """The exit code of a run stopped by the stop signal `signum` (SIGINT or SIGTERM)."""
    return ExitCode(128 + signum)


class UsageError(Exception):
    """Bad usage, configuration or data. The message says what, where, and how to fix it."""


def require_extra(extra: str, modules: tuple[str, ...], needed_by: str, instead: str = "") -> None:
    """Raise UsageError when one of `modules` (provided by the `extra` extra) is not installed.

    The core install evaluates, trains on Tinker and runs every command; an extra adds what only
    some runs need (`local`: PyTorch, PEFT and GGUF for the in-process backend; `mlflow`;
    `embeddings`), so a feature that needs a missing one stops here with one message naming the
    extra, before any work, not with an ImportError from deep inside. `needed_by` says what
    needs them ("backend: local"); `instead` is an alternative that needs no extra, appended to
    the message ("or use retrieval: bm25").
    """
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise UsageError(
            f"{needed_by} needs {', '.join(missing)}, which the {extra!r} extra installs: "
            f"pip install 'inspect-tinker[{extra}]'" + (f", {instead}" if instead else "") + "."
        )

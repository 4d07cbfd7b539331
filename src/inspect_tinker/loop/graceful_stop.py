"""Ctrl-C (SIGINT) or SIGTERM asks the loop to stop at its next safe point; a second one stops at once.

SIGTERM is what `docker stop`, Kubernetes and SLURM send before they kill a process, so it
is treated as Ctrl-C: a mid-round checkpoint, an `interrupted` event, the report, the lock
released. The exit code is the shell's for the signal (errors.ExitCode: 130 after SIGINT,
143 after SIGTERM), which those managers already read as a graceful stop.
"""

from __future__ import annotations

import signal
import threading

from inspect_tinker.errors import exit_code_for

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """The run stopped at a safe point on request (signal `signum`); it can be resumed."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signal = signal.Signals(signum).name
        self.exit_code = exit_code_for(signum)


class StoppedAtOnce(KeyboardInterrupt):
    """A second stop signal: the run stops where it is, without waiting for a safe point."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signal = signal.Signals(signum).name
        self.exit_code = exit_code_for(signum)


class GracefulStop:
    """While active, the first SIGINT or SIGTERM sets `requested`; the second raises StoppedAtOnce."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None  # of the first stop signal
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "GracefulStop":
        # Signal handlers can only be installed from the main thread (notebooks embedding
        # the loop in a worker thread keep Python's default behaviour).
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def interrupted(self, message: str) -> RunInterrupted:
        """The exception that ends the run at a safe point after the stop request."""
        return RunInterrupted(message, self.signum or signal.SIGINT)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise StoppedAtOnce(signum)
        self.requested, self.signum = True, signum
        again = "Ctrl-C again" if signum == signal.SIGINT else "send it again"
        print(f"\n{signal.Signals(signum).name}: stopping at the next safe point ({again} to stop at once)...", flush=True)

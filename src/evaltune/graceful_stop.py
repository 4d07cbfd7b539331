"""Ctrl-C asks the loop to stop at its next safe point; a second Ctrl-C stops at once."""

from __future__ import annotations

import signal
import threading


class RunInterrupted(Exception):
    """The run stopped at a safe point on the user's request; it can be resumed."""


class GracefulStop:
    """While active, the first SIGINT sets `requested`; the second raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "GracefulStop":
        # Signal handlers can only be installed from the main thread (notebooks embedding
        # the loop in a worker thread keep Python's default behaviour).
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nStopping at the next safe point (Ctrl-C again to stop at once)...", flush=True)

"""Where this process stands among the processes `torchrun` or `accelerate launch` started.

Read from the launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK), with no torch: the
loop needs to know whether it is the reporting process (rank 0) with either backend, and
the Tinker backend runs without torch. The collectives over these processes are in
distributed.py (the local backend's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class LaunchedProcess:
    """This process's place among the data-parallel processes of a run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls):
        """Read the launcher's environment; a process started without a launcher is rank 0 of 1."""
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

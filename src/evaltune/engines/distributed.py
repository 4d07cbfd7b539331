"""Data-parallel training across processes started by `torchrun` or `accelerate launch`.

Both launchers start one process per GPU (or CPU worker), on one machine or many, and
tell each its place through the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT). Every process runs the whole loop on the same data; the engine trains on
its share of each step's batch and PyTorch's DistributedDataParallel sums the gradients,
so all processes hold the same adapter after every step.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DataParallel:
    """This process's place among the data-parallel processes of a run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "DataParallel":
        """Read the launcher's environment; a process started without a launcher is rank 0 of 1."""
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def start(self, device: torch.device) -> torch.device:
        """Join the process group (NCCL on CUDA, gloo on CPU); return this process's device."""
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None)
            atexit.register(dist.destroy_process_group)
        return device

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Each value summed over all processes (the values themselves when alone)."""
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

"""Data-parallel training across processes started by `torchrun` or `accelerate launch`.

Both launchers start one process per GPU (or CPU worker), on one machine or many, and
tell each its place through the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT). Every process runs the whole loop on the same data; the backend trains on
its share of each step's batch and PyTorch's DistributedDataParallel sums the gradients,
so all processes hold the same adapter after every step.

With `distributed: fsdp` the model is sharded instead of copied (PyTorch's FSDP2,
`fully_shard`): each process holds 1/world_size of every weight, base and adapter, and
gathers a layer's full weights only while that layer runs. Every forward pass is then a
collective: all processes must run the same number of them, in training and in sampling
(see `lockstep`).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import FSDPModule, fully_shard

from inspect_tinker.provider.launch import LaunchedProcess


@dataclass(frozen=True)
class DataParallel(LaunchedProcess):
    """This process's place among the data-parallel processes of a run, and their collectives."""

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

    def gather(self, value: object) -> list[object]:
        """Every process's `value` (picklable), in rank order; the same list in every process."""
        values: list[object] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values


def shard(causal_lm: nn.Module) -> FSDPModule:
    """Shard a transformers causal LM (with its LoRA layers inside) over the process group.

    Each transformer block (the classes the model names in `_no_split_modules`) becomes
    one FSDP unit, gathered only while it runs; the rest (embeddings, final norm, output
    head) forms the root unit. The root is the causal LM itself, not the PEFT wrapper
    around it: `generate` calls the causal LM's forward, so that is where the root's
    gather must happen. Returns the root, whose methods control gradient synchronisation.
    """
    blocks = set(getattr(causal_lm, "_no_split_modules", None) or [])
    for module in causal_lm.modules():
        if type(module).__name__ in blocks:
            fully_shard(module)
    return fully_shard(causal_lm)


Request = tuple[Hashable, Sequence]  # (settings, prompts)


class Lockstep:
    """Generation with a sharded model, the same batches in every process.

    Each process's evaluation asks for completions in batches of its own making (Inspect
    and the batcher decide them by timing), so the processes cannot simply each run their
    own: a sharded forward is a collective. Instead every call first gathers what each
    process asks for; all processes then generate every distinct (settings, prompt) pair
    asked for, together, and each keeps its own answers. A process whose evaluation is over
    calls `finish`, which keeps taking part (asking for nothing) until every process is
    done. torch's `Join` does this for DDP's uneven inputs but not for generation.
    """

    def __init__(self, data_parallel: DataParallel, generate: Callable[[Hashable, list], list]):
        self.data_parallel = data_parallel
        self.generate = generate  # (settings, prompts) -> one answer per prompt
        # Evaluations of several tasks may call from several threads; collectives must not interleave.
        self.lock = threading.Lock()

    def __call__(self, settings: Hashable, prompts: Sequence) -> list:
        """Answers to this process's `prompts`, generated together with the other processes' requests."""
        with self.lock:
            return self._round((settings, [tuple(p) for p in prompts]))

    def finish(self) -> None:
        """Take part in the others' generation until every process has finished asking."""
        with self.lock:
            while self._round(None):
                pass

    def _round(self, request: Request | None) -> list | bool:
        """One gathering: this request's answers, or (when asking for nothing) whether anyone asked."""
        requests = self.data_parallel.gather(request)
        wanted: dict[Hashable, dict[tuple, None]] = {}  # settings -> distinct prompts, in first-asked order
        for r in requests:
            if r is not None:
                wanted.setdefault(r[0], {}).update(dict.fromkeys(r[1]))
        answers = {}
        for settings, distinct in wanted.items():
            batch = max(len(r[1]) for r in requests if r is not None and r[0] == settings)
            prompts = list(distinct)
            for start in range(0, len(prompts), batch):
                chunk = prompts[start : start + batch]
                answers.update(zip(((settings, p) for p in chunk), self.generate(settings, [list(p) for p in chunk])))
        return bool(wanted) if request is None else [answers[(request[0], p)] for p in request[1]]

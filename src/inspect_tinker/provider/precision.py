"""`precision: auto` on CPU: bf16 autocast where it is measured faster than fp32, else fp32.

An instruction flag does not tell: AVX512-BF16 CPUs differ. On an AMD EPYC with it, bf16
autocast trained 2.55x as fast as fp32 (bench/README.md); on an Intel Xeon with it and no
AMX, 0.63x. So the backend times the operation that dominates a training step, a linear
layer over frozen fp32 weights, in fp32 and under bf16 autocast (which casts the weights
on every call, as in training), once per machine: the result is cached under the same
folder as the bundled model, keyed on the CPU model, the torch version and the number of
threads, because each of them changes the answer. The probe takes tens of milliseconds.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from inspect_tinker.provider.base_model import cache_root

CACHE_FILE = "cpu_precision.json"
# A probe matmul must be clearly faster in bf16: the rest of a step (activation casts,
# elementwise work, the optimizer) does not speed up, and timings on a shared machine jitter.
# On the AMD EPYC of bench/README.md the probe measured 4.2x and training 2.55x.
MIN_BF16_SPEEDUP = 1.25
_PROBE_SHAPE = (256, 1024, 1024)  # tokens x in x out: 0.5 GFLOP, a few ms in fp32
_PROBE_REPEATS = 5  # the fastest of five: a short call is rarely interrupted in all of them


@dataclass(frozen=True)
class PrecisionChoice:
    """What `precision: auto` chose on this CPU, and why."""

    precision: str  # "bf16" or "fp32"
    reason: str  # one line for the console
    fp32_seconds: float  # the probe's time, fastest repeat
    bf16_seconds: float
    cached: bool  # read from the cache of an earlier measurement on this machine
    machine: str  # the cache key: CPU model, torch version, threads


def cpu_model_name() -> str:
    """The CPU's model name (`AMD EPYC`, `Intel(R) Xeon(R) Platinum 8488C`), or the architecture when unknown."""
    # /proc/cpuinfo is the one place Linux names the model; platform.processor() there is just
    # "x86_64", and py-cpuinfo takes about a second to find the same line.
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def decide_precision(fp32_seconds: float, bf16_seconds: float) -> tuple[str, str]:
    """(precision, reason) for probe times: bf16 when it is at least MIN_BF16_SPEEDUP faster."""
    speedup = fp32_seconds / bf16_seconds
    if speedup >= MIN_BF16_SPEEDUP:
        return "bf16", f"bf16 autocast matmuls ran {speedup:.2f}x as fast as fp32 on this CPU"
    return "fp32", f"bf16 autocast matmuls ran only {speedup:.2f}x as fast as fp32 on this CPU (bf16 needs {MIN_BF16_SPEEDUP}x)"


def probe() -> tuple[float, float]:
    """Seconds of one linear layer's forward pass in fp32 and under bf16 autocast (fastest repeat of each)."""
    tokens, inputs, outputs = _PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)  # never the global random state, which seeds the adapter
    x = torch.randn(tokens, inputs, generator=generator)
    weight = torch.randn(outputs, inputs, generator=generator)  # frozen: autocast casts it on every call

    def fastest(bf16: bool) -> float:
        times = []
        for _ in range(_PROBE_REPEATS + 1):  # the first call warms the kernels up and is not counted
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                F.linear(x, weight)
            times.append(time.perf_counter() - start)
        return min(times[1:])

    return fastest(False), fastest(True)


def choose_cpu_precision(cache_dir: Path | None = None) -> PrecisionChoice:
    """The precision `auto` trains in on this CPU: from the cache, else measured now and cached.

    `cache_dir` defaults to the folder the bundled model is cached in.
    """
    machine = f"{cpu_model_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads"
    path = Path(cache_dir or cache_root()) / CACHE_FILE
    cache = _read(path)
    if machine in cache:
        fp32_seconds, bf16_seconds, cached = cache[machine]["fp32_seconds"], cache[machine]["bf16_seconds"], True
    else:
        (fp32_seconds, bf16_seconds), cached = probe(), False
        _write(path, {**cache, machine: {"fp32_seconds": fp32_seconds, "bf16_seconds": bf16_seconds}})
    precision, reason = decide_precision(fp32_seconds, bf16_seconds)
    reason += f" (measured once for {machine}, cached in {path})" if cached else f" (measured now, cached in {path})"
    return PrecisionChoice(precision, reason, fp32_seconds, bf16_seconds, cached, machine)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or damaged: measure again
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict) -> None:
    """Replace the cache atomically: processes of a data-parallel run may write at the same time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
            json.dump(data, f, indent=1)
        os.replace(f.name, path)
    except OSError:  # a read-only cache folder only costs the next run a measurement
        pass

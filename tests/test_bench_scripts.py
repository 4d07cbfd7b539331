"""The benchmark scripts keep up with the code they measure.

They are run by hand (their results are written down in bench/README.md), so nothing else
would notice when a change to the package breaks them. The training benchmark runs here in
its smallest mode (the tiny model, our side only, one step); the others need the bundled
model, a peer's libraries (the `bench` extra), an MLflow server or a local Tinker server,
and minutes each, so they are not run here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_the_training_benchmark_imports_neither_inspect_nor_the_config():
    # A GPU machine lent for benchmarks may have torch, transformers, peft and TRL only.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('bench', {str(BENCH / 'train_throughput.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('inspect_ai', 'pydantic')"
        " or m in ('inspect_tinker.config', 'inspect_tinker.evals', 'inspect_tinker.tracking', 'inspect_tinker.loop')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_training_benchmark_trains_and_writes_its_measurement(tiny_model_dir, tmp_path):
    out = tmp_path / "train.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "train_throughput.py"), "--model", str(tiny_model_dir), "--variants", "ours:fp32",
         "--steps", "1", "--warmup", "0", "--batch-size", "2", "--max-seq-length", "256", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    written = json.loads(out.read_text())
    env = written["environment"]
    assert (env["model"], env["batch_size"], env["steps"], env["warmup"]) == (str(tiny_model_dir), 2, 1, 0)
    [result] = written["runs"]["ours:fp32"]
    assert (result["precision"], result["gradient_checkpointing"]) == ("fp32", False)
    assert result["tokens"] > 0 and result["seconds"] > 0 and result["flops_done"] > 0
    assert result["tokens_per_second"] == pytest.approx(result["tokens"] / result["seconds"])
    assert result["peak_memory_gb"] > 0 and result["mfu"] > 0 and result["mfu_done"] > 0
    assert written["median"]["ours:fp32"]["tokens_per_second"] == result["tokens_per_second"]  # the median of one
    assert "ours:fp32" in done.stdout  # the table a person reads

"""Data-parallel training: two CPU processes (gloo) under torchrun train like one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from evaltune.cli import main


def step_losses(run_dir):
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [e["loss"] for e in events if e["event"] == "step"], events


def test_two_processes_give_the_loss_curve_of_one(write_run_config):
    # Three examples per step: the two processes get unequal shares (two and one), which
    # the per-token normalisation over the whole batch must make irrelevant. An epsilon far
    # above the gradients and no clipping make AdamW's update proportional to the gradient,
    # so a gradient summed wrongly (a factor off) changes the curve too.
    config = write_run_config(
        batch_size=3, steps_per_round=3, max_rounds=2, eval_threshold=1.0, learning_rate=0.3,
        adam_eps=1.0, max_grad_norm=0.0, precision="fp32", baseline_eval=False,
    )
    assert main(["run", "--config", str(config), "--run-name", "one"]) == 1
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "evaltune", "run", "--config", str(config), "--run-name", "two", "--set", "micro_batch_size=1"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"},
    )
    runs = config.parent / "runs"
    assert (runs / "two" / "summary.json").is_file(), proc.stdout + proc.stderr
    one, _ = step_losses(runs / "one")
    two, events = step_losses(runs / "two")
    assert len(one) == len(two) == 6
    assert one[0] > one[-1]  # the curve moves, so matching it means something
    assert two == pytest.approx(one, rel=1e-4)
    ready = next(e for e in events if e["event"] == "engine_ready")
    assert ready["info"]["processes"] == 2
    # The second process kept its own record aside instead of writing into the run folder.
    assert (runs / ".rank-1" / "two" / "summary.json").is_file()

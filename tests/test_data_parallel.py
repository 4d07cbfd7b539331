"""Data-parallel training: two CPU processes (gloo) under torchrun train like one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

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


def run_two_processes(config, run_name, *overrides):
    """`evaltune run` under torchrun with two gloo processes on CPU; the completed process."""
    sets = [arg for o in overrides for arg in ("--set", o)]
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "evaltune", "run", "--config", str(config), "--run-name", run_name, *sets],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"},
    )


def test_two_sharded_processes_train_and_save_the_adapter_of_one(write_run_config, tiny_model_dir):
    # As above, with the model sharded over the two processes (FSDP2): each holds half of
    # every weight, gathers a layer only while it runs, and the evaluations between rounds
    # generate with the sharded model. Two micro-batches per process exercise the
    # gradient sync on the last one only.
    config = write_run_config(
        batch_size=4, steps_per_round=3, max_rounds=2, eval_threshold=1.0, learning_rate=0.3,
        adam_eps=1.0, max_grad_norm=0.0, precision="fp32", baseline_eval=False,
    )
    assert main(["run", "--config", str(config), "--run-name", "one"]) == 1
    proc = run_two_processes(config, "two", "distributed=fsdp", "micro_batch_size=1")
    runs = config.parent / "runs"
    assert (runs / "two" / "summary.json").is_file(), proc.stdout + proc.stderr
    one, _ = step_losses(runs / "one")
    two, events = step_losses(runs / "two")
    assert len(one) == len(two) == 6
    assert one[0] > one[-1]
    assert two == pytest.approx(one, rel=1e-4)
    ready = next(e for e in events if e["event"] == "engine_ready")
    assert ready["info"]["processes"] == 2 and ready["info"]["sharded"]
    # Both processes evaluated the sharded model and scored what one process scored.
    scores = {name: [e["score"] for e in step_losses(runs / name)[1] if e["event"] == "eval_result"] for name in ("one", "two")}
    assert len(scores["two"]) == 2 and scores["two"] == pytest.approx(scores["one"])
    # The saved adapter is whole (not a shard), loads in PEFT, and equals one process's.
    saved_one = load_file(runs / "one" / "rounds" / "2" / "adapter" / "adapter_model.safetensors")
    saved_two = load_file(runs / "two" / "rounds" / "2" / "adapter" / "adapter_model.safetensors")
    assert saved_two.keys() == saved_one.keys()
    for key, tensor in saved_one.items():
        assert saved_two[key].shape == tensor.shape
        torch.testing.assert_close(saved_two[key], tensor, rtol=1e-4, atol=1e-5)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    PeftModel.from_pretrained(base, runs / "two" / "rounds" / "2" / "adapter")


def test_sharding_refuses_a_batch_the_processes_cannot_share_equally(write_run_config, monkeypatch, capsys):
    config = write_run_config(batch_size=3, distributed="fsdp", baseline_eval=False)
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun tells each of two processes
    assert main(["run", "--config", str(config)]) == 2
    assert "distributed: fsdp needs batch_size (3) to be a multiple of the 2 processes" in capsys.readouterr().err


def test_sharding_refuses_growing_the_adapter(write_run_config, capsys):
    config = write_run_config(distributed="fsdp", policy="grow_rank")
    assert main(["run", "--config", str(config)]) == 2
    assert "policy: grow_rank cannot be combined with distributed: fsdp" in capsys.readouterr().err

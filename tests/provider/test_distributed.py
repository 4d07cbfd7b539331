"""Data-parallel training: two CPU processes (gloo) under torchrun train like one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from inspect_tinker.cli import main
from inspect_tinker.tracking import RunFolder


def read_events(run_dir):
    """The run's events so far; a line still being written is left out."""
    return RunFolder(run_dir).read_events()


def step_losses(run_dir):
    events = read_events(run_dir)
    return [e["loss"] for e in events if e["event"] == "step"], events


# The worker processes run one intra-op thread each (as OMP_NUM_THREADS=1 tells them), so
# the one-process reference does too: matrix products and reductions split their sums by
# thread count, and 2 threads against 1 moved the adapter by 3e-6 on its own (measured).
def worker_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


@contextmanager
def one_thread():
    """Run the block with one intra-op thread, as each worker process does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def one_process_run(config, run_name):
    """`inspect-tinker run` in this process, with one thread like each worker; the exit code."""
    with one_thread():
        return main(["run", str(config), "--run-name", run_name])


def test_two_processes_give_the_loss_curve_of_one(write_run_config):
    # Three examples per step: the two processes get unequal shares (two and one), which
    # the per-token normalisation over the whole batch must make irrelevant. An epsilon far
    # above the gradients and no clipping make AdamW's update proportional to the gradient,
    # so a gradient summed wrongly (a factor off) changes the curve too.
    config = write_run_config(
        batch_size=3, steps_per_round=3, max_rounds=2, eval_threshold=1.0, learning_rate=0.3,
        adam_eps=1.0, max_grad_norm=0.0, precision="fp32", baseline_eval=False,
    )
    assert one_process_run(config, "one") == 1
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "inspect_tinker", "run", str(config), "--run-name", "two", "--set", "micro_batch_size=1"],
        capture_output=True, text=True, timeout=1800, env=worker_env(),
    )
    runs = config.parent / "runs"
    assert (runs / "two" / "summary.json").is_file(), proc.stdout + proc.stderr
    one, _ = step_losses(runs / "one")
    two, events = step_losses(runs / "two")
    assert len(one) == len(two) == 6
    assert one[0] > one[-1]  # the curve moves, so matching it means something
    assert two == pytest.approx(one, rel=1e-4)
    ready = next(e for e in events if e["event"] == "backend_ready")
    assert ready["info"]["processes"] == 2
    # The second process kept its own record aside instead of writing into the run folder.
    assert (runs / ".rank-1" / "two" / "summary.json").is_file()


def torchrun(*args):
    """`inspect-tinker ARGS` under torchrun with two gloo processes on CPU; the running launcher."""
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "inspect_tinker", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=worker_env(),
    )


def kill_with_workers(launcher):
    """SIGKILL torchrun, then its workers (each in a session of its own), as a crash would."""
    workers = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    launcher.kill()
    launcher.wait()
    for pid in workers:
        os.kill(int(pid), signal.SIGKILL)


def run_two_processes(config, run_name, *overrides):
    """`inspect-tinker run` under torchrun with two gloo processes on CPU; the completed process."""
    sets = [arg for o in overrides for arg in ("--set", o)]
    proc = torchrun("run", str(config), "--run-name", run_name, *sets)
    proc.output = proc.communicate(timeout=1800)[0]
    return proc


def test_two_sharded_processes_train_and_save_the_adapter_of_one(write_run_config, tiny_model_dir):
    # As above, with the model sharded over the two processes (FSDP2): each holds half of
    # every weight, gathers a layer only while it runs, and the evaluations between rounds
    # generate with the sharded model. Two micro-batches per process exercise the
    # gradient sync on the last one only.
    config = write_run_config(
        batch_size=4, steps_per_round=3, max_rounds=2, eval_threshold=1.0, learning_rate=0.3,
        adam_eps=1.0, max_grad_norm=0.0, precision="fp32", baseline_eval=False,
    )
    assert one_process_run(config, "one") == 1
    proc = run_two_processes(config, "two", "distributed=fsdp", "micro_batch_size=1")
    runs = config.parent / "runs"
    assert (runs / "two" / "summary.json").is_file(), proc.output
    one, _ = step_losses(runs / "one")
    two, events = step_losses(runs / "two")
    assert len(one) == len(two) == 6
    assert one[0] > one[-1]
    assert two == pytest.approx(one, rel=1e-4)
    ready = next(e for e in events if e["event"] == "backend_ready")
    assert ready["info"]["processes"] == 2 and ready["info"]["sharded"]
    # Both processes evaluated the sharded model and scored what one process scored.
    scores = {name: [e["score"] for e in step_losses(runs / name)[1] if e["event"] == "eval_result"] for name in ("one", "two")}
    assert len(scores["two"]) == 2 and scores["two"] == pytest.approx(scores["one"])
    # The saved adapter is whole (not a shard), loads in PEFT, and equals one process's.
    saved_one = load_file(runs / "one" / "rounds" / "2" / "adapter" / "adapter_model.safetensors")
    saved_two = load_file(runs / "two" / "rounds" / "2" / "adapter" / "adapter_model.safetensors")
    assert saved_two.keys() == saved_one.keys()
    # Not bit for bit: sharded, each step's four micro-batch gradients are summed as (g1+g2)+(g3+g4)
    # (each process two, then the reduce-scatter) instead of ((g1+g2)+g3)+g4. In fp32 (unit
    # roundoff u = 6e-8) the two sums differ by at most 2·3·u·Σ|g_i| ≤ 6e-7 per element (Σ|g_i| ≤ 1.6
    # here, measured); AdamW with eps 1 passes a gradient error on at most ×lr (0.3) into the step,
    # so 6 steps add at most 6·0.3·6e-7 ≈ 1e-6 directly, and later gradients, taken at weights that
    # already differ, amplify it: 4e-6 measured. atol 1e-4 is 25× that, while any real fault (a lost
    # shard, a gradient off by a factor) moves the weights by a whole update, ~1e-1 (they move 0.49).
    for key, tensor in saved_one.items():
        assert saved_two[key].shape == tensor.shape
        torch.testing.assert_close(saved_two[key], tensor, rtol=1e-4, atol=1e-4)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    PeftModel.from_pretrained(base, runs / "two" / "rounds" / "2" / "adapter")


def test_a_killed_sharded_run_resumes_to_the_result_of_an_uninterrupted_one(write_run_config):
    # Round 1 of ten steps and round 2 of a hundred, sharded over two processes (with no
    # baseline, round 1 counts as rising, and more_steps makes round 2 ten times longer). One
    # run goes through; the other is killed (launcher and workers, SIGKILL) early in round 2,
    # once both processes have recorded round 1's checkpoint as their restart point, and is
    # resumed under torchrun: every process must reload the whole adapter into its shards and
    # AdamW's moments (saved gathered) into its shards of the optimizer, so that round 2's
    # steps repeat the uninterrupted run's losses and end at its adapter.
    config = write_run_config(
        batch_size=4, steps_per_round=10, max_rounds=2, eval_threshold=1.0, learning_rate=0.3,
        adam_eps=1.0, max_grad_norm=0.0, precision="fp32", baseline_eval=False, distributed="fsdp",
        micro_batch_size=1, policy="more_steps", steps_growth=10,
    )
    runs = config.parent / "runs"
    reference = run_two_processes(config, "whole")
    assert reference.returncode == 1, reference.output

    killed = torchrun("run", str(config), "--run-name", "killed")
    deadline = time.time() + 1800  # generous: on a loaded machine the start alone can take minutes
    # A step of round 2 is a collective: when process 0 has logged one, process 1 has
    # recorded round 1's checkpoint as its restart point too. The 99 steps left in the round
    # leave seconds for the kill to land before round 2's checkpoint, even on a loaded machine.
    while not any(e["event"] == "step" and e["step"] == 11 for e in read_events(runs / "killed")):
        assert killed.poll() is None and time.time() < deadline, killed.communicate()[0]
        time.sleep(0.02)
    kill_with_workers(killed)
    assert not (runs / "killed" / "summary.json").exists()

    resumed = torchrun("resume", str(runs / "killed"))
    output = resumed.communicate(timeout=1800)[0]
    assert resumed.returncode == 1, output
    evs = read_events(runs / "killed")
    restart = next(i for i, e in enumerate(evs) if e["event"] == "resumed")
    assert evs[restart]["round"] == 2 and evs[restart]["global_step"] == 10
    after = [(e["step"], e["loss"]) for e in evs[restart:] if e["event"] == "step"]
    whole = [(e["step"], e["loss"]) for e in read_events(runs / "whole") if e["event"] == "step"]
    assert [s for s, _ in after] == list(range(11, 111)) and [s for s, _ in whole] == list(range(1, 111))
    # Round 2 moves the loss, so matching it means something. Which way it moves on this random tiny
    # model at lr 0.3 depends on the CPU's arithmetic (it rose 9.72 -> 9.77 on one machine, fell on another).
    assert abs(whole[10][1] - whole[-1][1]) > 1e-3
    assert [loss for _, loss in after] == pytest.approx([loss for _, loss in whole[10:]], rel=1e-4)
    saved = {
        name: load_file(runs / name / "rounds" / "2" / "adapter" / "adapter_model.safetensors")
        for name in ("whole", "killed")
    }
    assert saved["killed"].keys() == saved["whole"].keys()
    for key, tensor in saved["whole"].items():
        torch.testing.assert_close(saved["killed"][key], tensor, rtol=1e-4, atol=1e-5)


def test_sharding_refuses_a_batch_the_processes_cannot_share_equally(write_run_config, monkeypatch, capsys):
    config = write_run_config(batch_size=3, distributed="fsdp", baseline_eval=False)
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun tells each of two processes
    assert main(["run", str(config)]) == 2
    assert "distributed: fsdp needs batch_size (3) to be a multiple of the 2 processes" in capsys.readouterr().err


def test_sharding_refuses_growing_the_adapter(write_run_config, capsys):
    config = write_run_config(distributed="fsdp", policy="grow_rank")
    assert main(["run", str(config)]) == 2
    assert "policy: grow_rank cannot be combined with distributed: fsdp" in capsys.readouterr().err

"""Crash safety of RL rounds: kill -9 while a round samples, then resume.

Runs are real `inspect-tinker` processes on the tiny random model, rewarded by
tests/length_reward.py (its rewards vary within a group, so every step trains). A resumed run must
sample the same completions again (the same reward at every step), train to the same adapter
weights and leave the same stage logs as an uninterrupted run with the same seed: the steps'
sampling seeds come from the run's seed, round and step, which the run state holds.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
import yaml
import length_reward
from run_logs import stage_logs
from run_processes import events, start, wait_for_event
from safetensors.torch import load_file


# 2 rounds of 3 steps; a partial checkpoint after the second step of each round.
ROUNDS = dict(max_rounds=2, steps_per_round=3, save_every_steps=2)


def _config(root: Path, tiny_model_dir: Path) -> Path:
    config = {"base_model": str(tiny_model_dir), "method": "rl",
              "rl": {"tasks": [f"{length_reward.__file__}@lengthy"], "group_size": 4, "prompts_per_step": 2, "max_tokens": 8},
              "eval_tasks": [{"task": f"{length_reward.__file__}@lengthy", "task_args": {"held_out": True}}],
              "eval_threshold": 1.0, "regression_guard": False, "generation": {"max_tokens": 8},
              "learning_rate": 1e-2, "lora_rank": 4, "seed": 0, "output_dir": "runs", "run_name": "test", **ROUNDS}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def outcome(run_dir: Path) -> dict:
    """What must not depend on the kill: each step's seed and mean reward and loss (a replayed
    step's last record wins), the scores, the final adapter weights and the stage logs."""
    steps = {e["step"]: e for e in events(run_dir) if e["event"] == "rl_step"}
    summary = json.loads((run_dir / "summary.json").read_text())
    weights = load_file(run_dir / "rounds" / str(ROUNDS["max_rounds"]) / "adapter" / "adapter_model.safetensors")
    return {"seeds": {k: s["seed"] for k, s in steps.items()}, "rewards": {k: s["mean_reward"] for k, s in steps.items()},
            "losses": {k: s["loss"] for k, s in steps.items()}, "scores": [r["score"] for r in summary["rounds"]],
            "weights": weights, "stages": stage_logs(run_dir)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir):
    """An uninterrupted run of the same configuration."""
    root = tmp_path_factory.mktemp("rl-reference")
    proc = start(["run", str(_config(root, tiny_model_dir))], root)
    assert proc.wait(timeout=1200) == 1, proc.stdout.read()
    return outcome(root / "runs" / "test")


def test_an_rl_run_killed_while_sampling_resumes_to_the_same_rewards_and_weights(tmp_path, tiny_model_dir, reference):
    # Killed while round 2's third step samples, after the round's partial checkpoint (step 5):
    # the resumed round goes on from that checkpoint at its third step's seed.
    run_dir = tmp_path / "runs" / "test"
    proc = start(["run", str(_config(tmp_path, tiny_model_dir))], tmp_path)
    wait_for_event(proc, run_dir, lambda e: e["event"] == "partial_checkpoint_saved" and e["step"] == 5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((run_dir / "state.json").read_text())
    assert (state["round"], state["phase"], state["global_step"]) == (2, "training", 5)

    resumed = start(["resume", str(run_dir)], tmp_path)
    output = resumed.communicate(timeout=1200)[0]
    assert resumed.returncode == 1, output
    assert "Resuming" in output
    got = outcome(run_dir)
    assert sorted(got["rewards"]) == [1, 2, 3, 4, 5, 6]
    assert got["seeds"] == reference["seeds"]
    assert got["rewards"] == reference["rewards"]  # the same completions sampled again
    assert len(set(got["rewards"].values())) > 1  # not a constant the test could not tell apart
    for step, loss in reference["losses"].items():
        assert got["losses"][step] == pytest.approx(loss, rel=1e-5, abs=1e-9), step
    assert got["scores"] == reference["scores"]
    assert got["stages"] == reference["stages"]
    for name in reference["weights"]:
        torch.testing.assert_close(got["weights"][name], reference["weights"][name], rtol=1e-5, atol=1e-7)
    after = events(run_dir)
    after = after[next(i for i, e in enumerate(after) if e["event"] == "resumed"):]
    first = next(e for e in after if e["event"] == "round_started")
    assert (first["round"], first["resumed_at_step"]) == (2, 2)  # from the partial checkpoint, not the round's start
    assert [e["step"] for e in after if e["event"] == "rl_step"] == [6]

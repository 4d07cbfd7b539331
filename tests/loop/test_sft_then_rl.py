"""`method: sft_then_rl` end to end on the tiny model: round 1 trains on the training file, round 2 with RL.

Rewarded by tests/length_reward.py (its rewards differ within a group, so the RL step trains).
"""

from __future__ import annotations

import json

import length_reward
from run_logs import stage_logs

from inspect_tinker.cli import main


def test_sft_then_rl_trains_round_one_on_the_file_and_round_two_on_the_rewards(write_run_config, tmp_path):
    config = write_run_config(
        method="sft_then_rl", rl={"tasks": [f"{length_reward.__file__}@lengthy"], "group_size": 2, "prompts_per_step": 2,
                                  "max_tokens": 8},
        max_rounds=2, steps_per_round=2, eval_threshold=1.0, baseline_eval=False, lora_rank=4,
    )
    code = main(["run", str(config)])
    run_dir = tmp_path / "runs" / "test"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert code == summary["exit_code"] == 1 and summary["rounds_run"] == 2
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    started = {e["round"]: e.get("method", "sft") for e in events if e["event"] == "round_started"}
    assert started == {1: "sft", 2: "rl"}
    assert {e["round"] for e in events if e["event"] == "step"} == {1}  # cross-entropy steps on the file
    assert [e["round"] for e in events if e["event"] == "rl_step"] == [2, 2]  # policy steps on the rewards
    stages = [(r, stage) for r, stage, _ in stage_logs(run_dir)]
    assert stages == [(1, "train"), (1, "eval"), (2, "rollout"), (2, "rollout"), (2, "train"), (2, "eval")]
    assert summary["rounds"][-1]["global_step"] == 4  # round 2 continued round 1's adapter and step count

"""The RL example on the real bundled model: examples/rl/config.yaml's first round, as a user runs it.

The reward (`terse`, on the training questions) pays for the form alone: an answer that ends
within 10 words. The bar (`terse_and_right`, on held-out questions) pays only when that short
answer is also right, so the rise this test asks for cannot come from the reward hack the form
invites ("Great question!"), and the run must not raise the reward_hacking alert. Seeded: the
rollouts and the greedy evaluations are the same on every run of the same machine and torch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# A real rise: 6 more of the 24 held-out questions answered short and right than at baseline.
MARGIN = 0.25


@pytest.fixture(scope="module")
def first_round(tmp_path_factory):
    out = tmp_path_factory.mktemp("rl-example")
    proc = subprocess.run(
        [sys.executable, "-m", "inspect_tinker", "run", "--config", "examples/rl/config.yaml", "--output-dir", str(out),
         "--run-name", "rl", "--set", "max_rounds=1"],
        capture_output=True, text=True, timeout=3600, cwd=REPO,
    )
    run_dir = out / "rl"
    assert (run_dir / "summary.json").is_file(), proc.stdout + proc.stderr
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return proc, json.loads((run_dir / "summary.json").read_text()), events


def test_one_rl_round_raises_the_held_out_short_and_right_score_by_a_real_margin(first_round):
    proc, summary, events = first_round
    assert proc.returncode == summary["exit_code"], proc.stderr
    baseline, trained = (r["score"] for r in summary["rounds"])
    assert trained >= baseline + MARGIN, (baseline, trained)
    rewards = [e["mean_reward"] for e in events if e["event"] == "rl_step"]
    assert len(rewards) == 4 and rewards[-1] > rewards[0], rewards  # the reward the steps trained on rose too


def test_the_rise_is_right_answers_not_the_reward_hack(first_round):
    _, _, events = first_round
    assert not [e for e in events if e["event"] == "alert" and e["alert"] == "reward_hacking"]
    baseline, trained = ({s.id: s for s in read_eval_log(e["tasks"][0]["log_path"]).samples}
                         for e in events if e["event"] == "eval_result")
    fixed = [trained[i] for i in trained if trained[i].scores["terse_and_right"].value == "C"
             and baseline[i].scores["terse_and_right"].value != "C"]
    assert fixed  # questions answered long before, short now: each short answer names the expected word
    for sample in fixed:
        answer = sample.output.completion
        assert len(answer.split()) <= 10 and re.search(rf"\b({sample.target})\b", answer, re.I), answer

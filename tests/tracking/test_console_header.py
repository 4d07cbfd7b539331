"""The console's run header says what the rounds train on: the training file, or the RL rewards."""

from io import StringIO

import pytest
from rich.console import Console

from inspect_tinker.config import Config
from inspect_tinker.loop.session import brief
from inspect_tinker.tracking.console import ConsoleSink


def header(keys: dict) -> str:
    sink = ConsoleSink(Console(file=StringIO(), width=200))
    sink.handle({"event": "run_started", "run_dir": "/runs/r", "config": brief(Config.model_validate(keys))})
    return sink.console.file.getvalue()


@pytest.mark.parametrize("keys, says, never", [
    ({"train_file": "t.jsonl"}, ["Training data:   ", "3 × 10 steps of 8 examples"], ["RL rewards"]),
    ({"method": "rl", "rl": {"tasks": ["r.py@reward"], "group_size": 4, "prompts_per_step": 8}},
     ["RL rewards:      reward (4 completions × 8 prompts a step, importance_sampling)", "3 × 10 steps\n"],
     ["Training data", "examples"]),
    ({"method": "sft_then_rl", "train_file": "t.jsonl", "rl": {"tasks": ["r.py@reward"]}},
     ["Training data:   ", "RL rewards:      reward (round 1 on the training data, then 4 completions"], []),
])
def test_the_header_names_the_training_file_or_the_rl_rewards(keys, says, never):
    text = header({"eval_tasks": ["e.jsonl"], "max_rounds": 3, "steps_per_round": 10, "batch_size": 8, **keys})
    for part in says:
        assert part in text
    for part in never:
        assert part not in text

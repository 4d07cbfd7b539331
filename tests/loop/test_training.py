"""The loop's training lines: the learning rate of every step and what a round reports."""

import json

import pytest

from inspect_tinker.cli import main
from inspect_tinker.policies.learning_rate import recommended_lora_learning_rate


def events_of(config):
    lines = (config.parent / "runs" / "test" / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_each_step_uses_the_schedule_times_the_decayed_round_rate(write_run_config):
    config = write_run_config(
        max_rounds=2, steps_per_round=3, eval_threshold=1.0, learning_rate=1e-2, lr_decay=0.5,
        lr_schedule="cosine", warmup_steps=2, baseline_eval=False,
    )
    assert main(["run", str(config)]) == 1
    rates = [e["learning_rate"] for e in events_of(config) if e["event"] == "step"]
    # Round 1 warms up over its first 2 steps; each round's cosine spans its own steps after warmup.
    expected = [1e-2 * f for f in (0.5, 1.0, 1.0)] + [5e-3 * f for f in (1.0, 0.75, 0.25)]
    assert rates == pytest.approx(expected)


def test_auto_learning_rate_is_chosen_for_the_model_and_printed(write_run_config, tiny_model_dir, capsys):
    config = write_run_config(learning_rate="auto", max_rounds=1, eval_threshold=0.0, baseline_eval=False)
    assert main(["run", str(config)]) == 0
    events = events_of(config)
    chosen = next(e for e in events if e["event"] == "learning_rate_chosen")
    hidden = json.loads((tiny_model_dir / "config.json").read_text())["hidden_size"]
    assert chosen["learning_rate"] == pytest.approx(recommended_lora_learning_rate("llama", hidden))
    assert {e["learning_rate"] for e in events if e["event"] == "step"} == {chosen["learning_rate"]}
    out = capsys.readouterr().out
    assert f"Learning rate (auto): {chosen['learning_rate']:.2e}" in out


def test_each_round_reports_its_share_of_padding(write_run_config, capsys):
    config = write_run_config(max_rounds=1, eval_threshold=0.0, baseline_eval=False, packing=False)
    assert main(["run", str(config)]) == 0
    saved = next(e for e in events_of(config) if e["event"] == "round_trained")
    assert 0 < saved["pad_fraction"] < 1  # the three facts differ in length, so padding them shows
    assert f"{saved['pad_fraction']:.0%} padding" in capsys.readouterr().out

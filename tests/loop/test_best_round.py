"""Best-round selection, rollback and bounded disk use, on the tiny model.

The evaluation is replaced by a fixed score sequence so that regressions happen on cue;
training, checkpoints and restores are real.
"""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from evalresults import scripted_scores

from inspect_tinker.config import load_config
from inspect_tinker.loop.session import run
from inspect_tinker.policies import best_round
from inspect_tinker.tracking import RoundRecord


def test_the_best_round_is_the_highest_score_and_the_earlier_on_a_tie():
    rounds = [RoundRecord(0, None, None, 0.6, None), RoundRecord(1, 1e-3, 1.0, 0.5, "a1"),
              RoundRecord(2, 1e-3, 1.0, 0.7, "a2"), RoundRecord(3, 1e-3, 1.0, 0.7, "a3")]
    assert best_round(rounds).round == 2


def test_the_base_model_is_the_best_round_when_no_trained_round_beats_it():
    rounds = [RoundRecord(0, None, None, 0.9, None), RoundRecord(1, 1e-3, 1.0, 0.5, "a1"),
              RoundRecord(2, 1e-3, 1.0, 0.9, "a2")]
    assert best_round(rounds).round == 0  # a tie: the earlier, and untrained, wins
    assert best_round(rounds, trained_only=True).round == 2  # what a rollback can load


def test_a_baseline_that_meets_the_bar_ends_the_run_before_any_training(monkeypatch, write_run_config, tmp_path, capsys):
    scripted_scores(monkeypatch, {0: 0.8})  # no trained round may be evaluated: the script has none
    summary = run(load_config(write_run_config(max_rounds=3, eval_threshold=0.75)))
    assert summary["bar_met"] and summary["exit_code"] == 0 and summary["rounds_run"] == 0
    assert summary["best_round"] == 0 and summary["best_score"] == 0.8 and summary["best_adapter"] is None
    assert any("meets the bar untrained" in line for line in summary["next_steps"])
    run_dir = tmp_path / "runs" / "test"
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    [decision] = [e for e in events if e["event"] == "decision"]
    assert decision["round"] == 0 and decision["stop"] and "nothing to train" in decision["reason"]
    assert not any(e["event"] in ("round_started", "step") for e in events)
    assert not (run_dir / "rounds" / "1").exists()


def test_the_summary_names_the_base_model_when_training_only_made_it_worse(monkeypatch, write_run_config):
    scripted_scores(monkeypatch, {0: 0.5, 1: 0.3, 2: 0.4})
    summary = run(load_config(write_run_config(max_rounds=2, eval_threshold=0.9)))
    assert summary["best_round"] == 0 and summary["best_score"] == 0.5 and summary["best_adapter"] is None
    assert summary["exit_code"] == 1 and summary["rounds_run"] == 2
    assert any("scored best, better than every trained round" in line for line in summary["next_steps"])


def test_the_summary_points_at_the_best_round_not_the_last(monkeypatch, write_run_config):
    scripted_scores(monkeypatch, {0: 0.0, 1: 0.2, 2: 0.6, 3: 0.4})
    summary = run(load_config(write_run_config(max_rounds=3, eval_threshold=0.9)))
    assert summary["best_round"] == 2 and summary["best_adapter"].endswith("rounds/2/adapter")
    assert summary["best_score"] == 0.6 and summary["exit_code"] == 1


def test_rollback_restores_the_best_rounds_adapter_before_the_next_round(monkeypatch, write_run_config, tmp_path):
    scripted_scores(monkeypatch, {0: 0.0, 1: 0.5, 2: 0.3, 3: 0.4})
    config = load_config(write_run_config(max_rounds=3, eval_threshold=0.9, on_regression="rollback"))
    run(config)
    run_dir = tmp_path / "runs" / "test"
    evs = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    decisions = {e["round"]: e for e in evs if e["event"] == "decision"}
    assert decisions[2]["rollback_to"] == 1 and decisions[1]["rollback_to"] is None

    # Round 3 continued from round 1's weights: replay round 3's steps from round 1 by hand.
    from inspect_tinker.data.batching import batch_for_step
    from inspect_tinker.data.prepare import check_training_records, prepare_training_data
    from inspect_tinker.loop.settings import backend_settings
    from inspect_tinker.provider.local_backend import LocalBackend

    engine = LocalBackend.from_settings(backend_settings(config))
    engine.load_checkpoint(run_dir / "rounds" / "1")
    checked = check_training_records(config.train_file, config.data, [])
    examples, _ = prepare_training_data(checked, engine.tokenizer, config.max_seq_length, config.data)
    lr = decisions[2]["next_learning_rate"]
    for step in range(4, 6):  # round 3 holds global steps 5 and 6 (0-based 4 and 5)
        engine.forward_backward([examples[i] for i in batch_for_step(len(examples), config.batch_size, step, config.seed)])
        engine.optim_step(lr)
    engine.save_checkpoint(tmp_path / "replay")
    replay = load_file(tmp_path / "replay" / "adapter" / "adapter_model.safetensors")
    actual = load_file(run_dir / "rounds" / "3" / "adapter" / "adapter_model.safetensors")
    for name in actual:
        torch.testing.assert_close(actual[name], replay[name])


def test_optimizer_states_are_kept_only_for_the_last_rounds_and_the_best(monkeypatch, write_run_config, tmp_path):
    scripted_scores(monkeypatch, {0: 0.0, 1: 0.6, 2: 0.1, 3: 0.2, 4: 0.3})
    run(load_config(write_run_config(max_rounds=4, eval_threshold=0.9, keep_last=1)))
    rounds = tmp_path / "runs" / "test" / "rounds"
    kept = {n for n in range(1, 5) if (rounds / str(n) / "trainer").exists()}
    assert kept == {1, 4}  # the best (1) and the last
    assert all((rounds / str(n) / "adapter" / "adapter_model.safetensors").exists() for n in range(1, 5))

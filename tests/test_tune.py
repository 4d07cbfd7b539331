"""`evaltune tune`: real Optuna studies over real (tiny-model) trial runs."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
import yaml

from evaltune.config import load_config
from evaltune.tune import _TrialSink

SEARCH = {"learning_rate": [1e-3, 1e-2], "lora_rank": [2, 4], "steps_per_round": [1, 2], "max_rounds": 1,
          "random_trials": 2}


def tune(config, trials: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "evaltune", "tune", str(config), "--trials", str(trials)],
        cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_two_workers_share_one_sqlite_study_and_a_rerun_resumes_it(write_run_config, tmp_path):
    config = write_run_config(tune=SEARCH, eval_threshold=1.0)
    folder = tmp_path / "runs" / "test"  # output_dir / run_name
    workers = [tune(config, 4) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [1, 1], outputs  # the tiny model never meets the bar

    storage = f"sqlite:///{folder / 'study.db'}"
    study = optuna.load_study(study_name="test", storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    # Each worker stops once the shared count reaches 4; one may be mid-trial then and finish a 5th.
    assert 4 <= len(finished) <= 5, [t.state for t in study.trials]
    assert len({t.user_attrs["worker"] for t in finished}) == 2, outputs  # both drew trials from the one study
    assert len({t.number for t in finished}) == len(finished)
    for t in finished:
        assert (folder / "trials" / f"trial-{t.number}" / "summary.json").is_file()
        assert 1e-3 <= t.params["learning_rate"] <= 1e-2 and t.params["lora_rank"] in (2, 4)

    rerun = tune(config, len(finished) + 1)
    output = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 1, output
    assert f"{len(finished)} of {len(finished) + 1} trials finished" in output  # resumed, not restarted
    study = optuna.load_study(study_name="test", storage=storage)
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == len(finished) + 1

    best = yaml.safe_load((folder / "best_config.yaml").read_text())
    assert {k: best[k] for k in study.best_params} == study.best_params
    assert "Best of" in output and str(folder / "best_config.yaml") in output
    assert load_config(folder / "best_config.yaml").learning_rate == study.best_params["learning_rate"]


def test_a_trial_below_the_median_of_earlier_trials_is_pruned():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    first = study.ask()
    for round_no in (1, 2):
        first.report(0.8, round_no)
    study.tell(first, 0.8)
    last_round = study.ask()
    _TrialSink(last_round, say=lambda line: None).handle({"event": "decision", "round": 1, "score": 0.1, "stop": True})
    assert last_round.storage.get_trial(last_round._trial_id).intermediate_values == {1: 0.1}  # reported, not pruned
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        _TrialSink(trial, say=lambda line: None).handle({"event": "decision", "round": 1, "score": 0.1, "stop": False})


def test_tune_with_bad_arguments_exits_2(write_run_config, capsys):
    from evaltune.cli import main

    assert main(["tune", str(write_run_config()), "--trials", "0"]) == 2
    assert "--trials 0" in capsys.readouterr().err

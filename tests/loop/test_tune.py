"""`inspect-tinker tune`: real Optuna studies over real (tiny-model) trial runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from inspect_tinker.config import load_config
from inspect_tinker.loop.tune import _TrialSink

SEARCH = {"learning_rate": [1e-3, 1e-2], "lora_rank": [2, 4], "steps_per_round": [1, 2], "max_rounds": 1,
          "random_trials": 2}


def tune(config, trials: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "inspect_tinker", "tune", str(config), "--trials", str(trials)],
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
    from inspect_tinker.cli import main

    assert main(["tune", str(write_run_config()), "--trials", "0"]) == 2
    assert "--trials 0" in capsys.readouterr().err


PASSWORD = "PLANTED-pg-password-41f7"


@pytest.fixture
def postgres(tmp_path_factory):
    """A real PostgreSQL server on 127.0.0.1 whose user `tuner` logs in with PASSWORD; yields its port.

    PostgreSQL refuses to run as root, so it runs as the unprivileged user 65534 (nobody).
    """
    import glob
    import os
    import shutil
    import signal
    import socket
    import tempfile
    import time

    psycopg = pytest.importorskip("psycopg")
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries or not shutil.which("setpriv") or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL's server binaries (Debian's postgresql package), setpriv and root to drop to nobody")
    bin_dir = Path(binaries[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="inspect-tinker-pg-"))  # outside pytest's root-only tmp folders
    (base / "pw").write_text(PASSWORD + "\n")
    os.chown(base, 65534, 65534)
    os.chown(base / "pw", 65534, 65534)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    subprocess.run([*as_nobody, str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", "tuner",
                    f"--pwfile={base / 'pw'}", "--auth=scram-sha-256", "-E", "UTF8"],
                   check=True, capture_output=True, cwd=base)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*as_nobody, str(bin_dir / "postgres"), "-D", str(base / "data"), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=base,
    )
    try:
        deadline = time.time() + 120  # a loaded machine starts it slowly; this waits, it asserts nothing
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user="tuner", password=PASSWORD, dbname="postgres",
                                     autocommit=True, connect_timeout=5) as conn:
                    conn.execute("CREATE DATABASE optuna")
                break
            except psycopg.OperationalError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
        yield port
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown: SIGTERM would wait for every client to leave
        server.wait(timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def test_a_storage_url_with_a_password_is_refused_without_being_echoed(write_run_config, capsys):
    from inspect_tinker.cli import main

    config = write_run_config(tune=SEARCH)
    url = f"postgresql+psycopg://tuner:{PASSWORD}@127.0.0.1/optuna"
    assert main(["tune", str(config), "--trials", "1", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert "tune.storage: the URL holds a credential (password)" in err and "(from --storage)" in err
    assert "set tune.storage: TUNE_STORAGE_URL" in err and PASSWORD not in err
    assert not (config.parent / "runs").exists()


def test_a_shared_postgres_study_takes_its_url_from_a_secret_and_writes_the_password_nowhere(
    write_run_config, postgres, tmp_path
):
    import os

    url = f"postgresql+psycopg://tuner:{PASSWORD}@127.0.0.1:{postgres}/optuna"
    config = write_run_config(tune={**SEARCH, "storage": "TUNE_STORAGE_URL"}, eval_threshold=1.0)
    proc = subprocess.run(
        [sys.executable, "-m", "inspect_tinker", "tune", str(config), "--trials", "1"], cwd=config.parent,
        env={**os.environ, "TUNE_STORAGE_URL": url}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the tiny model never meets the bar
    assert "in the storage in secret TUNE_STORAGE_URL" in proc.stdout
    study = optuna.load_study(study_name="test", storage=url)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]
    assert (tmp_path / "runs" / "test" / "trials" / "trial-0" / "config.json").is_file()
    assert PASSWORD not in proc.stdout + proc.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path

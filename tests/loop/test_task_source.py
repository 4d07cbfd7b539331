"""`inspect eval inspect_tinker/train_until_threshold` as an Inspect user runs it: in a project
folder, with Inspect's default log dir, every mistake one line on stderr under every display.

Each run is a real `inspect eval` subprocess training the tiny model for one step."""

from __future__ import annotations

import json

import pytest
from inspect_ai.log import read_eval_log
from inspect_commands import inspect_cli

from inspect_tinker.config import load_config
from inspect_tinker.errors import UsageError

SOURCE = "inspect_tinker/train_until_threshold"
ONE_STEP = {"max_rounds": 1, "steps_per_round": 1}


def logs_by_run(log_dir):
    """The run folder each Inspect log in `log_dir` names, mapped to its logs' (tags, stage)."""
    runs: dict[str, list] = {}
    for path in sorted(log_dir.glob("*.eval")):
        log = read_eval_log(str(path), header_only=True)
        entry = log.eval.metadata["inspect_tinker"]
        runs.setdefault(entry["run_dir"], []).append((set(log.eval.tags), entry["stage"]))
    return runs


def test_the_natural_command_runs_twice_in_a_project_folder_with_its_logs_in_inspects_log_dir(tmp_path, write_run_config):
    config = write_run_config(run_name=None, **ONE_STEP)  # no run_name: each run is named by its start time
    done = [inspect_cli("eval", SOURCE, "-T", f"config={config.name}", "--display", "none", cwd=tmp_path, env={})
            for _ in range(2)]
    assert [d.returncode for d in done] == [0, 0], [d.stderr for d in done]
    run_dirs = sorted(p for p in (tmp_path / "runs").iterdir())
    assert len(run_dirs) == 2 and all((d / "summary.json").is_file() for d in run_dirs)
    for run_dir in run_dirs:  # each run folder says where its logs went, and has none of its own
        assert json.loads((run_dir / "log_dir.json").read_text()) == {"log_dir": str(tmp_path / "logs")}
        assert not (run_dir / "logs").exists()
    runs = logs_by_run(tmp_path / "logs")
    assert sorted(runs) == [str(d) for d in run_dirs]
    for run_dir in run_dirs:  # the baseline, the round's training and its evaluation, each tagged with its run
        assert sorted(stage for _, stage in runs[str(run_dir)]) == ["eval", "eval", "train"]
        assert all(f"run-{run_dir.name}" in tags for tags, _ in runs[str(run_dir)])


def test_run_name_beside_a_log_dir_names_the_run_folder_and_the_logs_stay_in_the_log_dir(tmp_path, write_run_config):
    config = write_run_config(**ONE_STEP)
    done = inspect_cli("eval", SOURCE, "-T", f"config={config.name}", "-T", "run_name=other",
                       "--log-dir", "runs/x/logs", "--display", "none", cwd=tmp_path, env={})
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "runs" / "other"
    assert (run_dir / "summary.json").is_file() and not (tmp_path / "runs" / "x" / "summary.json").exists()
    assert json.loads((run_dir / "log_dir.json").read_text()) == {"log_dir": str(tmp_path / "runs" / "x" / "logs")}
    assert list(logs_by_run(tmp_path / "runs" / "x" / "logs")) == [str(run_dir)]
    assert f"Inspect logs:    {tmp_path / 'runs' / 'x' / 'logs'}" in done.stderr


@pytest.mark.parametrize("display", ["none", "plain", "rich"])
def test_a_task_source_mistake_is_one_line_on_stderr_and_exit_1_under_every_display(display, tmp_path):
    done = inspect_cli("eval", SOURCE, "-T", "config=nowhere.yaml", "--display", display, cwd=tmp_path, env={})
    assert done.returncode == 1
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert said == [f"{SOURCE}: config file nowhere.yaml does not exist."], done.stderr
    assert "Traceback" not in done.stdout + done.stderr and not (tmp_path / "runs").exists()


def test_inspect_eval_without_a_config_says_what_to_pass_with_an_example(tmp_path):
    done = inspect_cli("eval", SOURCE, "--display", "plain", cwd=tmp_path, env={})
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stdout
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert "pass -T config=<your config file>" in line and f"inspect eval {SOURCE} -T config=run.yaml" in line


def test_a_config_that_is_a_folder_is_called_a_folder_and_its_config_files_named(tmp_path, write_run_config):
    write_run_config()  # tmp_path/config.yaml
    with pytest.raises(UsageError, match=rf"config file {tmp_path} is a folder, not a file; name the config file in "
                                         rf"it, e.g. {tmp_path / 'config.yaml'}"):
        load_config(tmp_path)

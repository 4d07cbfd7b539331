"""`inspect-tinker runs` tells finished, running, interrupted and crashed runs apart from their folders alone.

The running, killed and interrupted runs are real `inspect-tinker` processes on the tiny model,
stopped in the middle of a round.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from inspect_tinker.cli import main
from inspect_tinker.report.contents import read_report_contents
from inspect_tinker.tracking import RunFolder

TRAINS_UNTIL_STOPPED = dict(max_rounds=1, steps_per_round=1_000_000, eval_threshold=1.0)


def start_mid_round(run_config_writer, tmp_path: Path, name: str):
    """Start a real run in the background that trains until stopped, and wait until it has trained
    a few steps of round 1 (after its baseline evaluation); return (runs folder, run folder, log, process)."""
    parent = tmp_path / "runs"
    config = run_config_writer(tmp_path, output_dir=str(parent), run_name=name, **TRAINS_UNTIL_STOPPED)
    run_dir, log = parent / name, tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "inspect_tinker", "run", str(config)],
        cwd=config.parent, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.time() + 1200  # generous: on a loaded machine the start alone can take minutes
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {log.read_text()}")
        steps = [e for e in RunFolder(run_dir).read_events() if e.get("event") == "step"]
        if len(steps) >= 3 and (run_dir / "run.lock").is_file():
            return parent, run_dir, log, proc
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no training steps within 1200 s: {log.read_text()}")


def listed(parent: Path, capsys) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["runs", str(parent), "--json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_a_run_killed_mid_round_goes_from_running_to_crashed_and_resumes_to_finished(
    run_config_writer, tmp_path, capsys, open_report
):
    parent, run_dir, _, proc = start_mid_round(run_config_writer, tmp_path, "killed")
    try:
        row = listed(parent, capsys)["killed"]
        assert row["status"] == "running" and f"process {proc.pid}" in row["detail"], row
        assert "training round 1" in row["detail"] and not row["resumable"]
        assert main(["report", str(run_dir)]) == 0
        page = open_report(run_dir / "report.html")
        assert page.console_errors == [] and page.text("#status") == "running"
        assert "still going" in page.text("#partial-banner")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=300)
    assert (run_dir / "run.lock").is_file()  # left behind by the killed process, naming a dead pid

    row = listed(parent, capsys)["killed"]
    assert row["status"] == "crashed" and row["resumable"], row
    assert row["resume_command"] == f"inspect-tinker resume {run_dir}"
    assert "training round 1" in row["detail"] and "killed" in row["detail"]
    assert row["rounds"] == 0 and row["baseline_score"] is not None and row["bar_met"] is None
    assert main(["runs", str(parent)]) == 0
    table = capsys.readouterr().out
    assert "crashed" in table and f"resume: inspect-tinker resume {run_dir}" in table

    # "Resumable" is a promise: keep it, with short rounds so that it ends.
    assert main(["resume", str(run_dir), "--set", "steps_per_round=2", "--force"]) == 1
    row = listed(parent, capsys)["killed"]
    assert row["status"] == "finished" and row["rounds"] == 1 and row["bar_met"] is False
    # The resumed round trained steps 1-2 again; the killed session's later steps do not count.
    assert [s["step"] for s in read_report_contents(run_dir).steps] == [1, 2]


def test_ctrl_c_mid_round_leaves_a_report_and_the_run_is_listed_as_interrupted(run_config_writer, tmp_path, capsys):
    parent, run_dir, log, proc = start_mid_round(run_config_writer, tmp_path, "stopped")
    try:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=1200) == 130, log.read_text()
    finally:
        proc.kill()
    assert f"Report: {run_dir / 'report.html'}" in log.read_text()
    assert 'id="status">interrupted<' in (run_dir / "report.html").read_text()
    row = listed(parent, capsys)["stopped"]
    assert row["status"] == "interrupted" and row["resumable"], row
    assert "training round 1" in row["detail"] and "stopped in round 1" in row["detail"]


def test_a_finished_run_is_listed_with_the_numbers_of_its_summary(write_run_config, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # one line per run (a narrow terminal wraps the cells)
    # No baseline: an untrained model meets a bar of 0, which ends the run before training.
    config = write_run_config(eval_threshold=0.0, baseline_eval=False)
    assert main(["run", str(config)]) == 0
    parent = config.parent / "runs"
    summary = json.loads((parent / "test" / "summary.json").read_text())
    row = listed(parent, capsys)["test"]
    assert row["status"] == "finished" and not row["resumable"]
    assert (row["rounds"], row["baseline_score"], row["best_score"], row["best_round"], row["bar_met"], row["best_adapter"]) == (
        summary["rounds_run"], summary["baseline_score"], summary["best_score"], summary["best_round"],
        summary["bar_met"], summary["best_adapter"],
    )
    assert row["wall_seconds"] == summary["wall_seconds"] and row["started"]
    assert main(["runs", str(parent)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("test"))
    assert "finished" in line and "yes" in line and f"{summary['best_score']:.3f} (1)" in line


def test_runs_of_a_missing_folder_is_a_usage_error(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere is not a folder" in err and "Traceback" not in err

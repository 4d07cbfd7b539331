"""`inspect-tinker compare A B` on real Inspect logs: one written by a real evaluation of the tiny
model (`inspect-tinker eval`, which also leaves a run folder), and a second one derived from it
with Inspect's own log API, one sample's score turned, so that what was fixed and broken is known."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log, write_eval_log
from inspect_ai.scorer import CORRECT, INCORRECT

from inspect_tinker.cli import main


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, run_config_writer) -> tuple[Path, Path]:
    """A run folder of one real evaluation (3 questions, the tiny model) and its Inspect log."""
    folder = tmp_path_factory.mktemp("compare")
    config = run_config_writer(folder)
    with contextlib.redirect_stdout(io.StringIO()):
        main(["eval", "--config", str(config), "--run-name", "base"])
    run_dir = folder / "runs" / "base"
    [log] = (run_dir / "logs").glob("*.eval")
    return run_dir, log


def turned(log_path: Path, out: Path, *, task: str | None = None) -> tuple[Path, str, bool]:
    """A copy of the log at `log_path` written to `out` whose first sample's score is turned (right
    <-> wrong), and under another task name when `task` is given; returns its path, that sample's
    id and whether it was right before."""
    log = read_eval_log(str(log_path))
    sample = log.samples[0]
    score = next(iter(sample.scores.values()))
    was_right = score.value == CORRECT
    score.value = INCORRECT if was_right else CORRECT
    if task is not None:
        log.eval.task = task
    write_eval_log(log, str(out))
    return out, str(sample.id), was_right


def compare(*args: str, capsys) -> tuple[int, str, str]:
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_run_folder_compared_with_its_own_log_changes_nothing(evaluated, capsys):
    run_dir, log = evaluated
    code, out, _ = compare(str(run_dir), str(log), "--json", capsys=capsys)
    assert code == 0
    [(task, result)] = json.loads(out)["tasks"].items()
    assert (result["n"], result["difference"], result["p_value"], result["fixed"], result["broke"]) == (3, 0.0, 1.0, [], [])
    assert result["ci_low"] < 0.0 < result["ci_high"]  # three samples say little either way


def test_compare_names_the_samples_fixed_and_broken_with_the_paired_numbers(evaluated, tmp_path, capsys):
    _, log = evaluated
    other, sample_id, was_right = turned(log, tmp_path / "turned.eval")
    code, out, _ = compare(str(log), str(other), capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == [f"A: {log}", f"B: {other}"]
    change = -1 if was_right else 1
    assert "3 shared samples" in lines[2] and f"difference {change / 3:+.3f}" in lines[2]
    assert "McNemar exact p = 1" in lines[2]  # one changed sample: a coin toss
    fixed, broke = (lines[4], lines[3]) if was_right else (lines[3], lines[4])
    assert fixed.strip() == f"fixed 1: {sample_id}" and broke.strip() == "broke 0"

    code, out, _ = compare(str(other), str(log), "--json", capsys=capsys)  # the other way round
    [result] = json.loads(out)["tasks"].values()
    assert result["difference"] == pytest.approx(-change / 3)
    assert [s["id"] for s in result["broke" if not was_right else "fixed"]] == [sample_id]


@pytest.mark.parametrize("case", ["no shared sample", "not a log", "no such path", "round not evaluated",
                                  "round of a log"])
def test_bad_input_is_one_line_and_exit_2(evaluated, tmp_path, capsys, case):
    run_dir, log = evaluated
    if case == "no shared sample":
        other, _, _ = turned(log, tmp_path / "other-task.eval", task="another_task")
        args, expected = [str(log), str(other)], "share no sample"
    elif case == "not a log":
        (tmp_path / "notes.eval").write_text("not a log\n")
        args, expected = [str(log), str(tmp_path / "notes.eval")], "not an Inspect log"
    elif case == "no such path":
        args, expected = [str(tmp_path / "missing.eval"), str(log)], "no such file or folder"
    elif case == "round not evaluated":
        args, expected = [str(run_dir), str(log), "--round-a", "7"], "no evaluation of round 7"
    else:
        args, expected = [str(log), str(run_dir), "--round-a", "1"], "only for a run folder"
    code, out, err = compare(*args, capsys=capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err, err

"""What a user can get wrong (or a full disk) is one message naming the file, key or option,
exit 2, and no run folder that a reader mistakes for a crash; the commands we print work when pasted."""

from __future__ import annotations

import json
import shlex
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from inspect_tinker.cli import main
from inspect_tinker.config import load_config
from inspect_tinker.loop.session import run
from inspect_tinker.tracking import EventLog, RunFolder


@contextmanager
def tmpfs(path: Path, options: str):
    """A tmpfs mounted at `path` (`size=256k`, `ro`, ...) for the block; skips where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"needs to mount a tmpfs (root, or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def messages(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


# Item 10: places and files that cannot be written or read.

def test_an_output_dir_that_is_a_file_exits_2_naming_it(write_run_config, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main(["run", str(write_run_config()), "--output-dir", str(tmp_path / "taken")]) == 2
    _, err = messages(capsys)
    assert f"{tmp_path / 'taken'} is a file" in err and "set output_dir (--output-dir)" in err and "Traceback" not in err


def test_a_read_only_output_dir_exits_2_naming_it(write_run_config, tmp_path, capsys):
    with tmpfs(tmp_path / "read-only", "ro,size=64k") as read_only:
        assert main(["run", str(write_run_config()), "--output-dir", str(read_only / "runs")]) == 2
    _, err = messages(capsys)
    assert f"cannot create the folder {read_only / 'runs' / 'test' / 'rounds'} (Read-only file system" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("size", ["150k", "200k", "350k"])  # full while writing a checkpoint, an Inspect log, an event
def test_a_full_disk_exits_2_saying_so_and_the_run_resumes_once_space_is_freed(write_run_config, tmp_path, capsys, size):
    config = write_run_config(max_rounds=2, eval_threshold=1.0)
    with tmpfs(tmp_path / "disk", f"size={size}") as disk:
        assert main(["run", str(config), "--output-dir", str(disk)]) == 2
        _, err = messages(capsys)
        assert f"error: the disk holding {disk / 'test'} is full" in err, err
        assert f"free some space there, then continue the run with: inspect-tinker resume {disk / 'test'}" in err
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)  # space freed
        assert main(["resume", str(disk / "test")]) == 1  # the bar (1.0) is out of the tiny model's reach
        summary = json.loads((disk / "test" / "summary.json").read_text())
        assert summary["rounds_run"] == 2


def two_finished_runs(write_run_config) -> Path:
    config = write_run_config(max_rounds=1, eval_threshold=1.0)
    for name in ("first", "second"):
        assert main(["run", str(config), "--run-name", name]) == 1
    return config.parent / "runs"


@pytest.mark.parametrize("damaged", ["state.json", "summary.json"])
def test_one_damaged_run_folder_is_listed_as_unreadable_and_the_others_still_are(write_run_config, capsys, damaged):
    parent = two_finished_runs(write_run_config)
    (parent / "first" / damaged).write_text('{"round": 1, "phase": "trai')  # torn
    capsys.readouterr()
    assert main(["runs", str(parent), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["second"]["status"] == "finished"
    assert rows["first"]["status"] == "unreadable" and f"{parent / 'first' / damaged} is damaged" in rows["first"]["detail"]
    assert main(["runs", str(parent)]) == 0
    assert "unreadable" in capsys.readouterr().out


def test_a_damaged_config_json_stops_resume_and_report_naming_the_file(write_run_config, capsys):
    parent = two_finished_runs(write_run_config)
    config_json = parent / "first" / "config.json"
    config_json.write_text("{not json")
    capsys.readouterr()
    for command in (["resume", str(parent / "first")], ["report", str(parent / "first")]):
        assert main(command) == 2, command
        _, err = messages(capsys)
        assert f"{config_json} is damaged (JSONDecodeError" in err and "Traceback" not in err, command


# Item 11: mistakes found before anything durable leave no crashed-looking folder.

@pytest.mark.parametrize(
    ("args", "eval_file", "message"),
    [
        (["--base-model", "someorg/not-downloaded"], None, "not in the local Hugging Face cache"),
        ([], '{"question": "no answer"}\n', "eval.jsonl:1: missing or empty 'answer'"),
        (["--set", "eval_tasks=[inspect_evals/not_installed]"], None, "does not resolve to an Inspect task"),
    ],
)
def test_a_usage_error_before_the_run_starts_makes_no_folder_and_is_told_once(
    write_run_config, capsys, args, eval_file, message
):
    config = write_run_config()
    if eval_file is not None:
        (config.parent / "eval.jsonl").write_text(eval_file)
    assert main(["run", str(config), *args]) == 2
    out, err = messages(capsys)
    assert (out + err).count(message) == 1, out + err
    assert "Its state is saved" not in out + err and not (config.parent / "runs" / "test").exists()


def test_bad_training_data_leaves_a_run_that_never_started_and_cannot_be_resumed(write_run_config, capsys):
    config = write_run_config(strict=True)
    train = config.parent / "train.jsonl"
    good = train.read_text()
    train.write_text(good + '{"instruction": "no output"}\n')
    assert main(["run", str(config)]) == 2
    out, err = messages(capsys)
    message = "train.jsonl:4: missing field 'output'"
    assert (out + err).count(message) == 1 and "Its state is saved" not in out + err, out + err
    assert "Report:" not in out  # nothing to report on a run that never started

    parent = config.parent / "runs"
    assert main(["runs", str(parent), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["status"] == "not started" and message in row["detail"] and not row["resumable"], row
    assert main(["resume", str(parent / "test")]) == 2
    _, err = messages(capsys)
    assert "never started" in err and "there is nothing to resume" in err and message in err

    train.write_text(good)  # fixed: the same command starts the run in the same folder
    assert main(["run", str(config), "--set", "max_rounds=1", "--set", "eval_threshold=1.0"]) == 1
    assert (parent / "test" / "summary.json").is_file()


# Item 13: the commands we print survive a path with a space.

def test_printed_commands_quote_a_run_folder_with_a_space(write_run_config, tmp_path, monkeypatch, capsys):
    config = load_config(write_run_config(max_rounds=1, eval_threshold=1.0, output_dir="my runs"))
    summary = run(config)
    root = str(tmp_path / "my runs" / "test")
    [view] = [line.split(": ", 1)[1] for line in summary["next_steps"] if "inspect view" in line]
    assert shlex.split(view) == ["inspect", "view", "--log-dir", f"{root}/logs"]

    def broken_evaluate(*args, **kwargs):
        raise RuntimeError("the evaluation broke")

    monkeypatch.setattr("inspect_tinker.loop.evaluation.stage_result", broken_evaluate)
    with pytest.raises(RuntimeError):
        run(config.model_copy(update={"run_name": "crashes"}))
    crashed = RunFolder(tmp_path / "my runs" / "crashes")
    [error] = [e for e in crashed.read_events() if e["event"] == "error"]
    assert shlex.split(error["resume_command"]) == ["inspect-tinker", "resume", str(crashed.root)]
    capsys.readouterr()
    assert main(["runs", str(tmp_path / "my runs"), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert shlex.split(rows["crashes"]["resume_command"]) == ["inspect-tinker", "resume", str(crashed.root)]


def test_the_sync_command_printed_for_undelivered_events_is_quoted(tmp_path, capsys):
    from rich.console import Console

    from inspect_tinker.tracking.console import ConsoleSink

    folder = RunFolder.create(tmp_path / "my runs", "r")
    EventLog(folder).emit("run_started", run_dir=str(folder.root), config={})
    sink = ConsoleSink(Console(width=400))
    sink.handle({"event": "delivery_report", "destinations": [], "outbox": str(folder.outbox_path)})
    line = next(line for line in capsys.readouterr().out.splitlines() if "inspect-tinker sync" in line)
    assert shlex.split(line) == ["inspect-tinker", "sync", str(folder.root)]

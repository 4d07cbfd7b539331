"""Crash safety: kill -9 at several points, Ctrl-C, torn checkpoints, changed configs.

Runs are real `inspect-tinker` processes on the tiny model; a resumed run must end with the same
losses, scores and adapter weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
from pathlib import Path

import pytest
import torch
from run_logs import stage_logs
from run_processes import events, start, wait_for_event
from safetensors.torch import load_file

from inspect_tinker.tracking import verify_checkpoint

# Focus off: the kill points below are the steps of rounds of 30 (the adapting run has it on).
ROUNDS = dict(max_rounds=3, steps_per_round=30, batch_size=2, eval_threshold=1.0, keep_last=3)


def outcome(run_dir: Path) -> dict:
    """What must not depend on interruptions: losses per step, scores, final adapter weights, and
    the Inspect logs (one per stage, in order: a stage a kill cut short leaves none behind)."""
    evs = events(run_dir)
    losses = {e["step"]: e["loss"] for e in evs if e["event"] == "step"}  # a replayed step must repeat its loss
    summary = json.loads((run_dir / "summary.json").read_text())
    weights = load_file(run_dir / "rounds" / str(ROUNDS["max_rounds"]) / "adapter" / "adapter_model.safetensors")
    return {"losses": losses, "scores": [r["score"] for r in summary["rounds"]], "weights": weights, "summary": summary,
            "stages": stage_logs(run_dir)}


def assert_same(a: dict, b: dict) -> None:
    assert a["losses"].keys() == b["losses"].keys()
    for step in a["losses"]:
        assert a["losses"][step] == pytest.approx(b["losses"][step], rel=1e-5), step
    assert a["scores"] == b["scores"]
    assert a["stages"] == b["stages"]
    for name in a["weights"]:
        torch.testing.assert_close(a["weights"][name], b["weights"][name], rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir):
    """An uninterrupted run of the same configuration."""
    root = tmp_path_factory.mktemp("reference")
    config = _config(root, tiny_model_dir)
    proc = start(["run", str(config)], root)
    assert proc.wait(timeout=1200) == 1, proc.stdout.read()
    return outcome(root / "runs" / "test")


def _config(root: Path, tiny_model_dir: Path, **extra) -> Path:
    (root / "train.jsonl").write_text(
        "".join(json.dumps({"instruction": f"Question {i}?", "output": f"Answer number {i}."}) + "\n" for i in range(6))
    )
    (root / "eval.jsonl").write_text(json.dumps({"question": "Question 1?", "answer": "Answer number 1"}) + "\n")
    config = {"base_model": str(tiny_model_dir), "train_file": "train.jsonl", "eval_tasks": ["eval.jsonl"],
              "learning_rate": 1e-2, "generation": {"max_tokens": 4}, "output_dir": "runs", "run_name": "test",
              "regression_guard": False,  # evaluation is not what these tests are about
              **ROUNDS, **extra}
    path = root / "config.json"
    path.write_text(json.dumps(config))
    return path


KILL_POINTS = {
    "mid_training": (lambda e: e["event"] == "step" and e["step"] == 35, "training"),
    "mid_evaluation": (lambda e: e["event"] == "checkpoint_saved" and e["round"] == 2, "evaluating"),
    "after_the_last_step_of_a_round": (lambda e: e["event"] == "step" and e["step"] == 60, None),
    # In the task source's task_complete: the decision is recorded, the state may not be yet.
    "in_the_decision": (lambda e: e["event"] == "decision" and e["round"] == 2, None),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_run_killed_at_any_point_resumes_to_the_same_result(tmp_path, tiny_model_dir, reference, point):
    predicate, expected_phase = KILL_POINTS[point]
    config = _config(tmp_path, tiny_model_dir)
    run_dir = tmp_path / "runs" / "test"
    proc = start(["run", str(config)], tmp_path)
    wait_for_event(proc, run_dir, predicate)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "summary.json").exists()  # nobody mistakes it for finished work
    state = json.loads((run_dir / "state.json").read_text())
    if expected_phase:
        assert state["phase"] == expected_phase

    resumed = start(["resume", str(run_dir)], tmp_path)
    output = resumed.communicate(timeout=1200)[0]
    assert resumed.returncode == 1, output
    assert "Resuming" in output
    assert_same(outcome(run_dir), reference)


ADAPTING = dict(policy="grow_rank", lora_rank=2, candidate_file="pool.jsonl", select_per_round=2, upweight_repeats=1,
                focus_weight=3)


def _pool(root: Path) -> None:
    (root / "pool.jsonl").write_text(
        "".join(json.dumps({"instruction": f"Tell me about question {i}.", "output": f"It is answered by number {i}."})
                + "\n" for i in range(4))
    )


def test_a_run_that_adds_data_and_grows_its_adapter_resumes_to_the_same_result(tmp_path, tiny_model_dir):
    reference_root, killed_root = tmp_path / "reference", tmp_path / "killed"
    outcomes = []
    for root in (reference_root, killed_root):
        root.mkdir()
        _pool(root)
        config = _config(root, tiny_model_dir, **ADAPTING)
        proc = start(["run", str(config)], root)
        if root == killed_root:  # killed in round 2, after data was added and the adapter grew
            wait_for_event(proc, root / "runs" / "test", KILL_POINTS["mid_training"][0])
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc = start(["resume", str(root / "runs" / "test")], root)
        assert proc.wait(timeout=1200) == 1, proc.stdout.read()
        outcomes.append(outcome(root / "runs" / "test"))
    assert_same(*outcomes)
    evs = events(killed_root / "runs" / "test")
    assert [e["lora_rank"] for e in evs if e["event"] == "adapter_grown"][-1] == 8  # 2 → 4 → 8
    added = [e["where"] for e in evs if e["event"] == "data_added"]
    assert added and added == [e["where"] for e in events(reference_root / "runs" / "test") if e["event"] == "data_added"]
    focused = lambda evs: [e["records"] for e in evs if e["event"] == "focus_weighed"]  # noqa: E731
    assert focused(evs)[-1] == focused(events(reference_root / "runs" / "test"))[-1]  # the round killed trained the same copies


def test_a_disk_that_fills_up_mid_run_keeps_events_whole_and_resumes_to_the_same_result(
    tmp_path, tiny_model_dir, reference, small_disk
):
    config = _config(tmp_path, tiny_model_dir, output_dir=str(small_disk.path / "runs"))
    run_dir = small_disk.path / "runs" / "test"
    proc = start(["run", str(config)], tmp_path)
    wait_for_event(proc, run_dir, lambda e: e["event"] == "step" and e["step"] == 35)
    filler = small_disk.fill()  # the next step event that does not fit in events.jsonl's last page fails
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 2 and "is full" in " ".join(output.split()), output  # the user's to fix: exit 2
    assert (run_dir / "events.jsonl").read_bytes().endswith(b"\n")

    filler.unlink()
    resumed = start(["resume", str(run_dir)], tmp_path)
    output = resumed.communicate(timeout=1200)[0]
    assert resumed.returncode == 1, output
    assert_same(outcome(run_dir), reference)
    text = (run_dir / "events.jsonl").read_text()
    recorded = [json.loads(line) for line in text.splitlines()]  # every line whole
    numbers = [int(n) for n in re.findall(r'"seq": (\d+)', text)]
    assert numbers == [e["seq"] for e in recorded] and len(set(numbers)) == len(numbers)
    assert len({e["id"] for e in recorded}) == len(recorded)


def test_a_damaged_checkpoint_is_detected_and_the_previous_good_one_used(tmp_path, tiny_model_dir, reference):
    config = _config(tmp_path, tiny_model_dir)
    run_dir = tmp_path / "runs" / "test"
    proc = start(["run", str(config)], tmp_path)
    wait_for_event(proc, run_dir, KILL_POINTS["mid_evaluation"][0])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Round 2's checkpoint is what resume would load: tear its adapter as a crashed disk would.
    weights = run_dir / "rounds" / "2" / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

    resumed = start(["resume", str(run_dir)], tmp_path)
    output = resumed.communicate(timeout=1200)[0]
    assert resumed.returncode == 1, output
    assert "is damaged" in output
    damaged = [e for e in events(run_dir) if e["event"] == "checkpoint_damaged"]
    assert damaged and damaged[0]["fallback"].endswith("rounds/1")
    assert_same(outcome(run_dir), reference)


def test_a_damaged_round_checkpoint_falls_back_to_the_newest_earlier_one_that_verifies(tmp_path, tiny_model_dir):
    config = _config(tmp_path, tiny_model_dir)
    run_dir = tmp_path / "runs" / "test"
    proc = start(["run", str(config)], tmp_path)
    wait_for_event(proc, run_dir, lambda e: e["event"] == "step" and e["step"] == 65)  # in round 3
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((run_dir / "state.json").read_text())
    assert (state["round"], state["phase"]) == (3, "training") and state["checkpoint"].endswith("rounds/2")
    # One flipped byte in round 2's adapter, the checkpoint round 3 started from.
    weights = run_dir / "rounds" / "2" / "adapter" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))

    resumed = start(["resume", str(run_dir)], tmp_path)
    output = resumed.communicate(timeout=1200)[0]
    assert resumed.returncode == 1, output
    assert "is damaged" in output and "restarting round 3 from" in output
    (damaged,) = [e for e in events(run_dir) if e["event"] == "checkpoint_damaged"]
    assert damaged["fallback"] == str(run_dir / "rounds" / "1") and damaged["damaged"] == [str(run_dir / "rounds" / "2")]
    resumed_at = next(e for e in events(run_dir) if e["event"] == "resumed")
    assert (resumed_at["round"], resumed_at["global_step"], resumed_at["checkpoint"]) == (3, 60, damaged["fallback"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [0, 1, 2, 3]
    assert verify_checkpoint(run_dir / "rounds" / "3")


def test_a_run_started_with_relative_paths_resumes_from_another_directory(tmp_path, tiny_model_dir, reference):
    _config(tmp_path, tiny_model_dir)
    run_dir = tmp_path / "runs" / "test"
    proc = start(["run", "config.json"], tmp_path)  # every path in it is relative, too
    wait_for_event(proc, run_dir, lambda e: e["event"] == "step" and e["step"] == 5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["train_file"] == str(tmp_path / "train.jsonl")
    assert recorded["eval_tasks"][0]["path"] == str(tmp_path / "eval.jsonl")
    assert recorded["output_dir"] == str(tmp_path / "runs")

    resumed = start(["resume", str(run_dir)], Path("/"))
    output = resumed.communicate(timeout=1200)[0]
    assert resumed.returncode == 1, output
    assert_same(outcome(run_dir), reference)


@pytest.mark.parametrize(("stop", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl_c", "sigterm"])
def test_a_stop_signal_saves_at_a_safe_point_exits_128_plus_its_number_and_resumes(
    tmp_path, tiny_model_dir, reference, stop, exit_code
):
    config = _config(tmp_path, tiny_model_dir)
    run_dir = tmp_path / "runs" / "test"
    proc = start(["run", str(config)], tmp_path)
    wait_for_event(proc, run_dir, lambda e: e["event"] == "step" and e["step"] == 40)
    proc.send_signal(stop)  # SIGTERM is what docker stop, Kubernetes and SLURM send
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == exit_code, output
    assert f"Continue with: inspect-tinker resume {run_dir}\n" in output
    assert not (run_dir / "run.lock").exists()
    stopped = events(run_dir)
    kinds = [e["event"] for e in stopped]
    assert kinds.index("partial_checkpoint_saved") < kinds.index("interrupted") < kinds.index("report_written")
    assert next(e for e in stopped if e["event"] == "interrupted")["signal"] == stop.name
    assert (run_dir / "report.html").is_file()

    resumed = start(["resume", str(run_dir)], tmp_path)
    assert resumed.wait(timeout=1200) == 1
    assert_same(outcome(run_dir), reference)


def test_resuming_with_a_changed_configuration_is_refused_unless_forced(tmp_path, tiny_model_dir):
    config = _config(tmp_path, tiny_model_dir, max_rounds=2)
    run_dir = tmp_path / "runs" / "test"
    proc = start(["run", str(config)], tmp_path)
    wait_for_event(proc, run_dir, lambda e: e["event"] == "step" and e["step"] == 5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    refused = start(["resume", str(run_dir), "--set", "learning_rate=0.5", "--set", "lora_rank=4"], tmp_path)
    output = refused.communicate(timeout=600)[0]
    assert refused.returncode == 2
    assert "learning_rate, lora_rank" in output and "--force" in output and "Traceback" not in output

    forced = start(["resume", str(run_dir), "--set", "learning_rate=0.5", "--force"], tmp_path)
    assert forced.wait(timeout=1200) == 1
    recorded = events(run_dir)
    changed = [e for e in recorded if e["event"] == "config_changed"]
    assert changed and changed[0]["keys"] == ["learning_rate"]
    # The new rate trains from the round in progress on, decayed after it as usual.
    after = recorded[recorded.index(changed[0]):]
    rates = {e["round"]: e["learning_rate"] for e in after if e["event"] == "round_started"}
    assert rates == {1: 0.5, 2: pytest.approx(0.5 * 0.6)}
    assert json.loads((run_dir / "config.json").read_text())["learning_rate"] == 0.5


def test_resuming_a_finished_run_is_refused(tmp_path, write_run_config, capsys):
    from inspect_tinker.cli import main

    config = write_run_config(eval_threshold=0.0)
    assert main(["run", str(config)]) == 0
    assert main(["resume", str(config.parent / "runs" / "test")]) == 2
    assert "already finished" in capsys.readouterr().err


def test_resuming_after_the_data_changed_is_refused_naming_the_file_unless_allowed_and_then_recorded(tmp_path, tiny_model_dir):
    config = _config(tmp_path, tiny_model_dir, max_rounds=2, steps_per_round=20)
    run_dir = tmp_path / "runs" / "test"
    proc = start(["run", str(config)], tmp_path)
    wait_for_event(proc, run_dir, lambda e: e["event"] == "step" and e["step"] == 25)  # in round 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recorded = {f["key"]: f for f in json.loads((run_dir / "inputs.json").read_text())["files"]}
    assert set(recorded) == {"train_file", "eval_tasks[0]"}
    assert recorded["train_file"]["path"] == str(tmp_path / "train.jsonl")
    report_before = (run_dir / "data_report.json").read_text()
    train = tmp_path / "train.jsonl"
    train.write_text(train.read_text() + json.dumps({"instruction": "A new question?", "output": "A new answer."}) + "\n")

    refused = start(["resume", str(run_dir)], tmp_path)
    output = refused.communicate(timeout=600)[0]
    assert refused.returncode == 2, output
    assert f"train_file {train} (sha256 {recorded['train_file']['sha256'][:12]}" in output, output
    assert "--allow-changed-inputs" in output and "Traceback" not in output and "eval_tasks" not in output
    assert (run_dir / "data_report.json").read_text() == report_before
    assert not [e for e in events(run_dir) if e["event"] == "run_started" and e["resumed"]]

    allowed = start(["resume", str(run_dir), "--allow-changed-inputs"], tmp_path)
    output = allowed.communicate(timeout=1200)[0]
    assert allowed.returncode == 1, output
    changed = [e for e in events(run_dir) if e["event"] == "inputs_changed"]
    assert [c["files"] for c in changed] == [[{
        "key": "train_file", "path": str(train), "recorded": recorded["train_file"]["sha256"],
        "current": hashlib.sha256(train.read_bytes()).hexdigest(),
    }]]
    assert (Path(changed[0]["previous_data_report"]).read_text() == report_before
            and json.loads((run_dir / "data_report.json").read_text())["records"] == 7)
    now = {f["key"]: f["sha256"] for f in json.loads((run_dir / "inputs.json").read_text())["files"]}
    assert now == {"train_file": changed[0]["files"][0]["current"], "eval_tasks[0]": recorded["eval_tasks[0]"]["sha256"]}

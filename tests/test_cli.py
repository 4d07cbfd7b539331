"""The command line: exit codes, messages without tracebacks, and the run folder it leaves."""

import json
from pathlib import Path

import pytest
from peft import PeftModel
from transformers import AutoModelForCausalLM

from run_logs import stage_logs

from inspect_tinker.cli import main


def test_bar_met_exits_0_and_writes_a_complete_run_folder(write_run_config, capsys):
    # No baseline: an untrained model meets a bar of 0, which ends the run before training.
    config = write_run_config(eval_threshold=0.0, baseline_eval=False)
    assert main(["run", str(config)]) == 0
    run_dir = config.parent / "runs" / "test"
    for name in ("config.json", "events.jsonl", "state.json", "summary.json"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["bar_met"] and summary["exit_code"] == 0 and summary["rounds_run"] == 1
    assert stage_logs(run_dir) == [(1, "train", "train_round_1"), (1, "eval", "eval")]  # every stage an Inspect log
    assert (run_dir / "rounds" / "1" / "trainer" / "trainer_state.pt").is_file()
    events = [json.loads(line)["event"] for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[0] == "run_started" and "run_finished" in events and events[-1] == "report_written"
    assert events.count("step") == 2 and "decision" in events
    out = capsys.readouterr().out
    assert "=== Training round 1/2 ===" in out and "Bar met" in out


def test_the_training_stage_log_shows_the_rounds_hyperparameters_and_losses(write_run_config):
    from inspect_ai.log import read_eval_log

    config = write_run_config(eval_threshold=0.0, baseline_eval=False)
    assert main(["run", str(config)]) == 0
    run_dir = config.parent / "runs" / "test"
    [path] = (run_dir / "logs").glob("*train-round-1*.eval")
    log = read_eval_log(str(path))
    assert (log.status, log.eval.model) == ("success", "none/none")
    [step] = [s for s in log.plan.steps if s.solver == "inspect_tinker/train_round"]
    assert {k: step.params[k] for k in ("learning_rate", "steps", "batch_size", "lora_rank")} == {
        "learning_rate": 1e-3, "steps": 2, "batch_size": 2, "lora_rank": 16}
    losses = [e["loss"] for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines()) if e["event"] == "step"]
    [sample] = log.samples
    assert sample.metadata["losses"] == losses and sample.metadata["global_step_start"] == 0
    assert sample.scores["final_loss"].value == losses[-1]
    assert log.eval.metadata["inspect_tinker"] == {
        "run": "test", "run_dir": str(run_dir), "round": 1, "stage": "train", "learning_rate": 1e-3,
        "checkpoint": None, "threshold": 0.0}


def test_the_saved_adapter_loads_with_peft(write_run_config, tiny_model_dir):
    config = write_run_config(eval_threshold=0.0, baseline_eval=False)
    main(["run", str(config)])
    adapter = json.loads((config.parent / "runs" / "test" / "summary.json").read_text())["best_adapter"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), adapter)
    assert any("lora_A" in n for n, _ in model.named_parameters())


def test_bar_not_met_exits_1_after_the_last_round(write_run_config, capsys):
    config = write_run_config(eval_threshold=1.0)
    assert main(["run", str(config)]) == 1
    summary = json.loads((config.parent / "runs" / "test" / "summary.json").read_text())
    assert summary["rounds_run"] == 2 and not summary["bar_met"]
    assert stage_logs(config.parent / "runs" / "test") == [
        (0, "eval", "eval"), (1, "train", "train_round_1"), (1, "eval", "eval"), (2, "train", "train_round_2"),
        (2, "eval", "eval"),
    ]
    rounds = [r["learning_rate"] for r in summary["rounds"] if r["round"] > 0]
    assert rounds == pytest.approx([1e-3, 6e-4])  # decayed by the default 0.6
    assert "Bar not met" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "max_rounds=0"], "max_rounds: Input should be greater than or equal to 1"),
        (["--set", "eval_treshold=0.5"], "did you mean 'eval_threshold'"),
        (["--base-model", "/no/such/folder"], "base_model '/no/such/folder' is neither"),
        (["--base-model", "someorg/not-downloaded"], "not in the local Hugging Face cache"),
    ],
)
def test_bad_configuration_exits_2_with_one_clear_message(write_run_config, capsys, args, message):
    config = write_run_config()
    assert main(["run", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_training_data_under_strict_exits_2_naming_the_line(write_run_config, capsys):
    config = write_run_config(strict=True)
    with (config.parent / "train.jsonl").open("a") as f:
        f.write('{"instruction": "no output"}\n')
    assert main(["run", str(config)]) == 2
    assert "train.jsonl:4: missing field 'output'" in capsys.readouterr().err


@pytest.mark.parametrize("form", [[], ["--config"]], ids=["run CONFIG", "run --config CONFIG (older scripts)"])
def test_a_missing_config_file_exits_2_naming_it(tmp_path, capsys, form):
    assert main(["run", *form, str(tmp_path / "none.yaml")]) == 2
    assert capsys.readouterr().err == f"error: config file {tmp_path / 'none.yaml'} does not exist.\n"


def read_events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def answers(event: dict) -> dict:
    return {(t["name"], s["id"]): s["answer"] for t in event["tasks"] for s in t["samples"]}


def test_a_task_below_its_own_bar_holds_the_run_back_and_the_decision_says_which(write_run_config, capsys):
    config = write_run_config(
        eval_threshold=0.0, max_rounds=1,
        eval_tasks=[{"path": "eval.jsonl", "name": "easy"}, {"path": "eval.jsonl", "name": "strict", "threshold": 1.0}],
    )
    assert main(["run", str(config)]) == 1
    [decision] = [e for e in read_events(config.parent / "runs" / "test") if e["event"] == "decision" and e["round"] == 1]
    assert decision["gate"]["held_back_by"] == ["strict"] and "held back by strict" in decision["reason"]
    assert "held back by strict" in capsys.readouterr().out


def test_every_round_records_which_samples_it_fixed_and_broke(write_run_config, capsys):
    config = write_run_config(eval_threshold=1.0, regression_guard=True)
    main(["run", str(config)])
    run_dir = config.parent / "runs" / "test"
    evals = {e["round"]: e for e in read_events(run_dir) if e["event"] == "eval_result"}
    history = json.loads((run_dir / "sample_history.json").read_text())
    assert set(history) == {"eval", "general_knowledge"}  # the user's task and the regression guard
    for round_no in (1, 2):
        for task in evals[round_no]["tasks"]:
            before = {s["id"]: s["correct"] for s in next(t for t in evals[round_no - 1]["tasks"] if t["name"] == task["name"])["samples"]}
            now = {s["id"]: s["correct"] for s in task["samples"]}
            assert task["compared_with"] == round_no - 1
            assert task["fixed"] == [i for i in now if now[i] and not before[i]]
            assert task["broke"] == [i for i in now if before[i] and not now[i]]
            for i in now:
                assert history[task["name"]][i]["rounds"][str(round_no)] == now[i]


def test_eval_of_a_runs_round_reproduces_that_rounds_answers(write_run_config, capsys):
    config = write_run_config(eval_threshold=1.0, max_rounds=1)
    main(["run", str(config)])
    run_dir = config.parent / "runs" / "test"
    recorded = {e["round"]: e for e in read_events(run_dir) if e["event"] == "eval_result"}
    capsys.readouterr()

    assert main(["eval", "--run", str(run_dir), "--round", "1", "--run-name", "check"]) == 1  # bar 1.0: not met
    check = config.parent / "runs" / "check"
    [evaluated] = [e for e in read_events(check) if e["event"] == "eval_result"]
    assert answers(evaluated) == answers(recorded[1])
    summary = json.loads((check / "summary.json").read_text())
    assert summary["adapter"].endswith("rounds/1/adapter") and summary["exit_code"] == 1
    out = capsys.readouterr().out
    assert "Bar not met" in out and "inspect view --log-dir" in out

    # The base model: the run's untrained baseline answers, and the bar decides the exit code.
    assert main(["eval", "--config", str(config), "--set", "eval_threshold=0.0", "--run-name", "base"]) == 0
    [base] = [e for e in read_events(config.parent / "runs" / "base") if e["event"] == "eval_result"]
    assert answers(base) == answers(recorded[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--round", "1"], "--round needs --run"),
        (["eval", "--adapter", "/no/such/adapter"], "no PEFT adapter folder"),
        (["eval"], "give --config"),
        (["eval", "--run", "/no/such/run"], "is not a run folder (no config.json)"),
    ],
)
def test_eval_usage_mistakes_exit_2_with_one_message(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (["gone.py@task"], "gone.py does not exist"),
        (["inspect_evals/not_installed"], "does not resolve to an Inspect task"),
        ([{"path": "eval.jsonl", "scorer": {"name": "numeric", "tolerance": "wide"}}],
         "eval_tasks[0].scorer.tolerance: Input should be a valid number"),
        ([{"path": "eval.jsonl", "weight": 0}], "eval_tasks[0].weight: Input should be greater than 0"),
    ],
)
def test_a_bad_task_stops_the_run_with_exit_2_before_the_model_loads(write_run_config, capsys, tasks, message):
    config = write_run_config(eval_tasks=tasks)
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    events_file = config.parent / "runs" / "test" / "events.jsonl"
    if events_file.exists():  # the task was checked after the run folder was made, but before the model
        assert "backend_ready" not in events_file.read_text()


def test_the_inspect_view_command_of_the_summary_serves_the_runs_logs(write_run_config):
    import shlex
    import socket
    import subprocess
    import sys
    import time

    import httpx

    config = write_run_config(eval_threshold=0.0)
    main(["run", str(config)])
    run_dir = config.parent / "runs" / "test"
    summary = json.loads((run_dir / "summary.json").read_text())
    [line] = [s for s in summary["next_steps"] if "inspect view" in s]
    command = shlex.split(line.split(": ", 1)[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command[0] = str(Path(sys.executable).with_name("inspect"))
    server = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600  # generous: `inspect view` imports for many seconds on a loaded machine
        while True:
            try:
                listing = httpx.get(f"http://127.0.0.1:{port}/api/log-files", timeout=5)
                if listing.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.time() < deadline, "inspect view did not start"
            time.sleep(0.5)
        served = {Path(f["name"]).name for f in listing.json()["files"]}
        logs = {p.name for p in (run_dir / "logs").glob("*.eval")}
        assert logs and logs <= served
    finally:
        server.terminate()
        server.wait(timeout=300)

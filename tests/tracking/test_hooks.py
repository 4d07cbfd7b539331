"""The tracking hooks in a plain `inspect eval` (a subprocess, as a user runs it), against real
servers on 127.0.0.1: the EvalOps and webhook receiver of tests/http_receiver.py and a real `mlflow server`.

The tasks answer with mockllm, whose every answer is "Default output from mockllm/model":
Inspect's `includes` scorer finds the target "default output" in it and not "Paris", so a task
of those two samples scores accuracy 1/2 = 0.5 exactly, below the bar of 0.75 the tests set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from evalresults import eval_result, task_result

from inspect_tinker.errors import UsageError
from inspect_tinker.tracking.delivery import Outbox
from inspect_tinker.tracking.hook_settings import settings_from_environment

from http_receiver import EVALOPS_KEY, SUITE, Receiver

BIN = Path(sys.executable).parent
CHECKPOINT = "tinker://run-7:train:0/sampler_weights/round-2"

TASKS = '''
from inspect_ai import Task, TaskSource, task, task_source
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import solver

SAMPLES = [Sample(id="found", input="Say it.", target="default output"), Sample(id="missed", input="Say it.", target="Paris")]


def in_loop(role, run_dir):
    # The loop's contract (the entry its task source puts on every task it runs).
    return {"inspect_tinker": {"run": "demo", "run_dir": run_dir, "round": 2, "stage": "eval", "learning_rate": 1e-4,
                               "checkpoint": "%s", "role": role, "threshold": 0.75}}


@task
def plain_task():
    return Task(dataset=SAMPLES, scorer=includes())


@task
def loop_gate(run_dir: str = ""):
    return Task(dataset=SAMPLES, scorer=includes(), metadata=in_loop("gate", run_dir), tags=["inspect-tinker", "round-2", "eval"])


@task
def loop_guard(run_dir: str = "runs/guarded"):
    return Task(dataset=SAMPLES, scorer=includes(), metadata=in_loop("guard", run_dir))


@task
def train_round_2():
    # A loop's training task: its one sample's metadata holds the round's steps (the loop's contract).
    steps = {"losses": [2.5, 2.0, 1.5], "learning_rates": [1e-4, 9e-5, 8e-5], "global_step_start": 10, "steps": 3}
    return Task(dataset=[Sample(id="train", input="train", target="x", metadata=steps)], scorer=includes(),
                metadata={"inspect_tinker": {**in_loop("gate", "")["inspect_tinker"], "stage": "train"}})


class DecisionFails(TaskSource):
    # What a loop's task source does after each task: here its decision raises.
    def initial_tasks(self):
        return [plain_task()]

    async def task_complete(self, log):
        raise RuntimeError("the decision failed")


@task_source
def failing_source():
    return DecisionFails()


@solver
def breaks():
    async def solve(state, generate):
        raise RuntimeError("the grader is unreachable")
    return solve


@task
def broken_task():
    return Task(dataset=SAMPLES[:1], solver=breaks(), scorer=includes())
''' % CHECKPOINT


def inspect_eval(tmp_path: Path, tasks: list[str], env: dict[str, str], *task_args: str) -> subprocess.CompletedProcess:
    (tmp_path / "tasks.py").write_text(TASKS)
    return subprocess.run(
        [str(BIN / "inspect"), "eval", *(f"tasks.py@{t}" for t in tasks), "--model", "mockllm/model",
         "--log-dir", "logs", "--max-tasks", "1", *task_args],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env,
    )


def sync(log_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "inspect-tinker"), "sync", str(log_dir)], capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture
def hook_env(offline_tiktoken, tmp_path):
    """The environment of an `inspect eval` with no hook on; tests add what they turn on."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EVALOPS_", "MLFLOW_", "INSPECT_TINKER_"))}
    return {**base, **offline_tiktoken, "INSPECT_EVAL_CTL_SERVER": "false", "XDG_DATA_HOME": str(tmp_path / "xdg"),
            # The flush ends as soon as everything is delivered: long costs nothing and holds under load.
            "INSPECT_TINKER_DELIVERY_FLUSH_SECONDS": "600", "INSPECT_TINKER_DELIVERY_MAX_BACKOFF_SECONDS": "0.2"}


def evalops_on(env: dict, receiver: Receiver) -> dict:
    return {**env, "EVALOPS_API_KEY": EVALOPS_KEY, "EVALOPS_TEST_SUITE_ID": SUITE, "EVALOPS_API_URL": receiver.url}


def test_a_plain_inspect_eval_posts_each_task_to_evalops_logs_it_in_mlflow_and_alerts_on_misses(
    tmp_path, hook_env, receiver, mlflow_server,
):
    receiver.start()
    env = {**evalops_on(hook_env, receiver), "MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_EXPERIMENT_NAME": f"hooks-{tmp_path.name}",
           "INSPECT_TINKER_WEBHOOKS": "TEAM_HOOK", "TEAM_HOOK": f"{receiver.url}/hooks/T0KEN", "INSPECT_TINKER_ALERT_THRESHOLD": "0.75"}
    # The guard's run folder: its first evaluation (round 0) found both samples; round 2 finds one.
    (tmp_path / "runs" / "guarded").mkdir(parents=True)
    first = eval_result(task_result("loop_gate", [False, False]), task_result("loop_guard", [True, True], role="guard")).to_dict()
    (tmp_path / "runs" / "guarded" / "events.jsonl").write_text(json.dumps({"event": "eval_result", "round": 0, **first}) + "\n")
    done = inspect_eval(tmp_path, ["plain_task", "loop_gate", "loop_guard", "broken_task", "train_round_2"], env)
    assert "Traceback" not in done.stderr and "inspect-tinker" not in done.stderr, done.stdout + done.stderr
    assert receiver.rejections == [] and receiver.replays == 0

    runs = {r["config"]["metadata"]["task"]: r for r in receiver.bodies("/api/v1/test-runs/")}
    # One test run per evaluation task; a loop's training task is no test (it has no bar either).
    assert sorted(runs) == ["broken_task", "loop_gate", "loop_guard", "plain_task"]
    plain, gate = runs["plain_task"]["config"], runs["loop_gate"]["config"]
    assert plain["model"] == "mockllm/model" and plain["metadata"]["metrics"]["score"] == 0.5
    assert plain["metadata"]["metrics"]["scores"] == {"includes/accuracy": 0.5, "includes/stderr": 0.5}
    assert "round" not in plain["metadata"]
    # A loop task's test run names its run, round and checkpoint, and evaluates the checkpoint.
    assert gate["model"] == CHECKPOINT
    assert {k: gate["metadata"][k] for k in ("run", "round", "checkpoint", "learning_rate", "role")} == {
        "run": "demo", "round": 2, "checkpoint": CHECKPOINT, "learning_rate": 1e-4, "role": "gate"}
    assert runs["loop_gate"]["tags"] == ["automated", "inspect-tinker", "round-2", "eval"]
    assert runs["broken_task"]["config"]["metadata"]["status"] == "error"

    alerts = sorted((b["alert"], b["task"]) for b in receiver.bodies("/hooks/"))
    assert alerts == [("regression_guard_fell", "loop_guard"), ("run_crashed", "broken_task"),
                      ("task_below_bar", "loop_gate"), ("task_below_bar", "plain_task")]
    crash = next(b for b in receiver.bodies("/hooks/") if b["alert"] == "run_crashed")
    assert "the grader is unreachable" in crash["text"]
    guard = next(b for b in receiver.bodies("/hooks/") if b["alert"] == "regression_guard_fell")
    assert guard["text"] == ("inspect-tinker run demo: regression guard loop_guard fell 1.000 → 0.500 since the first "
                             "evaluation (round 2): fine-tuning may be costing general ability.")

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(f"hooks-{tmp_path.name}")
    tracked = {r.data.params["task"]: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(tracked) == ["broken_task", "loop_gate", "loop_guard", "plain_task", "train_round_2"]
    assert tracked["plain_task"].data.metrics == {"includes/accuracy": 0.5, "includes/stderr": 0.5, "samples": 2.0}
    assert tracked["plain_task"].info.status == "FINISHED" and tracked["broken_task"].info.status == "FAILED"
    assert tracked["loop_gate"].data.params["round"] == "2" and tracked["loop_gate"].data.params["checkpoint"] == CHECKPOINT
    [step] = client.get_metric_history(tracked["loop_gate"].info.run_id, "includes/accuracy")
    assert step.step == 2  # a loop task's metrics are at its round
    losses = client.get_metric_history(tracked["train_round_2"].info.run_id, "train/loss")
    assert sorted((m.step, m.value) for m in losses) == [(10, 2.5), (11, 2.0), (12, 1.5)]  # global steps


def test_with_evalops_down_the_test_runs_wait_in_the_log_dir_until_sync_delivers_them_once(tmp_path, hook_env):
    receiver = Receiver()  # not started yet: its port refuses connections
    env = {**evalops_on(hook_env, receiver), "INSPECT_TINKER_DELIVERY_FLUSH_SECONDS": "1"}
    done = inspect_eval(tmp_path, ["plain_task", "loop_gate"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "inspect-tinker sync" in done.stdout + done.stderr  # the hook says how to deliver the rest
    [outbox] = (tmp_path / "logs").glob("inspect-tinker/*/evalops/outbox.jsonl")
    assert len(Outbox(outbox).pending()) == 2
    without_key = {k: v for k, v in env.items() if k != "EVALOPS_API_KEY"}
    refused = sync(tmp_path / "logs", without_key)
    assert refused.returncode == 2 and "EVALOPS_API_KEY" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr and len(Outbox(outbox).pending()) == 2  # nothing lost
    try:
        receiver.start()
        done = sync(tmp_path / "logs", env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(b["config"]["metadata"]["task"] for b in receiver.bodies("/api/v1/test-runs/")) == ["loop_gate", "plain_task"]
        assert Outbox(outbox).pending() == []
        again = sync(tmp_path / "logs", env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert receiver.attempts == 2 and receiver.replays == 0  # nothing left to send twice
    finally:
        receiver.stop()


def test_a_loop_task_is_left_to_the_loop_when_its_run_sends_to_evalops_itself(tmp_path, hook_env, receiver):
    receiver.start()
    run_dir = tmp_path / "runs" / "demo"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"evalops_enabled": True, "evalops_test_suite_id": SUITE}))
    done = inspect_eval(tmp_path, ["plain_task", "loop_gate"], evalops_on(hook_env, receiver), "-T", f"run_dir={run_dir}")
    assert done.returncode == 0, done.stdout + done.stderr
    # The loop posts its rounds itself (tracking/evalops.py); the hook posts only the plain task.
    assert [b["config"]["metadata"]["task"] for b in receiver.bodies("/api/v1/test-runs/")] == ["plain_task"]


def test_a_task_source_whose_decision_raises_sends_the_crash_to_the_webhook(tmp_path, hook_env, receiver):
    receiver.start()
    env = {**hook_env, "INSPECT_TINKER_WEBHOOKS": "TEAM_HOOK", "TEAM_HOOK": f"{receiver.url}/hooks/T0KEN"}
    done = inspect_eval(tmp_path, ["failing_source"], env)
    assert done.returncode == 0, done.stdout + done.stderr  # `inspect eval` says nothing: the webhook must
    [crash] = receiver.bodies("/hooks/")
    assert crash["alert"] == "run_crashed" and "the decision failed" in crash["text"]


def test_a_bad_alert_threshold_is_named_with_its_fix(monkeypatch):
    monkeypatch.setenv("INSPECT_TINKER_ALERT_THRESHOLD", "high")
    with pytest.raises(UsageError, match=r"INSPECT_TINKER_ALERT_THRESHOLD='high' is not valid .*fix or unset it"):
        settings_from_environment()

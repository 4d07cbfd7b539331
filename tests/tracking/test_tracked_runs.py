"""Whole runs (tiny model) with MLflow, EvalOps and webhooks turned on, against real servers on
127.0.0.1: every event reaches each sink exactly once, through outages, crashes and `sync`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from mlflow import MlflowClient

from inspect_tinker.cli import main
from inspect_tinker.tracking.delivery import Outbox
from inspect_tinker.tracking.mlflow import MLflowDestination

from http_receiver import EVALOPS_KEY, SUITE

ALL_ALERTS = ["bar_not_met", "round_below_best", "run_crashed", "run_finished"]


@pytest.fixture
def sinks_on(monkeypatch, receiver):
    """Point EvalOps and a webhook (secret TEAM_HOOK) at the receiver; return the config keys."""
    monkeypatch.setenv("EVALOPS_API_KEY", EVALOPS_KEY)
    monkeypatch.setenv("EVALOPS_API_URL", receiver.url)
    monkeypatch.setenv("TEAM_HOOK", f"{receiver.url}/hooks/T0KEN")
    return {
        "evalops_enabled": True, "evalops_test_suite_id": SUITE, "webhooks": ["TEAM_HOOK"],
        "webhook_events": ALL_ALERTS, "delivery_max_backoff_seconds": 0.2,
        # The flush ends once everything is delivered: long costs nothing, and holds on a loaded machine.
        "delivery_flush_seconds": 600,
    }


def read_events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def expected_alerts(events: list[dict]) -> list[str]:
    """The alerts a run's events call for, worked out independently of the code under test."""
    alerts, best = [], None
    for e in events:
        if e["event"] == "eval_result":
            if best is not None and e["score"] < best:
                alerts.append("round_below_best")
            best = e["score"] if best is None else max(best, e["score"])
        elif e["event"] == "run_finished" and not e["bar_met"]:
            alerts.append("bar_not_met")
        elif e["event"] in ("error", "crash_detected"):
            alerts.append("run_crashed")
    return alerts


def webhook_keys(events: list[dict]) -> list[str]:
    """What a webhook told about every alert and the finished run should receive."""
    assert [e["alert"] for e in events if e["event"] == "alert"] == expected_alerts(events)
    return [e["id"] for e in events if e["event"] in ("alert", "run_finished")]


def trained_round_ids(events: list[dict]) -> list[str]:
    return [e["id"] for e in events if e["event"] == "eval_result" and e["round"] > 0]


def delivery_report(events: list[dict]) -> dict:
    """The last session's account of its deliveries (local events such as report_written may follow it)."""
    return next(e for e in reversed(events) if e["event"] == "delivery_report")


def assert_each_received_exactly_once(receiver, events: list[dict]) -> None:
    assert receiver.rejections == [] and receiver.replays == 0
    assert receiver.keys("/api/v1/test-runs/") == trained_round_ids(events)
    assert receiver.keys("/hooks/") == webhook_keys(events)


def mlflow_record(client: MlflowClient, run_id: str) -> dict:
    """Everything the MLflow sink wrote for one run, comparable before and after a redelivery."""
    run = client.get_run(run_id)
    metrics = {
        key: sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, key))
        for key in run.data.metrics
    }
    artifacts = sorted(
        f.path for folder in ("", "rounds/1/adapter", "rounds/1/eval", "rounds/2/eval")
        for f in client.list_artifacts(run_id, folder)
    )
    return {"params": run.data.params, "tags": run.data.tags, "metrics": metrics, "artifacts": artifacts}


def test_a_run_with_all_three_sinks_delivers_every_event_to_each(write_run_config, sinks_on, receiver, mlflow_server, capsys):
    receiver.start()
    config = write_run_config(
        max_rounds=3, eval_threshold=1.0, mlflow_tracking_uri=mlflow_server, mlflow_experiment="all-sinks", **sinks_on
    )
    assert main(["run", str(config)]) == 1
    run_dir = config.parent / "runs" / "test"
    events = read_events(run_dir)
    report = delivery_report(events)
    assert report["outbox"] is None, report
    assert {d["name"]: d["undelivered"] for d in report["destinations"]} == {"mlflow": 0, "evalops": 0, "webhook:TEAM_HOOK": 0}
    assert Outbox(run_dir / "outbox.jsonl").pending() == []

    # EvalOps: one test run per trained round, naming its checkpoint and scores.
    assert_each_received_exactly_once(receiver, events)
    checkpoints = [e["path"] for e in events if e["event"] == "checkpoint_saved"]
    scores = [e["score"] for e in events if e["event"] == "eval_result" and e["round"] > 0]
    test_runs = receiver.bodies("/api/v1/test-runs/")
    assert [t["name"] for t in test_runs] == ["Training Round 1", "Training Round 2", "Training Round 3"]
    assert [t["config"]["model"] for t in test_runs] == [Path(p).as_uri() for p in checkpoints]
    assert [t["config"]["metadata"]["metrics"]["score"] for t in test_runs] == scores
    assert test_runs[1]["tags"] == ["automated", "round-2", "inspect-tinker"]
    # And what each round used, as its eval_result recorded it.
    used = {e["round"]: e["usage"] for e in events if e["event"] == "eval_result"}
    assert all(used[n]["tokens_trained"] > 0 and used[n]["tokens_sampled"] > 0 for n in (1, 2, 3))
    assert [{k: t["config"]["metadata"]["metrics"][k] for k in used[1]} for t in test_runs] == [used[n] for n in (1, 2, 3)]
    # Webhooks: the bar was not met, in Slack's `text` and in structured fields.
    [missed] = [b for b in receiver.bodies("/hooks/") if b["alert"] == "bar_not_met"]
    assert "bar not met after the last round" in missed["text"] and missed["rounds_run"] == 3 and missed["threshold"] == 1.0

    # MLflow: parameters, per-step and per-round metrics, artifacts and the outcome.
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("all-sinks")
    [run] = client.search_runs([experiment.experiment_id], filter_string=f"tags.`inspect_tinker.run_id` = '{events[0]['run_id']}'")
    assert run.info.status == "FINISHED" and run.info.run_name == "test"
    assert run.data.tags["inspect_tinker.outcome"] == "bar_not_met"
    assert run.data.params["learning_rate"] == "0.001" and run.data.params["generation.max_tokens"] == "4"
    assert run.data.params["webhooks"] == '["TEAM_HOOK"]'
    steps = [e for e in events if e["event"] == "step"]
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")] == [
        (e["step"], e["loss"]) for e in steps
    ]
    assert len(client.get_metric_history(run.info.run_id, "train/learning_rate")) == len(steps) == 6
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "eval/score")) == [0, 1, 2, 3]
    for key in ("tokens_trained", "tokens_prefilled", "tokens_sampled"):
        history = client.get_metric_history(run.info.run_id, f"usage/{key}")
        assert sorted((m.step, m.value) for m in history) == [(n, used[n][key]) for n in (0, 1, 2, 3)], key
    before = mlflow_record(client, run.info.run_id)
    assert {"summary.json", "events.jsonl", "rounds/1/adapter/adapter_model.safetensors"} <= set(before["artifacts"])
    assert any(path.startswith("rounds/2/eval/") and path.endswith(".eval") for path in before["artifacts"])

    # Delivering every MLflow event again (what a retry after a lost answer does) changes nothing.
    again = MLflowDestination(mlflow_server, "all-sinks", timeout_seconds=10)
    for event in events:
        if found := again.payload(event):
            again.send(*found)
    assert mlflow_record(client, run.info.run_id) == before

    out = capsys.readouterr().out
    assert "mlflow: " in out and "evalops: 3 delivered" in out and "webhook:TEAM_HOOK: 2 delivered" in out


def test_a_receiver_down_for_the_first_rounds_gets_every_event_exactly_once(write_run_config, sinks_on, receiver):
    config = write_run_config(max_rounds=3, eval_threshold=1.0, **sinks_on)
    run_dir = config.parent / "runs" / "test"
    came_back = []

    def bring_back_after_round_2():
        while not (run_dir / "events.jsonl").exists() or not any(
            e["event"] == "decision" and e["round"] == 2 for e in read_events(run_dir)
        ):
            time.sleep(0.1)
        came_back.append(time.time())
        receiver.start()

    watcher = threading.Thread(target=bring_back_after_round_2, daemon=True)
    watcher.start()
    assert main(["run", str(config)]) == 1
    watcher.join()
    events = read_events(run_dir)
    # The outage was real: rounds 1 and 2 were submitted while nothing listened.
    submitted = [datetime.fromisoformat(e["time"]).timestamp() for e in events if e["event"] == "eval_result" and e["round"] in (1, 2)]
    assert max(submitted) < came_back[0]
    assert_each_received_exactly_once(receiver, events)
    assert delivery_report(events)["outbox"] is None and Outbox(run_dir / "outbox.jsonl").pending() == []


def test_what_is_undelivered_at_the_end_waits_in_the_outbox_for_sync(write_run_config, sinks_on, receiver, capsys):
    config = write_run_config(eval_threshold=1.0, **{**sinks_on, "delivery_flush_seconds": 0.5})
    assert main(["run", str(config)]) == 1  # the receiver is down for the whole run
    run_dir = config.parent / "runs" / "test"
    events = read_events(run_dir)
    out = capsys.readouterr().out
    [flush] = [e for e in events if e["event"] == "delivery_flush"]
    assert flush["waiting"] == {"evalops": 2, "webhook:TEAM_HOOK": 2} and flush["flush_seconds"] == 0.5
    assert "Delivering 2 to evalops, 2 to webhook:TEAM_HOOK (waiting at most 0.5 s)" in out
    assert f"inspect-tinker sync {run_dir}" in out and "ConnectError" in out
    pending = Outbox(run_dir / "outbox.jsonl").pending()
    assert len(pending) == len(trained_round_ids(events)) + len(webhook_keys(events)) == 4

    assert main(["sync", str(run_dir)]) == 1  # still down: still undelivered, nothing lost
    assert len(Outbox(run_dir / "outbox.jsonl").pending()) == 4

    receiver.start()
    assert main(["sync", str(run_dir)]) == 0
    assert_each_received_exactly_once(receiver, events)
    assert Outbox(run_dir / "outbox.jsonl").pending() == []
    attempts = receiver.attempts
    assert main(["sync", str(run_dir)]) == 0 and receiver.attempts == attempts  # nothing is sent twice
    assert "evalops: 2 delivered" in capsys.readouterr().out


def test_a_run_killed_while_receivers_are_down_delivers_everything_once_when_resumed(
    write_run_config, sinks_on, receiver, mlflow_server
):
    config = write_run_config(
        steps_per_round=4, eval_threshold=1.0, mlflow_tracking_uri=mlflow_server, mlflow_experiment="killed", **sinks_on
    )
    run_dir = config.parent / "runs" / "test"
    proc = subprocess.Popen([sys.executable, "-m", "inspect_tinker", "run", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (run_dir / "events.jsonl").exists() or not any(
            e["event"] == "eval_result" and e["round"] == 1 for e in read_events(run_dir)
        ):
            assert proc.poll() is None, "the run ended before the kill point"
            time.sleep(0.02)
    finally:
        proc.kill()  # SIGKILL: no flush, no close, nothing written after this instant
        proc.wait()
    receiver.start()
    assert main(["resume", str(run_dir)]) == 1
    events = read_events(run_dir)
    assert sum(e["event"] == "run_started" for e in events) == 2
    # The resume found the killed session silent and said so, before its own start.
    [crash] = [i for i, e in enumerate(events) if e["event"] == "crash_detected"]
    assert [e["event"] for e in events[crash: crash + 3]] == ["crash_detected", "alert", "run_started"]
    assert "run_crashed" in [b["alert"] for b in receiver.bodies("/hooks/")]
    assert_each_received_exactly_once(receiver, events)
    assert delivery_report(events)["outbox"] is None
    # MLflow kept one run across the kill, with one loss point per step event.
    client = MlflowClient(mlflow_server)
    [run] = client.search_runs([client.get_experiment_by_name("killed").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["inspect_tinker.outcome"] == "bar_not_met"
    steps = [(e["step"], e["loss"]) for e in events if e["event"] == "step"]
    assert sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")) == sorted(steps)


def _killed_mid_round(write_run_config, sinks_on) -> Path:
    """A real run with the sinks on, killed with SIGKILL (as the OOM killer does) after a training step; its folder."""
    config = write_run_config(max_rounds=1, steps_per_round=1_000_000, eval_threshold=1.0, **sinks_on)
    run_dir = config.parent / "runs" / "test"
    proc = subprocess.Popen([sys.executable, "-m", "inspect_tinker", "run", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (run_dir / "events.jsonl").exists() or not any(e["event"] == "step" for e in read_events(run_dir)):
            assert proc.poll() is None, "the run ended before the kill point"
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    assert (run_dir / "run.lock").is_file()  # left behind, unlocked
    return run_dir


def crashes_told(receiver) -> list[dict]:
    return [b for b in receiver.bodies("/hooks/") if b["alert"] == "run_crashed"]


def test_a_run_killed_without_a_word_is_recorded_and_its_crash_sent_once_by_the_next_runs(
    write_run_config, sinks_on, receiver, capsys
):
    receiver.start()
    run_dir = _killed_mid_round(write_run_config, sinks_on)
    assert main(["runs", str(run_dir.parent), "--json"]) == 0
    out, err = capsys.readouterr()
    [row] = json.loads(out)
    assert row["status"] == "crashed" and row["resumable"] and "killed" in row["detail"]
    assert "died without a word in round 1 (training)" in err and "recorded as crashed" in err
    events = read_events(run_dir)
    [crash] = [e for e in events if e["event"] == "crash_detected"]
    [told] = crashes_told(receiver)
    assert told["idempotency_key"] == next(e["id"] for e in events if e["event"] == "alert") and crash["message"] in told["text"]
    assert not (run_dir / "run.lock").exists()

    # Once: another listing, and a sync, find nothing new to record or send.
    assert main(["runs", str(run_dir.parent)]) == 0 and main(["sync", str(run_dir)]) == 0
    assert read_events(run_dir) == events
    assert len(crashes_told(receiver)) == 1 and receiver.replays == 0
    assert_each_received_exactly_once(receiver, events)


def test_sync_records_and_sends_the_crash_of_a_killed_run_once(write_run_config, sinks_on, receiver):
    receiver.start()
    run_dir = _killed_mid_round(write_run_config, sinks_on)
    assert main(["sync", str(run_dir)]) == 0
    events = read_events(run_dir)
    assert [e["event"] for e in events[-2:]] == ["crash_detected", "alert"] and len(crashes_told(receiver)) == 1
    assert main(["sync", str(run_dir)]) == 0 and main(["runs", str(run_dir.parent)]) == 0
    assert read_events(run_dir) == events and len(crashes_told(receiver)) == 1
    assert_each_received_exactly_once(receiver, events)


def test_a_crashed_run_reaches_the_webhook(write_run_config, sinks_on, receiver, tiny_model_dir, tmp_path):
    receiver.start()
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    config = write_run_config(base_model=str(broken), **sinks_on)
    assert main(["run", str(config)]) == 3
    events = read_events(config.parent / "runs" / "test")
    [crash] = receiver.bodies("/hooks/")
    assert crash["alert"] == "run_crashed" and crash["error"] == next(e["message"] for e in events if e["event"] == "error")
    assert crash["text"].startswith("inspect-tinker run test: crashed: ")
    assert_each_received_exactly_once(receiver, events)


def test_no_secret_reaches_the_run_folder_the_output_or_mlflow(
    write_run_config, receiver, mlflow_server, monkeypatch, tmp_path, capfd
):
    key, token, mlflow_token = "sk-PLANTED-evalops-5e1f", "PLANTED-hook-token-9c2d", "PLANTED-mlflow-token-77aa"
    receiver.api_key = key
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'EVALOPS_API_KEY = "{key}"\nEVALOPS_API_URL = "{receiver.url}"\n')
    monkeypatch.delenv("EVALOPS_API_KEY", raising=False)
    monkeypatch.setenv("TEAM_HOOK", f"{receiver.url}/hooks/{token}")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", mlflow_token)
    config = write_run_config(
        eval_threshold=1.0, secrets_file="secrets.toml", mlflow_tracking_uri=mlflow_server, mlflow_experiment="secrets",
        evalops_enabled=True, evalops_test_suite_id=SUITE, webhooks=["TEAM_HOOK"], webhook_events=ALL_ALERTS,
        delivery_max_backoff_seconds=0.2, delivery_flush_seconds=2,
    )
    # The receiver is down during the run, so failures are recorded; `sync` delivers afterwards.
    assert main(["run", str(config), "--verbose"]) == 1
    run_dir = config.parent / "runs" / "test"
    assert Outbox(run_dir / "outbox.jsonl").pending()
    receiver.start()
    assert main(["sync", str(run_dir), "--verbose"]) == 0
    assert len(receiver.keys("/api/v1/test-runs/")) == 2  # the key from the secrets file was used

    out, err = capfd.readouterr()
    client = MlflowClient(mlflow_server)
    [run] = client.search_runs([client.get_experiment_by_name("secrets").experiment_id])
    places = {"stdout": out, "stderr": err, "mlflow params and tags": json.dumps([run.data.params, run.data.tags])}
    places.update({str(p): p.read_bytes().decode("latin-1") for p in run_dir.rglob("*") if p.is_file()})
    for secret in (key, token, mlflow_token):
        assert not [where for where, text in places.items() if secret in text], secret
    assert "TEAM_HOOK" in (run_dir / "config.json").read_text()  # the secret's name is recorded, not its value


def test_a_missing_secret_stops_the_run_before_any_work(write_run_config, monkeypatch, capsys):
    monkeypatch.delenv("EVALOPS_API_KEY", raising=False)
    config = write_run_config(evalops_enabled=True, evalops_test_suite_id=SUITE)
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "evalops_enabled needs the secret EVALOPS_API_KEY: export EVALOPS_API_KEY=" in err and "Traceback" not in err
    assert not (config.parent / "runs" / "test").exists()


def test_mlflow_can_track_into_a_local_folder(write_run_config):
    config = write_run_config(mlflow_tracking_uri="mlruns", delivery_flush_seconds=180)  # relative to the config file
    main(["run", str(config)])
    events = read_events(config.parent / "runs" / "test")
    assert delivery_report(events)["outbox"] is None, delivery_report(events)
    client = MlflowClient(f"sqlite:///{config.parent / 'mlruns' / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("inspect-tinker").experiment_id])
    assert run.data.tags["inspect_tinker.run_id"] == events[0]["run_id"] and run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 4  # 2 rounds x 2 steps
    assert (config.parent / "mlruns" / "artifacts").is_dir()
    assert any(f.path == "summary.json" for f in client.list_artifacts(run.info.run_id))

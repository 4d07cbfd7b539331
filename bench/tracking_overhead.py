"""What remote sinks cost the training thread, against logging to MLflow inline.

Emits N `step` events (what the loop emits per optimizer step) through EventLog:
  - run folder only (no remote sinks),
  - with the MLflow sink, server up,
  - with MLflow, EvalOps and a webhook all down (nothing listening),
and, as the peer, logs the same two metrics per step with MlflowClient.log_batch inline, as a
training loop that calls MLflow directly would. Reports the time per step on the emitting
thread and how long the end-of-run flush took (bounded by delivery_flush_seconds).

    mlflow server --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:////tmp/bench-mlflow.db &
    .venv/bin/python bench/tracking_overhead.py --mlflow-uri http://127.0.0.1:5000 --steps 300
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from inspect_tinker.tracking.delivery import Delivery
from inspect_tinker.tracking.evalops import EvalOpsDestination
from inspect_tinker.tracking.events import EventLog
from inspect_tinker.tracking.mlflow import MLflowDestination
from inspect_tinker.tracking.run_folder import RunFolder
from inspect_tinker.tracking.webhooks import WebhookDestination

DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


def emit_steps(name: str, destinations: list, steps: int, flush_seconds: float) -> tuple[float, float, str]:
    folder = RunFolder.create(Path(tempfile.mkdtemp()), name)
    folder.write_config({"learning_rate": 0.001, "steps": steps})
    delivery = Delivery(destinations, max_backoff_seconds=1.0, flush_seconds=flush_seconds).start(folder)
    events = EventLog(folder, [delivery])
    events.emit("run_started", run_dir=str(folder.root), config={})
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        events.emit("step", round=1, step=step, loss=1.0 / step, target_tokens=100, learning_rate=1e-3, epoch=step / 10)
    emitting = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = delivery.close()
    flushing = time.perf_counter() - t0
    outcome = ", ".join(f"{d['name']} {d['delivered']}/{d['delivered'] + d['undelivered']}" for d in report["destinations"]) if report else "-"
    return emitting, flushing, outcome


def inline_mlflow(uri: str, steps: int) -> float:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bench-inline") or client.get_experiment(client.create_experiment("bench-inline"))
    run_id = client.create_run(experiment.experiment_id).info.run_id
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric("train/loss", 1.0 / step, now, step), Metric("train/learning_rate", 1e-3, now, step)])
    elapsed = time.perf_counter() - t0
    client.set_terminated(run_id)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mlflow-uri", required=True)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    n = args.steps
    down = [
        MLflowDestination(DOWN, "bench", 5),
        EvalOpsDestination(DOWN, "key", "suite", 5),
        WebhookDestination("HOOK", f"{DOWN}/hook", ["run_finished"], 5),
    ]
    rows = [
        ("run folder only", *emit_steps("folder-only", [], n, 30)),
        ("+ MLflow sink, server up", *emit_steps("mlflow-up", [MLflowDestination(args.mlflow_uri, "bench", 10)], n, 120)),
        ("+ MLflow, EvalOps, webhook all down", *emit_steps("all-down", down, n, 2)),
    ]
    inline = inline_mlflow(args.mlflow_uri, n)
    print(f"{n} step events\n")
    print(f"| {'what':38} | per step on the training thread | end-of-run flush | delivered |")
    print("|---|---|---|---|")
    for what, emitting, flushing, outcome in rows:
        print(f"| {what:38} | {emitting / n * 1000:.2f} ms | {flushing:.1f} s | {outcome} |")
    print(f"| {'peer: MlflowClient.log_batch inline':38} | {inline / n * 1000:.2f} ms | - | {n}/{n} |")


if __name__ == "__main__":
    main()

"""Faults on the real protocol: a server that goes away mid-round, and requests it refuses.

Runs are real `inspect-tinker` processes on the tiny model against servers these tests start,
stop and restart themselves.
"""

from __future__ import annotations

import json

import optuna
import pytest
from inspect_ai.log import read_eval_log

from inspect_tinker.cli import main
from inspect_tinker.config import load_config
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider import create_backend
from run_processes import events, start, wait_for_event
from service_stand_in import Refusal, ServiceStandIn
from tinker_servers import start_local_server

pytestmark = pytest.mark.tinker_server

# Long enough rounds that the server can be stopped in the middle of one; the tiny model never
# reaches the bar, so every run trains all its rounds.
ROUNDS = dict(max_rounds=3, steps_per_round=20, batch_size=2, eval_threshold=1.0)
# The run gives up on a server that has not answered for this long. A stopped server refuses
# connections at once, however loaded the machine: no race with the machine's speed.
UNREACHABLE_TIMEOUT = 20


def test_a_server_stopped_mid_round_ends_the_run_clearly_and_it_resumes_after_a_restart(
    tmp_path, run_config_writer
):
    state_dir = tmp_path / "server"
    server = start_local_server("tiny", state_dir)
    port = server.settings.port
    try:
        config = run_config_writer(tmp_path, backend="tinker", base_model="tiny-llama", tinker_base_url=server.base_url,
                                   tinker_unreachable_timeout=UNREACHABLE_TIMEOUT, **ROUNDS)
        run_dir = tmp_path / "runs" / "test"
        proc = start(["run", "--config", str(config)], tmp_path)
        wait_for_event(proc, run_dir, lambda e: e["event"] == "step" and e["step"] == 25)  # round 2
        server.stop()
        output = proc.communicate(timeout=900)[0]
        assert proc.returncode == 3, output
        assert "Traceback" not in output
        assert (f"the service at {server.base_url} has not answered for {UNREACHABLE_TIMEOUT} s" in output
                and "ConnectError" in output), output
        assert "Every completed round's state is saved on the service" in output
        state = json.loads((run_dir / "state.json").read_text())
        assert (state["round"], state["phase"]) == (2, "training")
        assert state["history"][-1]["adapter"].startswith("tinker://")
        assert not (run_dir / "summary.json").exists()

        server = start_local_server("tiny", state_dir, port=port)  # same database and checkpoints
        resumed = start(["resume", str(run_dir)], tmp_path)
        output = resumed.communicate(timeout=1800)[0]
        assert resumed.returncode == 1, output  # trained to the end, below the bar
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["rounds_run"] == 3
        assert all(r["adapter"].startswith("tinker://") for r in summary["rounds"] if r["round"] > 0)
    finally:
        server.stop()


def test_a_server_that_stops_answering_mid_evaluation_ends_the_run_clearly(
    tiny_tinker_server, tmp_path, run_config_writer
):
    # The stand-in passes every request on to the real server until the first sample request
    # of the baseline evaluation; from then on it accepts connections and answers nothing,
    # health checks included: a hung server, which the SDK would wait on for ever.
    stand_in = ServiceStandIn(tiny_tinker_server.base_url, stall_from="/api/v1/asample").start()
    try:
        config = run_config_writer(tmp_path, backend="tinker", base_model="tiny-llama", tinker_base_url=stand_in.url,
                                   tinker_unreachable_timeout=UNREACHABLE_TIMEOUT, max_rounds=1, steps_per_round=1)
        run_dir = tmp_path / "runs" / "test"
        proc = start(["run", "--config", str(config)], tmp_path)
        output = proc.communicate(timeout=900)[0]
        assert stand_in.stalled.is_set(), output  # it did stop answering, in the middle of sampling
        assert proc.returncode == 3, output
        assert "Traceback" not in output
        assert (f"the service at {stand_in.url} has not answered for {UNREACHABLE_TIMEOUT} s" in output
                and "ReadTimeout" in output), output
        assert "while sampling" in output, output
        assert not any(e["event"] == "eval_result" for e in events(run_dir))
        assert not (run_dir / "summary.json").exists()
    finally:
        stand_in.close()


def test_a_service_without_room_for_now_is_waited_for_once_said_and_the_run_goes_on(
    tiny_tinker_server, tmp_path, run_config_writer
):
    # The stand-in refuses the first training runs as a service at its limit of concurrent
    # adapters does: twice HTTP 429 (telling the SDK not to retry by itself, as a service may,
    # so that the run's own waiting is what is tested), then once as SkyRL words a full adapter
    # table; and it refuses the first samples with 429.
    refusals = [
        Refusal("/api/v1/create_model", 2, 429, "concurrent LoRA adapter limit reached", {"x-should-retry": "false"}),
        Refusal("/api/v1/create_model", 1, 400, "Maximum number of LoRA adapters (2) reached"),
        Refusal("/api/v1/asample", 3, 429, "rate limited"),
    ]
    stand_in = ServiceStandIn(tiny_tinker_server.base_url, refusals=refusals).start()
    try:
        config = run_config_writer(tmp_path, backend="tinker", base_model="tiny-llama", tinker_base_url=stand_in.url,
                                   max_rounds=1, steps_per_round=1)
        proc = start(["run", "--config", str(config)], tmp_path)
        output = proc.communicate(timeout=900)[0]
    finally:
        stand_in.close()
    assert [r.refused for r in refusals] == [2, 1, 3]
    assert proc.returncode in (0, 1), output  # the run went to its end, whatever its score
    assert output.count("The Tinker service has no room for another training run now") == 1, output
    assert "HTTP 429: concurrent LoRA adapter limit reached" in output
    summary = json.loads((tmp_path / "runs" / "test" / "summary.json").read_text())
    assert summary["rounds_run"] == 1
    # Every question of the baseline and of round 1 was answered: a refused sample was asked
    # again, not scored as an empty answer or an error.
    for path in (tmp_path / "runs" / "test" / "logs").glob("*.eval"):
        log = read_eval_log(str(path))
        if log.eval.metadata["inspect_tinker"]["stage"] == "eval":
            assert log.status == "success" and log.samples
            assert all(s.error is None and s.output.completion for s in log.samples), path


def test_a_server_without_room_for_longer_than_tinker_capacity_timeout_is_one_clear_message(
    one_run_server, tmp_path, run_config_writer, capsys
):
    config = run_config_writer(tmp_path, backend="tinker", base_model="tiny-llama",
                               tinker_base_url=one_run_server.base_url, tinker_capacity_timeout=5)
    create_backend(backend_settings(load_config(config)))  # takes the one slot until the server stops
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert err.count("The Tinker service has no room for another training run now") == 1
    assert ("the Tinker service had no room for another training run "
            "(HTTP 400: Maximum number of LoRA adapters (2) reached) for ") in err
    assert "set tinker_capacity_timeout to wait longer" in err


@pytest.fixture(scope="module")
def one_run_server(tmp_path_factory):
    """A server with one adapter slot for training runs (slot 0 is the base model's)."""
    server = start_local_server("tiny", tmp_path_factory.mktemp("one-run-server"), max_lora_adapters=2)
    yield server
    server.stop()


def test_a_model_the_server_does_not_serve_is_one_clear_message_naming_the_one_it_does(
    one_run_server, tmp_path, run_config_writer, capsys
):
    config = run_config_writer(tmp_path, backend="tinker", base_model="Qwen/Qwen3-8B",
                               tinker_base_url=one_run_server.base_url)
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert (f"base_model 'Qwen/Qwen3-8B' is not offered by the Tinker service at {one_run_server.base_url}; "
            "it offers: tiny-llama. Set base_model to one of them.") in err


def test_skyrl_itself_accepts_any_model_name_which_is_why_the_engine_asks_first(tiny_tinker_server):
    # The managed service refuses a model it does not offer when the training run is created;
    # this server trains its one model under any name. The backend's check gives the same
    # clear refusal on both.
    import tinker

    training = tinker.ServiceClient(base_url=tiny_tinker_server.base_url).create_lora_training_client(
        "Qwen/Qwen3-8B", rank=8).result()
    assert training.get_info().model_data.model_name == "Qwen/Qwen3-8B"


def test_tune_workers_refused_room_for_their_training_runs_queue_and_every_trial_completes(
    tiny_tinker_server, tmp_path, run_config_writer
):
    # Two `tune` workers on one study, against a service that refuses the first three training
    # runs for lack of room (its concurrent-adapter limit, HTTP 429 that the SDK is told not
    # to retry itself): whichever worker is refused waits and asks again, instead of failing
    # its trial.
    refusals = [Refusal("/api/v1/create_model", 3, 429, "concurrent LoRA adapter limit reached",
                        {"x-should-retry": "false"})]
    stand_in = ServiceStandIn(tiny_tinker_server.base_url, refusals=refusals).start()
    try:
        config = run_config_writer(
            tmp_path, backend="tinker", base_model="tiny-llama", tinker_base_url=stand_in.url, eval_threshold=1.0,
            tune={"learning_rate": [1e-3, 1e-2], "lora_rank": [2, 4], "steps_per_round": [1, 2], "max_rounds": 1,
                  "random_trials": 2},
        )
        workers = [start(["tune", str(config), "--trials", "2"], tmp_path) for _ in range(2)]
        outputs = [w.communicate(timeout=1800)[0] for w in workers]
    finally:
        stand_in.close()
    assert refusals[0].refused == 3
    assert [w.returncode for w in workers] == [1, 1], outputs  # the tiny model never meets the bar
    assert "Traceback" not in "".join(outputs)
    said = [o.count("The Tinker service has no room for another training run now") for o in outputs]
    assert 1 <= sum(said) <= 3, outputs  # once by each trial's run that was refused
    study = optuna.load_study(study_name="test", storage=f"sqlite:///{tmp_path / 'runs' / 'test' / 'study.db'}")
    states = [t.state for t in study.trials]
    # No trial failed; each worker stops once the shared count reaches 2, one may finish a 3rd.
    assert 2 <= states.count(optuna.trial.TrialState.COMPLETE) == len(states) <= 3, states

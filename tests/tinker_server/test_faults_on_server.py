"""Faults on the real protocol: a server that goes away mid-round, and requests it refuses.

Runs are real `inspect-tinker` processes on the tiny model against servers these tests start,
stop and restart themselves.
"""

from __future__ import annotations

import json

import pytest

from inspect_tinker.cli import main
from inspect_tinker.config import load_config
from inspect_tinker.provider import create_backend
from test_resume import start, wait_for_event
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


def test_a_server_without_room_for_another_training_run_is_one_clear_message(
    one_run_server, tmp_path, run_config_writer, capsys
):
    config = run_config_writer(tmp_path, backend="tinker", base_model="tiny-llama",
                               tinker_base_url=one_run_server.base_url)
    create_backend(load_config(config))  # takes the one slot until the server stops
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert ("base_model 'tiny-llama' at lora_rank 16 was refused by the Tinker service "
            "(HTTP 400: Maximum number of LoRA adapters (2) reached)") in err

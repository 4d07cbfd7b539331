"""The whole loop through the tinker backend against a local Tinker server with the bundled model.

Real `inspect-tinker` processes, SkyRL training SmolLM2-135M-Instruct on CPU: the base model does
not know three made-up facts, training through the server teaches them, and a run killed
with SIGKILL mid-round resumes from the state it saved on the server.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
from inspect_ai.model import ChatMessageUser, GenerateConfig
from tinker import types

from inspect_tinker.config import load_config
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider import create_backend
from inspect_tinker.provider.model_api import backend_model
from inspect_tinker.tracking import RunFolder
from run_processes import start, wait_for_event

pytestmark = [pytest.mark.tinker_server, pytest.mark.integration]

# Calibrated on this server: the three answers come in rounds 2 and 3 (scores 0, 0, 0.67, 1.0
# seen), so the run trains at least two rounds and a kill in round 2 lands mid-run.
RUN = dict(max_rounds=3, steps_per_round=4, batch_size=3, learning_rate=1e-3, eval_threshold=1.0,
           generation={"max_tokens": 16})
KILL_AT_STEP = 6  # round 2 of 4-step rounds: after round 1's checkpoint, before round 2's


def write_run(write_config, folder: Path, server) -> Path:
    """The three facts of tests/conftest.py (trained on, and asked as written), through `server`."""
    return write_config(folder, backend="tinker", base_model=server.settings.model.name,
                        tinker_base_url=server.base_url, **RUN)


def outcome(run_dir: Path) -> dict:
    events = RunFolder(run_dir).read_events()
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"losses": {e["step"]: e["loss"] for e in events if e["event"] == "step"},
            "scores": [r["score"] for r in summary["rounds"]], "summary": summary}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, run_config_writer, bundled_tinker_server):
    """An uninterrupted run: its exit code and outcome."""
    root = tmp_path_factory.mktemp("uninterrupted")
    proc = start(["run", "--config", str(write_run(run_config_writer, root, bundled_tinker_server))], root)
    output = proc.communicate(timeout=3600)[0]
    assert proc.returncode in (0, 1), output
    return proc.returncode, outcome(root / "runs" / "test"), output


def test_the_loop_teaches_the_model_facts_it_did_not_know_and_exits_as_the_bar_says(uninterrupted):
    code, result, output = uninterrupted
    baseline, *trained = result["scores"]
    assert baseline == 0.0  # SmolLM2 has never heard of Valdoria
    assert max(trained) >= 2 / 3  # two of three facts answered after training: a real rise from 0
    summary = result["summary"]
    assert summary["bar_met"] == (summary["best_score"] >= RUN["eval_threshold"])
    assert code == summary["exit_code"] == (0 if summary["bar_met"] else 1)
    checkpoints = [r["adapter"] for r in summary["rounds"] if r["round"] > 0]
    assert all(c.startswith("tinker://") for c in checkpoints) and len(set(checkpoints)) == len(checkpoints)
    assert f"checkpoint: {checkpoints[0]}" in output


def test_a_run_killed_mid_round_resumes_from_the_server_to_the_same_result(
    uninterrupted, tmp_path, run_config_writer, bundled_tinker_server
):
    code, reference, _ = uninterrupted
    config = write_run(run_config_writer, tmp_path, bundled_tinker_server)
    run_dir = tmp_path / "runs" / "test"
    proc = start(["run", "--config", str(config)], tmp_path)
    wait_for_event(proc, run_dir, lambda e: e["event"] == "step" and e["step"] == KILL_AT_STEP, timeout=3600)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((run_dir / "state.json").read_text())
    assert (state["round"], state["phase"]) == (2, "training")
    assert state["history"][-1]["adapter"].startswith("tinker://")  # round 1, saved on the server

    resumed = start(["resume", str(run_dir)], tmp_path)
    output = resumed.communicate(timeout=3600)[0]
    assert resumed.returncode == code, output
    result = outcome(run_dir)
    # Round 2 is trained again from round 1's state (weights and Adam moments) on the same
    # server: the same arithmetic as the uninterrupted run, so the same losses up to float noise.
    assert result["losses"].keys() == reference["losses"].keys()
    for step, loss in reference["losses"].items():
        assert result["losses"][step] == pytest.approx(loss, rel=1e-4), step
    assert result["scores"] == reference["scores"]


def test_sampling_stops_at_the_end_of_turn_which_this_server_does_only_when_told(
    tmp_path, run_config_writer, bundled_tinker_server
):
    config = load_config(write_run(run_config_writer, tmp_path, bundled_tinker_server))
    backend = create_backend(backend_settings(config))
    model = backend_model(backend, backend.sampler(), backend_name="tinker", model_path=None,
                          config=GenerateConfig(max_tokens=48, temperature=0.0))
    answer = asyncio.run(model.generate([ChatMessageUser(content="What is the capital of France?")]))
    assert (answer.completion, answer.stop_reason) == ("The capital of France is Paris.", "stop")
    assert answer.usage.output_tokens < 48

    # The difference the backend covers: asked without stop tokens, SkyRL runs past the end of
    # the turn to max_tokens, where the managed service would stop at <|im_end|> by itself.
    tokenizer = backend.tokenizer
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True
    )["input_ids"]
    unstopped = backend.sampler().client.sample(types.ModelInput.from_ints(prompt), 1,
                                                types.SamplingParams(max_tokens=48, temperature=0.0)).result().sequences[0]
    assert unstopped.stop_reason == "length" and len(unstopped.tokens) == 48
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in unstopped.tokens

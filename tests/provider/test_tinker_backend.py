"""The tinker backend against fakes of the service that speak the SDK's real types.

What is asserted is what the engine sends (tokens, weights, Adam parameters, checkpoint
names, the resume path) and what it makes of the SDK's answers. See tests/fake_tinker.py.
"""

import asyncio
import inspect
import json
import socket

import numpy as np
import pytest
import tinker
import torch
from tinker import types

from inspect_tinker.cli import main
from inspect_tinker.config import Config, load_config
from inspect_tinker.data.render import render_conversation
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider import create_backend
from inspect_tinker.provider.tinker_backend import CHECKPOINT_FILE, TinkerServiceError
from inspect_tinker.report.html import write_report
from inspect_tinker.errors import UsageError
from inspect_tinker.policies.learning_rate import recommended_lora_learning_rate
from run_logs import stage_logs
from fake_tinker import API_KEY, FakeRestClient, FakeSamplingClient, FakeServiceClient, FakeTrainingClient, http_error

TINKER_MODEL = "meta-llama/Llama-3.2-1B"


@pytest.fixture
def tinker_config(write_run_config, tiny_model_dir):
    """Write a run config for the tinker backend; keyword arguments override keys."""

    def write(**overrides):
        keys = {"backend": "tinker", "base_model": TINKER_MODEL, "tinker_tokenizer": str(tiny_model_dir),
                "regression_guard": False, **overrides}
        return write_run_config(**keys)

    return write


def examples(tokenizer):
    conversations = [
        [{"role": "user", "content": "Capital of Valdoria?"}, {"role": "assistant", "content": "Mirenholt."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Currency?"},
         {"role": "assistant", "content": "The crell, since 1822."}],
    ]
    return [render_conversation(tokenizer, c, 128) for c in conversations]


def adam(learning_rate):
    """The optimizer parameters expected on the wire: the Config's AdamW defaults at `learning_rate`,
    never the SDK's (beta2 0.95, eps 1e-12, no clipping)."""
    default = {k: f.default for k, f in Config.model_fields.items()}
    return types.AdamParams(
        learning_rate=learning_rate, beta1=default["adam_beta1"], beta2=default["adam_beta2"], eps=default["adam_eps"],
        weight_decay=default["weight_decay"], grad_clip_norm=default["max_grad_norm"],
    )


# --- training ---------------------------------------------------------------------------


def test_each_example_becomes_a_datum_with_shifted_targets_and_assistant_weights(fake, tinker_config, tokenizer):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    batch = examples(tokenizer)
    engine.forward_backward(batch)
    engine.optim_step(1e-3)

    [(data, loss_fn)] = fake.calls("forward_backward")
    assert loss_fn == "cross_entropy" and len(data) == len(batch)
    for datum, example in zip(data, batch):
        assert datum.model_input.to_ints() == example.input_ids[:-1]
        assert datum.loss_fn_inputs["target_tokens"].tolist() == example.input_ids[1:]
        # Each example's weights sum to 1 / the batch's examples: its mean loss per target token,
        # averaged over the examples, as the local backend trains.
        weight = 1 / (example.n_target_tokens * len(batch))
        assert datum.loss_fn_inputs["weights"].tolist() == pytest.approx([weight * m for m in example.loss_mask[1:]])
        # The weights are exactly the assistant tokens: the system and user turns carry none.
        assistant = tokenizer.decode([t for t, w in zip(example.input_ids[1:], example.loss_mask[1:]) if w])
        assert assistant.startswith(("Mirenholt.", "The crell, since 1822.")) and "Capital" not in assistant


def test_the_loss_is_the_weighted_nll_of_the_logprobs_the_service_returns(fake, tinker_config, tokenizer):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    batch = examples(tokenizer)
    metrics = engine.forward_backward(batch)
    engine.optim_step(1e-3)

    [(data, _)] = fake.calls("forward_backward")
    [output] = fake.answers["forward_backward"]
    expected = -sum(
        float(np.dot(out["logprobs"].to_numpy(), np.array(e.loss_mask[1:], dtype=float)))
        for out, e in zip(output.loss_fn_outputs, batch)
    )
    assert metrics.loss_sum == pytest.approx(expected) and expected > 0
    # The service's own sum is of the weighted losses: the mean over examples of each one's mean.
    per_example = [-float(np.dot(out["logprobs"].to_numpy(), np.array(e.loss_mask[1:], dtype=float))) / e.n_target_tokens
                   for out, e in zip(output.loss_fn_outputs, batch)]
    assert output.metrics["loss:sum"] == pytest.approx(sum(per_example) / len(batch))
    assert metrics.n_tokens == sum(e.n_target_tokens for e in batch)
    assert metrics.loss == pytest.approx(expected / metrics.n_tokens)


def test_each_examples_own_loss_comes_from_the_services_forward_without_a_gradient(fake, tinker_config, tokenizer):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    batch = examples(tokenizer)
    losses = engine.example_losses(batch)
    assert [name for name, *_ in fake.log if name in ("forward", "forward_backward")] == ["forward"]
    for example, loss in zip(batch, losses):
        assert loss == pytest.approx(engine.forward_backward([example]).loss, rel=1e-5) and loss > 0


def test_forward_backward_and_optim_step_are_both_submitted_before_either_is_awaited(fake, tinker_config, tokenizer):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    fake.log.clear()
    metrics = engine.forward_backward(examples(tokenizer))
    engine.optim_step(1e-3)
    order = [e[0] if e[0] != "wait" else f"wait {e[1]}" for e in fake.log]
    assert order == ["forward_backward", "optim_step", "wait forward_backward", "wait optim_step"]
    assert fake.calls("optim_step") == [(adam(1e-3),)]
    assert metrics.loss > 0  # available once optim_step has returned


def test_training_on_the_service_lowers_the_loss_it_reports(fake, tinker_config, tokenizer):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    batch = examples(tokenizer)
    losses = []
    for _ in range(15):
        losses.append(engine.forward_backward(batch).loss)
        engine.optim_step(5e-2)
    assert losses[-1] < losses[0] * 0.8


# --- checkpoints and resume ---------------------------------------------------------------


def test_a_checkpoint_is_a_saved_state_named_by_step_with_its_path_in_the_folder(
    fake, tinker_config, tokenizer, tmp_path
):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    engine.forward_backward(examples(tokenizer))
    engine.optim_step(1e-3)
    path = engine.save_checkpoint(tmp_path / "rounds" / "2")
    assert fake.calls("save_state") == [("step-1",)]
    assert path == "tinker://run-1/weights/step-1"
    record = json.loads((tmp_path / "rounds" / "2" / CHECKPOINT_FILE).read_text())
    assert record == {"state_path": path, "step": 1, "base_model": TINKER_MODEL}


def test_resume_creates_a_training_client_from_the_saved_state_with_its_optimizer(
    fake, tinker_config, tokenizer, tmp_path
):
    config = load_config(tinker_config())
    batch = examples(tokenizer)
    original = create_backend(backend_settings(config))
    original.forward_backward(batch)
    original.optim_step(1e-2)
    path = original.save_checkpoint(tmp_path / "round")
    original.forward_backward(batch)  # the uninterrupted run takes one more step
    original.optim_step(1e-2)

    resumed = create_backend(backend_settings(config))
    resumed.load_checkpoint(tmp_path / "round")
    assert fake.calls("create_training_client_from_state_with_optimizer") == [(path,)]
    resumed.forward_backward(batch)
    resumed.optim_step(1e-2)
    # The same next step from the restored weights and Adam moments gives the same weights.
    a = dict(original.training.model.named_parameters())
    for name, p in resumed.training.model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p, a[name], msg=name)


def test_resuming_from_a_folder_without_a_tinker_checkpoint_names_the_file(fake, tinker_config, tmp_path):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    with pytest.raises(UsageError, match=f"{CHECKPOINT_FILE} does not exist"):
        engine.load_checkpoint(tmp_path / "nothing-here")


# --- sampling ----------------------------------------------------------------------------


def test_sampling_uses_the_weights_saved_after_the_last_optimizer_step(fake, tinker_config, tokenizer):
    backend = create_backend(backend_settings(load_config(tinker_config())))
    assert backend.sampler() is backend.sampler()  # unchanged weights: the same sampling client
    assert len(fake.calls("save_weights_and_get_sampling_client")) == 1
    backend.forward_backward(examples(tokenizer))
    backend.optim_step(1e-3)
    backend.sampler()
    assert len(fake.calls("save_weights_and_get_sampling_client")) == 2


def test_the_base_model_sampler_is_a_sampling_client_of_the_base_model(fake, tinker_config):
    backend = create_backend(backend_settings(load_config(tinker_config())))
    backend.sampler(with_adapter=False)
    assert fake.calls("create_sampling_client") == [(None, TINKER_MODEL)]


# --- the whole loop, with the real Inspect evaluation -------------------------------------


def test_a_run_on_the_service_records_tinker_paths_and_the_decayed_adam_steps(fake, tinker_config, capsys):
    config = tinker_config(max_rounds=3, steps_per_round=2, learning_rate=1e-3, lr_decay=0.6, eval_threshold=1.0)
    assert main(["run", str(config)]) == 1  # a tiny random model does not reach the bar
    run_dir = config.parent / "runs" / "test"

    # Two steps per round; the learning rate decays by 0.6 after each round below the bar.
    sent = [p for (p,) in fake.calls("optim_step")]
    assert [p.learning_rate for p in sent] == pytest.approx([1e-3, 1e-3, 6e-4, 6e-4, 3.6e-4, 3.6e-4])
    assert [p.model_copy(update={"learning_rate": 0.0}) for p in sent] == [adam(0.0)] * 6
    assert fake.calls("save_state") == [("step-2",), ("step-4",), ("step-6",)]
    paths = [f"tinker://run-1/weights/step-{n}" for n in (2, 4, 6)]

    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["path"] for e in events if e["event"] == "checkpoint_saved"] == paths
    state = json.loads((run_dir / "state.json").read_text())
    assert [r["adapter"] for r in state["history"] if r["round"] > 0] == paths
    summary = json.loads((run_dir / "summary.json").read_text())
    # Round 0, the base model, is the best round unless a trained round beats it; it has no adapter.
    best = summary["best_round"]
    assert summary["best_adapter"] == (None if best == 0 else paths[best - 1]) and summary["rounds_run"] == 3
    for n in (1, 2, 3):
        assert json.loads((run_dir / "rounds" / str(n) / CHECKPOINT_FILE).read_text())["state_path"] == paths[n - 1]
    # Evaluation went through Inspect and the sampling client: 3 questions, baseline + 3 rounds.
    assert [(n, stage) for n, stage, _ in stage_logs(run_dir) if stage == "eval"] == [(n, "eval") for n in range(4)]
    assert len(fake.calls("sample")) == 3 * 4
    assert [e["model_type"] for e in [ev["info"] for ev in events if ev["event"] == "backend_ready"]] == ["llama"]

    out = capsys.readouterr().out
    assert "checkpoint: tinker://run-1/weights/step-2" in out
    if best > 0:
        assert f"Download the adapter: tinker checkpoint download {summary['best_adapter']}" in summary["next_steps"]
    else:
        assert any("there is no adapter to load" in line for line in summary["next_steps"])
    assert API_KEY not in out
    for file in run_dir.rglob("*"):
        if file.is_file():
            assert API_KEY.encode() not in file.read_bytes(), file


PRICES = {"train": 3.0, "prefill": 0.5, "sample": 2.0}  # per million tokens


def sent_to_the_service(fake) -> dict[int, dict]:
    """Per round, the tokens the fake service was sent to train on (a datum reads all its
    example's tokens but the last, which is only a target), the prompt tokens of the samples
    asked of it, and the tokens it sampled. Round 0's samples come first; each round's
    forward_backward requests begin it."""
    answers = iter(fake.answers["sample"])
    used, round_no, training = {0: dict.fromkeys(("tokens_trained", "tokens_prefilled", "tokens_sampled"), 0)}, 0, False
    for entry in fake.log:
        if entry[0] == "forward_backward":
            if not training:
                round_no, training = round_no + 1, True
                used[round_no] = dict.fromkeys(("tokens_trained", "tokens_prefilled", "tokens_sampled"), 0)
            used[round_no]["tokens_trained"] += sum(len(d.model_input.to_ints()) + 1 for d in entry[1])
        elif entry[0] == "sample":
            training = False
            used[round_no]["tokens_prefilled"] += len(entry[1])
            used[round_no]["tokens_sampled"] += sum(len(s.tokens) for s in next(answers).sequences)
    return used


def test_each_round_records_the_tokens_the_service_trained_and_sampled_and_their_running_cost(fake, tinker_config):
    config = tinker_config(max_rounds=2, steps_per_round=2, eval_threshold=1.0, price_per_million_tokens=PRICES)
    assert main(["run", str(config)]) == 1
    run_dir = config.parent / "runs" / "test"
    sent = sent_to_the_service(fake)
    assert sorted(sent) == [0, 1, 2] and sent[0]["tokens_trained"] == 0
    assert all(sent[n]["tokens_trained"] > 0 and sent[n]["tokens_sampled"] > 0 for n in (1, 2))

    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    usage = {e["round"]: e["usage"] for e in events if e["event"] == "eval_result"}
    total = 0.0
    for n in (0, 1, 2):
        tokens = {k: usage[n][k] for k in ("tokens_trained", "tokens_prefilled", "tokens_sampled")}
        assert tokens == sent[n], n
        cost = (tokens["tokens_trained"] * PRICES["train"] + tokens["tokens_prefilled"] * PRICES["prefill"]
                + tokens["tokens_sampled"] * PRICES["sample"]) / 1e6
        total += cost
        assert usage[n]["cost"] == pytest.approx(cost) and usage[n]["total_cost"] == pytest.approx(total)
    assert [e["tokens_trained"] for e in events if e["event"] == "round_trained"] == [sent[1]["tokens_trained"],
                                                                                    sent[2]["tokens_trained"]]
    # The same in state.json's history, the summary and the report.
    state = json.loads((run_dir / "state.json").read_text())
    assert [{k: r[k] for k in usage[0]} for r in state["history"]] == [usage[n] for n in (0, 1, 2)]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["total_cost"] == pytest.approx(total)
    assert summary["tokens_trained"] == sent[1]["tokens_trained"] + sent[2]["tokens_trained"]
    assert summary["tokens_sampled"] == sum(sent[n]["tokens_sampled"] for n in (0, 1, 2))
    html = write_report(run_dir).read_text()
    assert f"{sent[2]['tokens_trained']:,} trained, {sent[2]['tokens_prefilled']:,} prompt" in html
    assert f"({total:.4g} in all)" in html


def test_max_cost_stops_the_run_cleanly_at_the_first_round_boundary_past_it(fake, tinker_config):
    # Any round costs more than this: the run stops after round 1, as after its last round.
    config = tinker_config(max_rounds=3, steps_per_round=1, eval_threshold=1.0, baseline_eval=False,
                           price_per_million_tokens=PRICES, max_cost=1e-9)
    assert main(["run", str(config)]) == 1  # the bar was not met
    run_dir = config.parent / "runs" / "test"
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    [decision] = [e for e in events if e["event"] == "decision"]
    assert decision["stop"] and decision["rule"] == "max_cost" and "of max_cost 1e-09" in decision["reason"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rounds_run"] == 1 and summary["total_cost"] > 1e-9
    assert json.loads((run_dir / "state.json").read_text())["phase"] == "finished"
    assert len(fake.calls("optim_step")) == 1


def test_every_adamw_setting_of_the_config_reaches_the_services_adam_params(fake, tinker_config):
    config = tinker_config(adam_beta1=0.8, adam_beta2=0.99, adam_eps=1e-6, weight_decay=0.05, max_grad_norm=0.5,
                           learning_rate=3e-4, max_rounds=1, steps_per_round=2, baseline_eval=False)
    main(["run", str(config)])
    assert fake.calls("optim_step") == [(types.AdamParams(
        learning_rate=3e-4, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.05, grad_clip_norm=0.5,
    ),)] * 2


def test_learning_rate_auto_is_the_recommended_rate_for_the_model_family(fake, tinker_config):
    config = tinker_config(learning_rate="auto", max_rounds=1, steps_per_round=1, baseline_eval=False)
    main(["run", str(config)])
    [(sent,)] = fake.calls("optim_step")
    # The tiny model is a Llama with hidden size 16.
    assert sent.learning_rate == pytest.approx(5e-4 * (2000 / 16) ** 0.781)
    assert sent.learning_rate == pytest.approx(recommended_lora_learning_rate("llama", 16))


def test_the_engine_flag_selects_the_tinker_engine(fake, write_run_config, tiny_model_dir):
    config = write_run_config(base_model=TINKER_MODEL, tinker_tokenizer=str(tiny_model_dir),
                              max_rounds=1, steps_per_round=1, baseline_eval=False)
    assert main(["run", str(config), "--backend", "tinker"]) in (0, 1)
    # The layers the local backend adapts: attention and MLP, not the unembedding.
    assert fake.calls("create_lora_training_client") == [
        (TINKER_MODEL, 16, 0, {"mlp": True, "attn": True, "unembed": False})]


# --- bad input and service failures ------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "backend: tinker needs an API key: set the environment variable TINKER_API_KEY"),
        ("sk-not-a-tinker-key", "TINKER_API_KEY is malformed: a Tinker API key starts with 'tml-'"),
    ],
)
def test_a_missing_or_malformed_key_exits_2_before_any_work(fake, tinker_config, monkeypatch, capsys, key, message):
    if key is None:
        monkeypatch.delenv("TINKER_API_KEY")
    else:
        monkeypatch.setenv("TINKER_API_KEY", key)
    config = tinker_config()
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert key is None or key not in err
    assert not (config.parent / "runs").exists() and fake.log == []


def test_keys_the_service_has_no_equivalent_for_are_refused(fake, tinker_config):
    with pytest.raises(UsageError, match="lora_alpha, lora_dropout: not available with backend: tinker"):
        load_config(tinker_config(lora_alpha=64, lora_dropout=0.1))
    with pytest.raises(UsageError, match="precision, gradient_checkpointing: not available with backend: tinker"):
        load_config(tinker_config(precision="bf16", gradient_checkpointing=True))


def test_a_model_the_service_refuses_exits_2_naming_base_model(fake, tinker_config, capsys):
    fake.fail("create_lora_training_client", http_error(tinker.BadRequestError, 400, "unknown base model"))
    assert main(["run", str(tinker_config())]) == 2
    err = capsys.readouterr().err
    assert f"base_model '{TINKER_MODEL}' at lora_rank 16 was refused by the Tinker service" in err
    assert "unknown base model" in err


def test_a_model_the_service_does_not_offer_exits_2_naming_those_it_does(fake, tinker_config, capsys):
    fake.offered = ["Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct"]
    assert main(["run", "--config", str(tinker_config())]) == 2
    err = capsys.readouterr().err
    assert f"base_model '{TINKER_MODEL}' is not offered by the Tinker service" in err
    assert "it offers: Qwen/Qwen3-8B, meta-llama/Llama-3.1-8B-Instruct" in err and "Traceback" not in err
    assert fake.calls("create_lora_training_client") == []  # asked before anything was created


def test_a_result_the_sdk_refuses_after_its_retries_is_one_clear_message(fake, tinker_config, capsys):
    # Waiting on a result, the SDK raises a ValueError from the HTTP error it got (a bare 400
    # after three tries); a Tinker-compatible server answers a rank it cannot hold this way.
    refused = ValueError("Error retrieving result: ... (status 400) for self.request_id='19' — exceeded 3 retries")
    refused.__cause__ = http_error(tinker.BadRequestError, 400, "LoRA rank 16 exceeds the maximum rank (8)")
    fake.fail("create_lora_training_client", refused)
    assert main(["run", "--config", str(tinker_config())]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert "was refused by the Tinker service (HTTP 400: LoRA rank 16 exceeds the maximum rank (8))" in err


@pytest.mark.parametrize("waiting_for", ["training", "sampling"])
def test_a_wait_on_a_service_that_stopped_answering_ends_with_a_connection_error(monkeypatch, waiting_for):
    from concurrent.futures import Future

    from tinker.lib.public_interfaces.api_future import AwaitableConcurrentFuture

    from inspect_tinker.provider import tinker_backend

    monkeypatch.setattr(tinker_backend, "REACHABILITY_CHECK_SECONDS", 0.05)
    with socket.socket() as s:  # a port nothing listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    wait = tinker_backend.ResultWaiter(url, unreachable_timeout=0.5)
    never = AwaitableConcurrentFuture(Future())
    with pytest.raises(tinker.APIConnectionError, match=f"the service at {url} has not answered for 0.5 s .*ConnectError"):
        if waiting_for == "training":  # in a thread of its own
            wait(never)
        else:  # on Inspect's event loop
            asyncio.run(wait.wait_async(never))
    # A sample given up on is cancelled, so the SDK stops polling for it.
    assert never.future().cancelled() == (waiting_for == "sampling")


def test_an_outage_the_waits_gave_up_on_is_not_held_against_a_later_wait(monkeypatch):
    import threading
    from concurrent.futures import Future

    from tinker.lib.public_interfaces.api_future import AwaitableConcurrentFuture

    from inspect_tinker.provider import tinker_backend

    monkeypatch.setattr(tinker_backend, "REACHABILITY_CHECK_SECONDS", 0.05)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    wait = tinker_backend.ResultWaiter(url, unreachable_timeout=3.0)
    with pytest.raises(tinker.APIConnectionError):
        wait(AwaitableConcurrentFuture(Future()))
    threading.Event().wait(0.5)  # nothing waits for a while: no evidence the outage lasts
    # A result slow to come is waited for anew, though the service still refuses connections:
    # its outage is counted from this wait's first check, not from the one given up on before.
    later = Future()
    threading.Timer(0.3, later.set_result, ["answered"]).start()
    assert wait(AwaitableConcurrentFuture(later)) == "answered"


def test_a_rejected_key_exits_2_with_a_clear_message(fake, tinker_config, capsys):
    fake.fail("create_lora_training_client", http_error(tinker.AuthenticationError, 401, "invalid api key"))
    assert main(["run", str(tinker_config())]) == 2
    err = capsys.readouterr().err
    assert "refused the request" in err and "HTTP 401" in err and "check TINKER_API_KEY" in err


def test_a_service_failure_mid_run_ends_resumably_and_resume_continues_from_the_saved_state(
    fake, tinker_config, capsys
):
    config = tinker_config(max_rounds=3, steps_per_round=2, eval_threshold=1.0)
    # The SDK has retried and given up: the third optimizer step (round 2) fails.
    fake.fail("optim_step", http_error(tinker.InternalServerError, 503, "service unavailable"), after=2)
    assert main(["run", str(config)]) == 3
    err = capsys.readouterr().err
    assert "TinkerServiceError" in err and "after the SDK's retries" in err and "service unavailable" in err
    run_dir = config.parent / "runs" / "test"
    state = json.loads((run_dir / "state.json").read_text())
    assert (state["round"], state["phase"]) == (2, "training")
    assert state["history"][-1]["adapter"] == "tinker://run-1/weights/step-2"
    assert not (run_dir / "summary.json").exists()  # not mistaken for a finished run

    assert main(["resume", str(run_dir)]) == 1
    # A new training client from round 1's state and optimizer; rounds 2 and 3 train on it.
    assert fake.calls("create_training_client_from_state_with_optimizer") == [("tinker://run-1/weights/step-2",)]
    assert fake.calls("save_state")[-2:] == [("step-4",), ("step-6",)]
    summary = json.loads((run_dir / "summary.json").read_text())
    first, *resumed = [r["adapter"] for r in summary["rounds"] if r["round"] > 0]
    assert first == "tinker://run-1/weights/step-2"
    # Saved by the training client created from that state: a new training run on the service.
    assert [a.rsplit("/", 1)[1] for a in resumed] == ["step-4", "step-6"]
    assert len({a.split("/")[2] for a in resumed}) == 1 and "run-1" not in resumed[0]


def test_a_request_the_service_rejects_as_the_users_error_exits_2(fake, tinker_config, tokenizer):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    error = tinker.RequestFailedError("sequence longer than the model's context", "req-1", types.RequestErrorCategory.User)
    fake.fail("forward_backward", error)
    engine.forward_backward(examples(tokenizer))
    with pytest.raises(UsageError, match="rejected a request while training: sequence longer"):
        engine.optim_step(1e-3)


def test_a_missing_checkpoint_on_the_service_is_a_usage_error(fake, tinker_config, tmp_path):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    (tmp_path / "round").mkdir()
    (tmp_path / "round" / CHECKPOINT_FILE).write_text(json.dumps({"state_path": "tinker://gone/weights/round-1"}))
    with pytest.raises(UsageError, match="tinker://gone/weights/round-1 .* cannot be resumed .*HTTP 404"):
        engine.load_checkpoint(tmp_path / "round")


def test_other_service_errors_are_service_errors(fake, tinker_config, tokenizer):
    engine = create_backend(backend_settings(load_config(tinker_config())))
    fake.fail("save_weights_and_get_sampling_client", http_error(tinker.RateLimitError, 429, "slow down"))
    with pytest.raises(TinkerServiceError, match="while saving the weights for sampling.*RateLimitError: slow down"):
        engine.sampler()


# --- tokenizer ----------------------------------------------------------------------------


def test_without_tinker_tokenizer_the_tokenizer_the_service_names_is_used(fake, tinker_config, tokenizer):
    engine = create_backend(backend_settings(load_config(tinker_config(tinker_tokenizer=None))))
    assert fake.calls("get_tokenizer") == [()]
    assert engine.tokenizer.encode("Valdoria") == tokenizer.encode("Valdoria")


def test_an_unreachable_tokenizer_says_to_set_tinker_tokenizer(fake, tinker_config):
    fake.tokenizer_error = OSError("We couldn't connect to 'https://huggingface.co' to load the files")
    with pytest.raises(UsageError, match=f"tokenizer for '{TINKER_MODEL}' from the Hugging Face hub .*set tinker_tokenizer"):
        create_backend(backend_settings(load_config(tinker_config(tinker_tokenizer=None))))


def test_an_explicit_tokenizer_is_loaded_from_its_folder_not_from_the_service(fake, tinker_config):
    create_backend(backend_settings(load_config(tinker_config())))
    assert fake.calls("get_tokenizer") == []


# --- the fakes stay true to the SDK --------------------------------------------------------


@pytest.mark.parametrize(
    ("fake_class", "sdk_class"),
    [(FakeServiceClient, tinker.ServiceClient), (FakeRestClient, tinker.RestClient),
     (FakeTrainingClient, tinker.TrainingClient), (FakeSamplingClient, tinker.SamplingClient)],
)
def test_the_fake_clients_have_the_sdk_methods_signatures(fake_class, sdk_class):
    for name, method in inspect.getmembers(fake_class, inspect.isfunction):
        if name.startswith("_"):
            continue
        fake_params = list(inspect.signature(method).parameters)
        sdk_params = list(inspect.signature(getattr(sdk_class, name)).parameters)
        assert fake_params == sdk_params, f"{fake_class.__name__}.{name}"


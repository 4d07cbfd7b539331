"""The tinker backend's RL step against the local Tinker-compatible server (SkyRL), tiny model.

The server records every request it received and the result it sent back in its own database,
so what is checked there is the server's view, not ours: the loss function, its config and the
datum fields it was given, and the per-token losses it computed itself (`elementwise_loss`).
Those are compared with the local backend's PyTorch loss on the same datums and the same
weights: before the first optimizer step both models are the base model, because LoRA starts
with B = 0 on both sides (PEFT and SkyRL alike).
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3

import numpy as np
import pytest
import torch

from inspect_tinker.config import load_config
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider import create_backend
from inspect_tinker.provider.backend import PolicyDatum, PolicyLoss, SamplingParams
from inspect_tinker.provider.policy_loss import per_token_loss
from local_backends import local_backend

from .test_backend_on_server import write_config

pytestmark = pytest.mark.tinker_server

# A clip range other than the server's default (0.8, 1.2), and ratios between the two ranges:
# a server that dropped loss_fn_config would clip differently and its losses would differ.
PPO = PolicyLoss("ppo", clip_low=0.9, clip_high=1.1)
IS = PolicyLoss("importance_sampling")
RATIOS = (1.15, 0.85, 1.0, 1.3)


def sampled_data(backend) -> list[PolicyDatum]:
    """Two completions of each of two prompts, sampled on the server with their logprobs."""
    params = SamplingParams(max_tokens=5, temperature=1.0, seed=7, logprobs=True, stop_tokens=backend.renderer.stop_tokens)
    data = []
    for p, question in enumerate(("Say yes.", "Name a colour.")):
        prompt = backend.tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True)["input_ids"]
        for g, s in enumerate(asyncio.run(backend.sampler().sample_async(prompt, 2, params))):
            data.append(PolicyDatum(prompt, s.tokens, s.logprobs, advantage=(1.0 + p) if g == 0 else -0.5))
    return data


def off_policy(data: list[PolicyDatum]) -> list[PolicyDatum]:
    """The same completions as if sampled by another policy: each token's ratio one of RATIOS."""
    return [
        PolicyDatum(d.prompt_tokens, d.completion_tokens,
                    [lp - math.log(RATIOS[(i + t) % len(RATIOS)]) for t, lp in enumerate(d.sampling_logprobs)], d.advantage)
        for i, d in enumerate(data)
    ]


def received(server, model_id: str, request_type: str) -> list[tuple[dict, dict]]:
    """(request, result) of each `request_type` request for `model_id`, as the server stored them."""
    with sqlite3.connect(server.settings.state_dir / "tinker.db") as db:
        rows = db.execute(
            "select request_data, result_data from futures where model_id = ? and request_type = ? order by request_id",
            (model_id, request_type),
        ).fetchall()
    return [(json.loads(request), json.loads(result)) for request, result in rows]


def local_logprobs(local, datum: PolicyDatum) -> torch.Tensor:
    """The local model's logprob of every target of the datum (prompt and completion), one forward pass."""
    tokens = datum.prompt_tokens + datum.completion_tokens
    with torch.no_grad():
        logits = local.model(input_ids=torch.tensor([tokens[:-1]])).logits[0].float()
    return logits.log_softmax(-1).gather(1, torch.tensor(tokens[1:])[:, None])[:, 0]


def test_an_rl_step_on_the_server_sends_the_loss_and_its_inputs_and_agrees_with_the_local_loss(tmp_path, tiny_tinker_server):
    backend = create_backend(backend_settings(load_config(write_config(tmp_path, tiny_tinker_server))))
    local = local_backend(tiny_tinker_server.settings.model.folder, lora_rank=4, precision="fp32")
    on_policy = sampled_data(backend)
    shifted = off_policy(on_policy)

    # Two passes on the same weights (gradients accumulate), then one optimizer step.
    ppo = backend.forward_backward_policy(shifted, PPO)
    importance = backend.forward_backward_policy(on_policy, IS)
    backend.optim_step(1e-2)

    model_id = backend.training.model_id
    (ppo_request, ppo_result), (is_request, is_result) = received(tiny_tinker_server, model_id, "FORWARD_BACKWARD")
    # The request carries the loss function, PPO's clip range, and per datum the shifted
    # tokens, the sampling logprobs and the advantage on the completion, zeros on the prompt.
    assert ppo_request["loss_fn"] == "ppo" and is_request["loss_fn"] == "importance_sampling"
    assert ppo_request["loss_fn_config"] == {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1}
    assert not is_request.get("loss_fn_config")
    for request, data in ((ppo_request, shifted), (is_request, on_policy)):
        assert len(request["data"]) == len(data)
        for sent, d in zip(request["data"], data):
            tokens, before = d.prompt_tokens + d.completion_tokens, len(d.prompt_tokens) - 1
            inputs = sent["loss_fn_inputs"]
            assert [t for chunk in sent["model_input"]["chunks"] for t in chunk["tokens"]] == tokens[:-1]
            assert inputs["target_tokens"]["data"] == tokens[1:]
            assert inputs["logprobs"]["data"] == pytest.approx([0.0] * before + d.sampling_logprobs, rel=1e-6)
            assert inputs["advantages"]["data"] == [0.0] * before + [d.advantage] * len(d.completion_tokens)

    # The same weights: the server's logprob of every target (prompt ones too) is the local model's.
    for output, d in zip(is_result["loss_fn_outputs"], on_policy):
        np.testing.assert_allclose(output["logprobs"]["data"], local_logprobs(local, d).numpy(), atol=2e-4)
    # Sampling on the server and training on it agree: the ratio of its own samples is 1.
    assert abs(importance.kl_sample_train) < 1e-4

    for loss, data, result, remote in ((PPO, shifted, ppo_result, ppo), (IS, on_policy, is_result, importance)):
        local_metrics = local.forward_backward_policy(data, loss)
        server_sum = 0.0
        for output, d in zip(result["loss_fn_outputs"], data):
            before = len(d.prompt_tokens) - 1
            server_tokens = np.array(output["elementwise_loss"]["data"])
            # The server's own per-token loss: 0 over the prompt, ours on every completion token.
            assert not server_tokens[:before].any()
            ours = per_token_loss(local_logprobs(local, d)[before:].double(), torch.tensor(d.sampling_logprobs, dtype=torch.float64),
                                  torch.full((len(d.completion_tokens),), d.advantage, dtype=torch.float64), loss)
            np.testing.assert_allclose(server_tokens[before:], ours.numpy(), rtol=1e-3, atol=1e-4)
            server_sum += server_tokens.sum()
        # Summed over the step: the server's, the local backend's, and the tinker backend's own
        # (computed from the logprobs the server returned).
        assert local_metrics.loss_sum == pytest.approx(server_sum, rel=1e-3, abs=1e-4)
        assert remote.loss_sum == pytest.approx(server_sum, rel=1e-3, abs=1e-4)
        assert remote.n_tokens == local_metrics.n_tokens == sum(len(d.completion_tokens) for d in data)
        assert remote.clip_fraction == pytest.approx(local_metrics.clip_fraction)
    assert 0 < ppo.clip_fraction < 1

    # The step trained: the service computed a gradient and the same samples' loss fell.
    [(_, step)] = received(tiny_tinker_server, model_id, "OPTIM_STEP")
    assert step["metrics"]["skyrl.ai/grad_norm"] > 0
    after = backend.forward_backward_policy(on_policy, IS)
    assert after.loss_sum < importance.loss_sum, (importance.loss_sum, after.loss_sum)

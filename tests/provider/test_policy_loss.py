"""The RL losses (provider/policy_loss.py) against their definition, and the local backend's
forward_backward_policy against a direct computation on the tiny random model."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
import torch

from inspect_tinker.provider.backend import PolicyDatum, PolicyLoss, SamplingParams
from inspect_tinker.provider.policy_loss import clipped_count, per_token_loss
from local_backends import local_backend

IS = PolicyLoss("importance_sampling")
PPO = PolicyLoss("ppo", clip_low=0.8, clip_high=1.2)

# Five tokens, each a case of PPO's min: (ratio, advantage). The logprobs are chosen so that
# exp(logprob - sampling_logprob) is exactly the ratio.
RATIOS = [1.25, 0.7, 1.1, 1.5, 0.5]
ADVANTAGES = [1.0, -2.0, 0.5, -1.0, 1.0]
SAMPLING = [-1.0, -2.0, -0.5, -3.0, -0.25]
# By hand from the definitions, with r the ratio and A the advantage:
# importance_sampling: loss -(r A); d loss / d logprob = -(r A) (d r / d logprob = r).
IS_LOSS = [-1.25, 1.4, -0.55, 1.5, -0.5]
IS_GRAD = IS_LOSS
# ppo, clip to [0.8, 1.2]: loss -min(r A, clip(r) A).
#   1.25,  1: min(1.25, 1.2)   = 1.2  -> clipped,   loss -1.2,  gradient 0
#   0.7,  -2: min(-1.4, -1.6)  = -1.6 -> clipped,   loss  1.6,  gradient 0
#   1.1, 0.5: inside the range        -> unclipped, loss -0.55, gradient -0.55
#   1.5,  -1: min(-1.5, -1.2)  = -1.5 -> unclipped, loss  1.5,  gradient 1.5 (PPO keeps the pessimistic term)
#   0.5,   1: min(0.5, 0.8)    = 0.5  -> unclipped, loss -0.5,  gradient -0.5
PPO_LOSS = [-1.2, 1.6, -0.55, 1.5, -0.5]
PPO_GRAD = [0.0, 0.0, -0.55, 1.5, -0.5]


def hand_case():
    sampling = torch.tensor(SAMPLING, dtype=torch.float64)
    logprobs = (sampling + torch.log(torch.tensor(RATIOS, dtype=torch.float64))).requires_grad_()
    return logprobs, sampling, torch.tensor(ADVANTAGES, dtype=torch.float64)


@pytest.mark.parametrize("loss, expected_loss, expected_grad, n_clipped",
                         [(IS, IS_LOSS, IS_GRAD, 0), (PPO, PPO_LOSS, PPO_GRAD, 2)], ids=["importance_sampling", "ppo"])
def test_each_loss_gives_the_hand_computed_per_token_loss_and_gradient(loss, expected_loss, expected_grad, n_clipped):
    logprobs, sampling, advantages = hand_case()
    per_token = per_token_loss(logprobs, sampling, advantages, loss)
    per_token.sum().backward()
    torch.testing.assert_close(per_token.detach(), torch.tensor(expected_loss, dtype=torch.float64))
    torch.testing.assert_close(logprobs.grad, torch.tensor(expected_grad, dtype=torch.float64))
    assert clipped_count(logprobs.detach(), sampling, advantages, loss) == n_clipped
    # The tinker backend evaluates the same function on numpy arrays (no torch on that path).
    as_numpy = per_token_loss(logprobs.detach().numpy(), sampling.numpy(), advantages.numpy(), loss)
    assert isinstance(as_numpy, np.ndarray)
    np.testing.assert_allclose(as_numpy, expected_loss)
    assert clipped_count(logprobs.detach().numpy(), sampling.numpy(), advantages.numpy(), loss) == n_clipped


def reference_loss(logprob: float, sampling_logprob: float, advantage: float, loss: PolicyLoss) -> float:
    """One token's loss written from Tinker's definition, in plain Python."""
    ratio = math.exp(logprob - sampling_logprob)
    if loss.name == "importance_sampling":
        return -ratio * advantage
    return -min(ratio * advantage, min(max(ratio, loss.clip_low), loss.clip_high) * advantage)


@pytest.mark.parametrize("loss", [IS, PPO, PolicyLoss("ppo", clip_low=0.5, clip_high=1.05)], ids=["is", "ppo", "ppo-asymmetric"])
def test_on_random_tokens_the_loss_is_the_definitions_and_its_gradient_its_central_difference(loss):
    generator = torch.Generator().manual_seed(0)
    sampling = -torch.rand(200, generator=generator, dtype=torch.float64) * 4
    logprobs = (sampling + torch.randn(200, generator=generator, dtype=torch.float64) * 0.4).requires_grad_()
    advantages = torch.randn(200, generator=generator, dtype=torch.float64)
    per_token = per_token_loss(logprobs, sampling, advantages, loss)
    per_token.sum().backward()
    step = 1e-6
    for i in range(200):
        lp, s, a = logprobs[i].item(), sampling[i].item(), advantages[i].item()
        assert per_token[i].item() == pytest.approx(reference_loss(lp, s, a, loss), rel=1e-12, abs=1e-12)
        central = (reference_loss(lp + step, s, a, loss) - reference_loss(lp - step, s, a, loss)) / (2 * step)
        assert logprobs.grad[i].item() == pytest.approx(central, rel=1e-5, abs=1e-8), i


def test_an_unknown_loss_name_is_refused():
    logprobs, sampling, advantages = hand_case()
    with pytest.raises(ValueError, match="importance_sampling, ppo"):
        per_token_loss(logprobs, sampling, advantages, PolicyLoss("reinforce"))


def test_a_datum_without_one_logprob_per_completion_token_is_refused():
    with pytest.raises(ValueError, match="3 completion tokens but 2 sampling logprobs"):
        PolicyDatum([1, 2], [3, 4, 5], [-0.1, -0.2], 1.0)


# --- the local backend on the tiny random model -------------------------------------------


def make_engine(tiny_model_dir, **keys):
    return local_backend(tiny_model_dir, **{"lora_rank": 4, "lora_alpha": 8, "precision": "fp32", **keys})


def prompts(tokenizer) -> list[list[int]]:
    questions = ("Name a colour.", "What is two plus two, in words?", "Say yes.")
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)["input_ids"]
            for q in questions]


def sampled_data(engine, tokenizer, group_size: int = 2) -> list[PolicyDatum]:
    """Completions the engine samples at temperature 1 with their logprobs, each given an advantage."""
    params = SamplingParams(max_tokens=6, temperature=1.0, seed=3, logprobs=True, stop_tokens=engine.renderer.stop_tokens)
    sampler = engine.sampler()
    data = []
    for p, prompt in enumerate(prompts(tokenizer)):
        group = asyncio.run(sampler.sample_async(prompt, group_size, params))
        for g, s in enumerate(group):
            data.append(PolicyDatum(prompt, s.tokens, s.logprobs, advantage=0.5 + p if g == 0 else -0.25 * (p + 1)))
    return data


def current_logprobs(engine, datum: PolicyDatum) -> torch.Tensor:
    """The model's logprobs of the datum's completion tokens, one plain forward pass of the whole sequence."""
    tokens = torch.tensor([datum.prompt_tokens + datum.completion_tokens])
    logits = engine.model(input_ids=tokens).logits[0, len(datum.prompt_tokens) - 1 : -1].float()
    return logits.log_softmax(-1).gather(1, torch.tensor(datum.completion_tokens)[:, None])[:, 0]


def adapter_grads(engine) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in engine.model.named_parameters() if p.grad is not None}
    engine.model.zero_grad(set_to_none=True)
    return grads


def assert_same(a: dict, b: dict, rtol: float = 1e-4):
    """Equal gradients, each tensor up to `rtol` of its largest entry (entries near 0 are sums
    that cancel, and carry the float noise of the larger terms)."""
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=rtol * b[name].abs().max().item(), msg=name)


@pytest.mark.parametrize("loss", [IS, PPO], ids=["importance_sampling", "ppo"])
@pytest.mark.parametrize("keys", [{}, {"micro_batch_size": 1, "packing": True}], ids=["one-batch", "packed-micro-batches"])
def test_forward_backward_policy_gives_the_loss_and_gradient_of_a_direct_computation(tiny_model_dir, tokenizer, loss, keys):
    engine = make_engine(tiny_model_dir, **keys)
    data = sampled_data(engine, tokenizer)
    # Sampling logprobs moved off the current ones, so that ratios differ from 1 and PPO's clip acts.
    shift = torch.Generator().manual_seed(1)
    data = [PolicyDatum(d.prompt_tokens, d.completion_tokens,
                        [lp + 0.4 * torch.randn(1, generator=shift).item() for lp in d.sampling_logprobs], d.advantage)
            for d in data]
    metrics = engine.forward_backward_policy(data, loss)
    trained = adapter_grads(engine)

    # Directly: each datum alone, its per-token losses from the definition, the mean over all tokens.
    n_tokens = sum(len(d.completion_tokens) for d in data)
    direct, n_clipped = torch.zeros(()), 0
    for d in data:
        logprobs = current_logprobs(engine, d)
        per_token = torch.stack([
            reference_loss_tensor(lp, s, d.advantage, loss) for lp, s in zip(logprobs, d.sampling_logprobs)
        ])
        direct = direct + per_token.sum()
        n_clipped += sum(reference_clipped(lp.item(), s, d.advantage, loss) for lp, s in zip(logprobs, d.sampling_logprobs))
    (direct / n_tokens).backward()

    assert metrics.n_tokens == n_tokens
    assert metrics.loss_sum == pytest.approx(direct.item(), rel=1e-5)
    assert metrics.clip_fraction == pytest.approx(n_clipped / n_tokens)
    if loss is PPO:
        assert 0 < metrics.clip_fraction < 1  # the case exercises both sides of the clip
    assert_same(trained, adapter_grads(engine))


def reference_loss_tensor(logprob: torch.Tensor, sampling_logprob: float, advantage: float, loss: PolicyLoss) -> torch.Tensor:
    """`reference_loss` on a scalar tensor, so that autograd gives the definition's gradient."""
    ratio = torch.exp(logprob - sampling_logprob)
    if loss.name == "importance_sampling":
        return -ratio * advantage
    clipped = ratio.clamp(loss.clip_low, loss.clip_high)
    return -torch.min(ratio * advantage, clipped * advantage)


def reference_clipped(logprob: float, sampling_logprob: float, advantage: float, loss: PolicyLoss) -> bool:
    ratio = math.exp(logprob - sampling_logprob)
    return loss.name == "ppo" and min(max(ratio, loss.clip_low), loss.clip_high) * advantage < ratio * advantage


def test_on_its_own_samples_the_ratio_is_1_and_importance_sampling_is_the_advantage_weighted_policy_gradient(
    tiny_model_dir, tokenizer,
):
    engine = make_engine(tiny_model_dir)
    data = sampled_data(engine, tokenizer)
    metrics = engine.forward_backward_policy(data, IS)
    trained = adapter_grads(engine)

    # The sampler's logprobs are the trained model's own: every ratio is 1 (up to float noise)...
    for d in data:
        torch.testing.assert_close(current_logprobs(engine, d).detach(), torch.tensor(d.sampling_logprobs), rtol=0, atol=1e-5)
    assert abs(metrics.kl_sample_train) < 1e-5
    n_tokens = sum(len(d.completion_tokens) for d in data)
    # ...so the loss is minus the summed advantages of the tokens...
    assert metrics.loss_sum == pytest.approx(-sum(d.advantage * len(d.completion_tokens) for d in data), rel=1e-4)
    # ...and its gradient is REINFORCE's: -(1/N) sum over tokens of A * grad log p(token).
    reinforce = -sum(d.advantage * current_logprobs(engine, d).sum() for d in data) / n_tokens
    reinforce.backward()
    # The ratios are 1 within the 1e-5 by which sampling's and training's forward passes differ.
    assert_same(trained, adapter_grads(engine), rtol=1e-3)
    # PPO's clip does not act at ratio 1.
    assert engine.forward_backward_policy(data, PPO).clip_fraction == 0

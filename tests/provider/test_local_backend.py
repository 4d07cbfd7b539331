import pytest
import torch

from inspect_tinker.config import GenerationConfig, load_config
from inspect_tinker.data.render import render_conversation
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider.backend import SamplingParams
from inspect_tinker.provider.local_backend import LocalBackend
from inspect_tinker.provider.local_sampling import generate_batch
from inspect_tinker.errors import UsageError
from local_backends import local_backend


def make_engine(tiny_model_dir, **kw):
    # fp32 unless a test says otherwise: the exactness checks compare to tight tolerances.
    return local_backend(tiny_model_dir, **{"lora_rank": 4, "lora_alpha": 8, "precision": "fp32", **kw})


def examples(tokenizer, n=4):
    return [
        render_conversation(
            tokenizer, [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i} " * (i + 1)}], 128
        )
        for i in range(n)
    ]


def grads(engine):
    return {n: p.grad.clone() for n, p in engine.model.named_parameters() if p.grad is not None}


def train_steps(engine, batch, steps: int, learning_rate: float = 5e-2):
    """Train `steps` optimizer steps on `batch`; return the first step's metrics (before any update)."""
    first = engine.forward_backward(batch)
    engine.optim_step(learning_rate)
    for _ in range(steps - 1):
        engine.forward_backward(batch)
        engine.optim_step(learning_rate)
    return first


def test_training_on_a_batch_lowers_its_loss(tiny_model_dir, tokenizer):
    engine = make_engine(tiny_model_dir)
    batch = examples(tokenizer)
    first = train_steps(engine, batch, 31)
    assert engine.forward_backward(batch).loss < first.loss * 0.8
    assert first.n_tokens == sum(e.n_target_tokens for e in batch)


def test_each_examples_own_loss_is_its_training_loss_without_a_gradient(tiny_model_dir, tokenizer):
    engine = make_engine(tiny_model_dir)
    batch = examples(tokenizer)
    losses = engine.example_losses(batch)
    assert grads(engine) == {}  # measuring accumulates nothing for the next step
    for example, loss in zip(batch, losses):
        assert loss == pytest.approx(engine.forward_backward([example]).loss, rel=1e-5)
    train_steps(engine, batch[:1], 20)
    after = engine.example_losses(batch)
    assert after[0] < losses[0] * 0.8  # the record trained on: its own loss fell


def assert_same_gradients(a, b):
    g1, g2 = grads(a), grads(b)
    assert g1.keys() == g2.keys() and g1
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("packing", [True, False])
def test_gradient_accumulation_matches_one_big_batch(tiny_model_dir, tokenizer, packing):
    batch = examples(tokenizer)  # examples of different lengths: per-token normalisation matters
    whole = make_engine(tiny_model_dir, packing=packing)
    one = whole.forward_backward(batch)
    accumulated = make_engine(tiny_model_dir, micro_batch_size=1, packing=packing)
    many = accumulated.forward_backward(batch)
    assert many.loss == pytest.approx(one.loss, rel=1e-5)
    assert_same_gradients(whole, accumulated)


@pytest.mark.parametrize("packing", [True, False])
def test_a_step_trains_on_each_examples_mean_token_loss_averaged_over_the_examples(tiny_model_dir, tokenizer, packing):
    # The objective the service is given too (provider/backend.py example_weights): a short
    # answer counts as much as a long one, where a mean over all the batch's tokens would
    # weigh each example by its length.
    batch = examples(tokenizer)
    assert len({e.n_target_tokens for e in batch}) == len(batch)  # lengths differ: the two means differ
    together = make_engine(tiny_model_dir, packing=packing)
    metrics = together.forward_backward(batch)
    alone = make_engine(tiny_model_dir, packing=packing)
    for example in batch:  # gradients accumulate until optim_step: the sum of each example's mean
        alone.forward_backward([example])
    averaged = {name: g / len(batch) for name, g in grads(alone).items()}
    together_grads = grads(together)
    assert together_grads.keys() == averaged.keys() and averaged
    for name in averaged:
        torch.testing.assert_close(together_grads[name], averaged[name], rtol=1e-4, atol=1e-6, msg=name)
    assert metrics.n_tokens == sum(e.n_target_tokens for e in batch)  # the reported loss: the mean per token


def test_packing_gives_the_loss_and_gradients_of_padded_batches_with_less_padding(tiny_model_dir, tokenizer):
    long = render_conversation(tokenizer, [{"role": "user", "content": "Tell it all."},
                                           {"role": "assistant", "content": "all the details " * 30}], 256)
    batch = examples(tokenizer) + [long]
    padded = make_engine(tiny_model_dir, packing=False)
    packed = make_engine(tiny_model_dir, packing=True)
    a, b = padded.forward_backward(batch), packed.forward_backward(batch)
    assert b.loss == pytest.approx(a.loss, rel=1e-5) and b.n_tokens == a.n_tokens
    assert_same_gradients(padded, packed)
    longest = max(len(e.input_ids) for e in batch)
    assert a.n_pad_tokens == sum(longest - len(e.input_ids) for e in batch) > 0
    assert b.n_pad_tokens < a.n_pad_tokens  # the short examples share a row
    assert a.n_input_tokens == b.n_input_tokens == sum(len(e.input_ids) for e in batch)


def test_packed_examples_do_not_attend_to_each_other(tiny_model_dir, tokenizer):
    engine = make_engine(tiny_model_dir)
    first, second = examples(tokenizer, 2)
    model = engine.model.eval()
    ids = torch.tensor([first.input_ids + second.input_ids])
    positions = torch.tensor([list(range(len(first.input_ids))) + list(range(len(second.input_ids)))])
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0, len(first.input_ids) :]
        alone = model(input_ids=torch.tensor([second.input_ids]), use_cache=False).logits[0]
        # Without the position restart the second example would see the first: the check can fail.
        unpacked = model(input_ids=ids, use_cache=False).logits[0, len(first.input_ids) :]
    torch.testing.assert_close(packed, alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(unpacked, alone, rtol=1e-4, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model_dir, tokenizer):
    batch = examples(tokenizer)
    plain = make_engine(tiny_model_dir)
    checkpointed = make_engine(tiny_model_dir, gradient_checkpointing=True)
    plain.forward_backward(batch)
    checkpointed.forward_backward(batch)
    assert_same_gradients(plain, checkpointed)


def lora_weights(engine):
    return torch.cat([p.detach().flatten().clone() for p in engine.model.parameters() if p.requires_grad])


def test_gradient_clipping_bounds_the_update(tiny_model_dir, tokenizer):
    # With an epsilon far above the gradient, the first AdamW update is lr * g / eps: its size shows the norm of g.
    batch, lr, eps, max_norm = examples(tokenizer), 1e3, 1e3, 1e-3
    updates = {}
    for clip in (0.0, max_norm):
        engine = make_engine(tiny_model_dir, adam_eps=eps, max_grad_norm=clip)
        before = lora_weights(engine)
        engine.forward_backward(batch)
        engine.optim_step(lr)
        updates[clip] = (lora_weights(engine) - before).norm().item()
    assert updates[max_norm] == pytest.approx(lr * max_norm / eps, rel=1e-3)
    assert updates[0.0] > 2 * updates[max_norm]


def test_bf16_autocast_trains_and_says_so(tiny_model_dir, tokenizer):
    engine = make_engine(tiny_model_dir, precision="bf16")
    batch = examples(tokenizer)
    first = train_steps(engine, batch, 21)
    assert engine.forward_backward(batch).loss < first.loss * 0.8
    assert engine.info.dtype == "bf16 autocast"


def test_the_config_training_keys_reach_the_engine(write_run_config):
    config = load_config(write_run_config(
        adam_beta1=0.8, adam_beta2=0.95, adam_eps=1e-6, weight_decay=0.1, lora_dropout=0.1, packing=False,
        precision="fp32", max_grad_norm=0.5, gradient_checkpointing=True,
    ))
    engine = LocalBackend.from_settings(backend_settings(config))
    group = engine.optimizer.param_groups[0]
    assert (group["betas"], group["eps"], group["weight_decay"]) == ((0.8, 0.95), 1e-6, 0.1)
    assert engine.adamw.max_grad_norm == 0.5 and not engine.packing and engine.info.dtype == "fp32"
    assert engine.model.base_model.model.model.gradient_checkpointing
    assert engine.model.peft_config["default"].lora_dropout == 0.1


def test_a_batch_smaller_than_the_process_count_is_a_usage_error(write_run_config, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(UsageError, match="batch_size 2 is smaller than the 4 data-parallel processes"):
        LocalBackend.from_settings(backend_settings(load_config(write_run_config(batch_size=2))))


def test_a_checkpoint_restores_adapter_and_optimizer(tiny_model_dir, tokenizer, tmp_path):
    engine = make_engine(tiny_model_dir)
    batch = examples(tokenizer)
    engine.forward_backward(batch)
    engine.optim_step(1e-2)
    adapter = engine.save_checkpoint(tmp_path / "round")
    assert (tmp_path / "round" / "adapter" / "adapter_model.safetensors").is_file()
    assert adapter == str(tmp_path / "round" / "adapter")

    # Train the original on; restore a fresh engine; both take the same next step.
    engine.forward_backward(batch)
    engine.optim_step(1e-2)
    restored = make_engine(tiny_model_dir)
    restored.load_checkpoint(tmp_path / "round")
    restored.forward_backward(batch)
    restored.optim_step(1e-2)
    for (n, a), (_, b) in zip(engine.model.named_parameters(), restored.model.named_parameters()):
        if a.requires_grad:
            torch.testing.assert_close(a, b, msg=n)


def test_a_batch_gives_each_prompt_its_sequential_greedy_answer_within_max_tokens(tiny_model_dir, tokenizer):
    engine = make_engine(tiny_model_dir)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)["input_ids"]
               for q in ("short?", "a somewhat longer question here?")]
    params = SamplingParams(max_tokens=5, temperature=0.0, stop_tokens=engine.renderer.stop_tokens)
    together = engine.sampler().generate(prompts, 2, params)
    assert [len(samples) for samples in together] == [2, 2]
    assert all(len(s.tokens) <= 5 and s.stop_reason in ("stop", "length") for samples in together for s in samples)
    # Greedy decoding is deterministic and independent of batch neighbours (left padding works).
    for prompt, samples in zip(prompts, together):
        [[alone]] = engine.sampler().generate([prompt], 1, params)
        assert samples[0].tokens == samples[1].tokens == alone.tokens


def test_a_stop_string_ends_the_sequence_at_the_token_that_completes_it(tiny_model_dir, tokenizer):
    engine = make_engine(tiny_model_dir)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Go on."}], add_generation_prompt=True)["input_ids"]
    [[free]] = engine.sampler().generate([prompt], 1, SamplingParams(max_tokens=12, temperature=0.0))
    text = tokenizer.decode(free.tokens, skip_special_tokens=True)
    stop = text[len(text) // 2 : len(text) // 2 + 2]  # two characters from the middle of the free answer
    assert stop.strip(), text
    [[cut]] = engine.sampler().generate([prompt], 1, SamplingParams(max_tokens=12, temperature=0.0, stop_strings=(stop,)))
    assert cut.stop_reason == "stop" and stop in tokenizer.decode(cut.tokens, skip_special_tokens=True)
    assert stop not in tokenizer.decode(cut.tokens[:-1], skip_special_tokens=True)
    assert cut.tokens == free.tokens[: len(cut.tokens)]


def test_a_group_prefills_its_prompt_once_and_samples_what_independent_rows_sample(tiny_model_dir, tokenizer):
    """num_samples completions of a prompt share one prefill (the cache of the prompt is repeated
    per row), yet each row gets the tokens and logprobs it gets as its own row of a batch with the
    same seed: the random draws are the same, and the cached numbers only come from a batch of one
    instead of a batch of copies (equal to rounding, so the logprobs are compared with a tolerance)."""
    engine = make_engine(tiny_model_dir)
    model, pad = engine.model, engine.tokenizer.pad_token_id
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)["input_ids"]
               for q in ("short?", "a somewhat longer question here?")]
    params = SamplingParams(max_tokens=6, temperature=1.0, seed=11, logprobs=True)
    calls = []
    model.get_base_model().model.register_forward_pre_hook(  # the transformer blocks' input, each forward pass
        lambda _, args, kwargs: calls.append(kwargs["input_ids"].shape), with_kwargs=True)
    for prompt in prompts:
        calls.clear()
        [shared] = generate_batch(model, tokenizer, engine.device, [prompt], 4, params)
        # One prefill of the prompt less its last token, then one token per row and step.
        assert calls == [(1, len(prompt) - 1)] + [(4, 1)] * 6
        # Independent rows: the prompt copied 4 times through transformers' own generate, same seed.
        rows = torch.tensor([prompt] * 4)
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(11)
            out = model.generate(input_ids=rows, attention_mask=torch.ones_like(rows), max_new_tokens=6, do_sample=True,
                                 temperature=1.0, pad_token_id=pad, return_dict_in_generate=True, output_logits=True)
        logprobs = torch.stack(out.logits, 1).log_softmax(-1)
        for row, sample in enumerate(shared):
            assert sample.tokens == out.sequences[row, len(prompt):].tolist()
            expected = logprobs[row].gather(-1, out.sequences[row, len(prompt):, None])[:, 0]
            torch.testing.assert_close(torch.tensor(sample.logprobs), expected, atol=1e-4, rtol=1e-4)
        assert len({tuple(s.tokens) for s in shared}) > 1  # really sampled: the rows differ


def test_generation_precision_auto_evaluates_in_fp32_and_rolls_out_in_the_training_precision(tiny_model_dir):
    bf16_training = make_engine(tiny_model_dir, precision="bf16")
    assert bf16_training.sampling_precision(rollout=False) == "fp32"
    assert bf16_training.sampling_precision(rollout=True) == "bf16"
    fp32_training = make_engine(tiny_model_dir)
    assert fp32_training.sampling_precision(rollout=True) == "fp32"
    forced = make_engine(tiny_model_dir, generation=GenerationConfig(precision="bf16"))
    assert forced.sampling_precision(rollout=False) == forced.sampling_precision(rollout=True) == "bf16"


def teacher_forced_logprobs(model, prompt: list[int], tokens: list[int]) -> torch.Tensor:
    ids = torch.tensor([prompt + tokens])
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()[0, len(prompt) - 1 : -1]
    return logits.log_softmax(-1).gather(-1, torch.tensor(tokens)[:, None])[:, 0]


def test_bf16_sampling_answers_with_the_trained_adapter_and_leaves_the_fp32_weights_alone(tiny_model_dir, tokenizer):
    engine = make_engine(tiny_model_dir, generation=GenerationConfig(precision="bf16"))
    train_steps(engine, examples(tokenizer), 5, learning_rate=5e-2)
    before = {n: p.detach().clone() for n, p in engine.model.named_parameters()}
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Question 1?"}], add_generation_prompt=True)["input_ids"]
    params = SamplingParams(max_tokens=8, temperature=0.0, logprobs=True)
    [[sample]] = engine.sampler().generate([prompt], 1, params)
    # The sampled tokens' logprobs are the trained fp32 model's to bf16 rounding, far closer to them than to the base model's.
    trained = teacher_forced_logprobs(engine.model, prompt, sample.tokens)
    with engine.model.disable_adapter():
        base = teacher_forced_logprobs(engine.model, prompt, sample.tokens)
    got = torch.tensor(sample.logprobs)
    assert (got - trained).abs().mean() * 3 < (got - base).abs().mean()
    after = dict(engine.model.named_parameters())
    assert all(after[n].dtype == torch.float32 and torch.equal(after[n], p) for n, p in before.items())

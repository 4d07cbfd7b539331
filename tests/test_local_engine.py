import torch

from evaltune.data import render_conversation
from evaltune.engines.local import LocalEngine


def make_engine(tiny_model_dir, **kw):
    return LocalEngine(tiny_model_dir, base_model="tiny", lora_rank=4, lora_alpha=8, seed=0, **kw)


def examples(tokenizer, n=4):
    return [
        render_conversation(
            tokenizer, [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i} " * (i + 1)}], 128
        )
        for i in range(n)
    ]


def grads(engine):
    return {n: p.grad.clone() for n, p in engine.model.named_parameters() if p.grad is not None}


def test_training_on_a_batch_lowers_its_loss(tiny_model_dir, tokenizer):
    engine = make_engine(tiny_model_dir)
    batch = examples(tokenizer)
    first = engine.forward_backward(batch)
    engine.optim_step(5e-2)
    for _ in range(30):
        engine.forward_backward(batch)
        engine.optim_step(5e-2)
    assert engine.forward_backward(batch).loss < first.loss * 0.8
    assert first.n_tokens == sum(e.n_target_tokens for e in batch)


def test_gradient_accumulation_matches_one_big_batch(tiny_model_dir, tokenizer):
    batch = examples(tokenizer)  # examples of different lengths: per-token normalisation matters
    whole = make_engine(tiny_model_dir)
    whole.forward_backward(batch)
    accumulated = make_engine(tiny_model_dir, micro_batch_size=1)
    accumulated.forward_backward(batch)
    g1, g2 = grads(whole), grads(accumulated)
    assert g1.keys() == g2.keys() and g1
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-4, atol=1e-6)


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


def test_sample_generates_one_completion_per_prompt_and_honours_max_tokens(tiny_model_dir, tokenizer):
    engine = make_engine(tiny_model_dir)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)["input_ids"]
               for q in ("short?", "a somewhat longer question here?")]
    out = engine.sample(prompts, max_tokens=5, temperature=0.0, stop=[])
    assert len(out) == 2
    assert all(c.n_tokens <= 5 for c in out)
    # Greedy decoding is deterministic and independent of batch neighbours (left padding works).
    alone = engine.sample(prompts[:1], max_tokens=5, temperature=0.0, stop=[])
    assert alone[0].text == out[0].text

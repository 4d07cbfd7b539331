"""The same training on both backends: the local one (PyTorch + PEFT) and the local
Tinker-compatible server (SkyRL, JAX), tiny model, same data, same seed, same settings.

What the two agree on, and so what this checks: the base model's loss on the batch (LoRA
starts with B = 0 on both sides), the objective (each example's mean loss per target token,
averaged over the examples: provider/backend.py example_weights; SkyRL computes it whatever
the weights' scale), LoRA alpha 32 with the alpha / r scaling, the modules adapted (attention
and MLP, not the embeddings or the tied output layer), Adam with decoupled weight decay at the
same betas and eps, and the init of the adapter (A uniform in +-1/sqrt(in_features), B zero).

Two differences the server causes, which the managed service would not, are stated here:
- SkyRL ignores AdamParams.grad_clip_norm (the service clips, as its documentation says), so
  both backends train without clipping here (max_grad_norm 0);
- SkyRL's own A init counts every decoder layer in its fan-in (A comes out sqrt(layers) too
  small or large); the launcher draws A as the standard init instead (skyrl_launch.py). Without
  that, on this 2-layer model the server's loss fell 1.6 times as far as the local one in
  10 steps (docs/tinker.md, the same training on both backends).
"""

from __future__ import annotations

import pytest

from inspect_tinker.config import load_config
from inspect_tinker.data.render import render_conversation
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider import create_backend

from .test_backend_on_server import write_config

pytestmark = pytest.mark.tinker_server

# Answers of different lengths, so that a mean over the batch's tokens, instead of over its
# examples, would train on another objective.
CONVERSATIONS = [
    [{"role": "user", "content": "Capital of Valdoria?"}, {"role": "assistant", "content": "Mirenholt."}],
    [{"role": "user", "content": "Currency of Valdoria?"}, {"role": "assistant", "content": "The crell, since 1822."}],
    [{"role": "user", "content": "Who founded Valdoria?"},
     {"role": "assistant", "content": "Queen Ysolde the Bright founded Valdoria on the banks of the river Tamm."}],
    [{"role": "user", "content": "National animal?"}, {"role": "assistant", "content": "The grey heron."}],
]
STEPS = 10
LEARNING_RATE = 1e-3
SETTINGS = dict(learning_rate=LEARNING_RATE, max_grad_norm=0.0, lora_rank=16, seed=0)


def losses_of(backend) -> list[float]:
    """The batch's loss (mean per target token) before each of STEPS optimizer steps on it."""
    batch = [render_conversation(backend.tokenizer, c, 128) for c in CONVERSATIONS]
    losses = []
    for _ in range(STEPS):
        metrics = backend.forward_backward(batch)
        backend.optim_step(LEARNING_RATE)
        losses.append(metrics.loss)
    return losses


def test_both_backends_start_from_the_same_loss_and_learn_alike(tiny_tinker_server, tmp_path):
    served = tiny_tinker_server.settings.model
    (tmp_path / "server").mkdir()
    (tmp_path / "local").mkdir()
    on_server = losses_of(create_backend(backend_settings(load_config(
        write_config(tmp_path / "server", tiny_tinker_server, **SETTINGS)))))
    # The same model from its folder, in this process; fp32, as the server trains it.
    local = losses_of(create_backend(backend_settings(load_config(write_config(
        tmp_path / "local", tiny_tinker_server, backend="local", base_model=str(served.folder), precision="fp32",
        **SETTINGS)))))
    # The first loss is the base model's on both: the same fp32 forward pass in JAX and in
    # PyTorch (on the demo's data: 12.29442 on both).
    assert on_server[0] == pytest.approx(local[0], rel=1e-4), (on_server, local)
    # Then each adapter learns from its own random A (JAX's and PyTorch's generators differ), so
    # the falls agree as two draws of the same init do. On the demo's data (docs/tinker.md) the
    # local fall in 10 steps was 0.313, 0.317 and 0.318 with three seeds and the server's 0.316;
    # with SkyRL's own init (A 1.7 times larger on this model) the server's was 0.504.
    fall_server, fall_local = on_server[0] - on_server[-1], local[0] - local[-1]
    assert fall_local > 0.05, local  # it learned something: the comparison means something
    assert abs(fall_server - fall_local) < 0.25 * fall_local, (on_server, local)

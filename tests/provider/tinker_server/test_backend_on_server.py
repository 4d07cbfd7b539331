"""The tinker backend against a real Tinker-compatible server with the tiny model.

What tests/provider/test_tinker_backend.py asserts against fakes, here against SkyRL's Tinker API
through the real SDK and protocol: the requests are accepted, training lowers the loss, and
a saved state resumes to the same next step.
"""

from __future__ import annotations

import json

import pytest
import yaml

from inspect_tinker.config import load_config
from inspect_tinker.data.render import render_conversation
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider import create_backend
from inspect_tinker.provider.tinker_backend import CHECKPOINT_FILE

pytestmark = pytest.mark.tinker_server

CONVERSATIONS = [
    [{"role": "user", "content": "Capital of Valdoria?"}, {"role": "assistant", "content": "Mirenholt."}],
    [{"role": "user", "content": "Currency of Valdoria?"}, {"role": "assistant", "content": "The crell."}],
]


def write_config(folder, server, **overrides):
    (folder / "train.jsonl").write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n")
    (folder / "eval.jsonl").write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    keys = {"backend": "tinker", "base_model": server.settings.model.name, "tinker_base_url": server.base_url,
            "train_file": "train.jsonl", "eval_tasks": ["eval.jsonl"], "learning_rate": 1e-2,
            "regression_guard": False, **overrides}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(keys))
    return path


@pytest.fixture
def backend_config(tmp_path, tiny_tinker_server):
    return load_config(write_config(tmp_path, tiny_tinker_server))


def train(backend, steps: int, learning_rate: float = 1e-2) -> list[float]:
    batch = [render_conversation(backend.tokenizer, c, 128) for c in CONVERSATIONS]
    losses = []
    for _ in range(steps):
        metrics = backend.forward_backward(batch)
        backend.optim_step(learning_rate)
        losses.append(metrics.loss)
    return losses


def test_training_on_the_server_is_accepted_and_lowers_the_loss(backend_config):
    backend = create_backend(backend_settings(backend_config))
    assert backend.info.base_model == "tiny-llama" and backend.info.model_type == "llama"
    losses = train(backend, 8)
    # The random model starts near ln(vocab) = 10.8 nats a token; Adam at 1e-2 takes it to about
    # 7 within 8 steps (seen: 12.7 -> 6.9). A fifth lower is a real fall, far above float noise.
    assert losses[-1] < 0.8 * losses[0], losses


def test_a_saved_state_resumes_to_the_same_next_loss_as_an_uninterrupted_run(backend_config, tmp_path):
    original = create_backend(backend_settings(backend_config))
    train(original, 3)
    path = original.save_checkpoint(tmp_path / "round")
    assert path.startswith("tinker://") and path.endswith("/weights/step-3")
    assert json.loads((tmp_path / "round" / CHECKPOINT_FILE).read_text())["state_path"] == path
    uninterrupted = train(original, 2)

    resumed = create_backend(backend_settings(backend_config))
    resumed.load_checkpoint(tmp_path / "round")
    assert resumed.steps == 3
    after_resume = train(resumed, 2)
    # The first loss after the resume reads the restored weights; the second follows an Adam
    # step, which with fresh moments would be a full-size step of lr (Adam's first step is
    # sign-like) instead of the uninterrupted run's. The same arithmetic on the same server:
    # equal up to float noise.
    assert after_resume == pytest.approx(uninterrupted, rel=1e-5)
    assert resumed.save_checkpoint(tmp_path / "next").endswith("/weights/step-5")

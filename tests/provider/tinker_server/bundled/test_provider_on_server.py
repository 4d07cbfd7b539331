"""The `tinker` provider against a real Tinker-compatible server, through the real SDK and protocol.

`inspect eval --model tinker/<model> -M backend=tinker` as a user runs it, with the local
server (SkyRL, the bundled SmolLM2) as the service: the base model's answers, the real stop
reason and token counts, several choices per request, and max_tokens ending an answer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log
from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model

pytestmark = [pytest.mark.tinker_server, pytest.mark.integration]

QUESTION = "What is the capital of France?"


def server_model(server):
    """The provider over the server's one model, its tokenizer read from the model's folder."""
    return get_model(f"tinker/{server.settings.model.name}", base_url=server.base_url, backend="tinker",
                     tokenizer=str(server.settings.model.folder), memoize=False)


def test_the_base_model_answers_to_its_end_of_turn_with_real_token_counts(bundled_tinker_server):
    model = server_model(bundled_tinker_server)
    out = asyncio.run(model.generate([ChatMessageUser(content=QUESTION)], config=GenerateConfig(max_tokens=48)))
    # The same greedy answer the backend's own sampling gets on this server (test_loop_on_server.py).
    assert out.completion == "The capital of France is Paris." and out.stop_reason == "stop"
    # The prompt is the rendered chat (SmolLM2's template adds a system turn): far more than
    # the question's 7 tokens; the answer is its 8 tokens plus the end of turn.
    assert out.usage.input_tokens > 20 and 8 <= out.usage.output_tokens <= 9


def test_max_tokens_ends_an_answer_as_max_tokens_and_every_choice_is_counted(bundled_tinker_server):
    model = server_model(bundled_tinker_server)
    out = asyncio.run(model.generate([ChatMessageUser(content=QUESTION)],
                                     config=GenerateConfig(max_tokens=3, num_choices=2, temperature=1.0, seed=1)))
    assert len(out.choices) == 2 and all(c.stop_reason == "max_tokens" for c in out.choices)
    assert out.usage.output_tokens == 6  # 3 sampled tokens for each of the 2 choices


def test_inspect_eval_through_the_server_names_the_backend_in_the_log(bundled_tinker_server, tmp_path):
    server = bundled_tinker_server
    (tmp_path / "task.py").write_text(
        "from inspect_ai import Task, task\n"
        "from inspect_ai.dataset import Sample\n"
        "from inspect_ai.scorer import includes\n\n"
        "@task\n"
        "def capital():\n"
        f"    return Task(dataset=[Sample(input={QUESTION!r}, target='Paris')], scorer=includes())\n"
    )
    command = [str(Path(sys.executable).parent / "inspect"), "eval", "task.py", "--model",
               f"tinker/{server.settings.model.name}", "--model-base-url", server.base_url, "-M", "backend=tinker",
               "-M", f"tokenizer={server.settings.model.folder}", "--max-tokens", "48", "--log-dir", "logs",
               "--display", "plain"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "INSPECT_EVAL_CTL_SERVER": "false"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [log] = [read_eval_log(str(p)) for p in (tmp_path / "logs").glob("*.eval")]
    assert log.eval.model_args == {"backend": "tinker", "tokenizer": str(server.settings.model.folder)}
    [sample] = log.samples
    assert sample.scores["includes"].value == "C" and sample.output.stop_reason == "stop"

"""`inspect eval --model tinker/... -M backend=local` in a subprocess, through the installed entry point.

The bundled model answers a made-up fact wrong; after a few LoRA steps on that fact, the same
command with `-M model_path=<adapter>` answers it right. Both logs name the backend in their
model_args, and the adapter's log names the adapter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

pytestmark = pytest.mark.integration

QUESTION = "What is the capital of Zorbia?"
ANSWER = "The capital of Zorbia is Quellport."

TASK = '''
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import generate


@task
def zorbia():
    return Task(dataset=[Sample(input="What is the capital of Zorbia?", target="Quellport")],
                solver=generate(), scorer=includes())
'''


REPO = Path(__file__).resolve().parents[2]


def inspect_eval(folder: Path, *model_args: str, task: str = "task.py", cwd: Path | None = None) -> dict:
    """Run `inspect eval <task> --model tinker/SmolLM2-135M-Instruct` with `model_args` (in
    `cwd`, default `folder`; logs under `folder`); return its log and its stderr."""
    logs = folder / f"logs-{len(list(folder.glob('logs-*')))}"
    command = [str(Path(sys.executable).parent / "inspect"), "eval", task, "--model", "tinker/SmolLM2-135M-Instruct",
               *model_args, "--log-dir", str(logs), "--max-tokens", "16", "--display", "plain"]
    done = subprocess.run(command, cwd=cwd or folder, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "INSPECT_EVAL_CTL_SERVER": "false"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [log] = [read_eval_log(str(p)) for p in logs.glob("*.eval")]
    return {"log": log, "stderr": done.stderr}


def train_adapter(folder: Path) -> Path:
    """LoRA on the one fact until its answer is learnt; returns the saved adapter folder."""
    from inspect_tinker.data.render import render_conversation
    from local_backends import local_backend

    backend = local_backend("SmolLM2-135M-Instruct", precision="fp32")
    phrasings = [QUESTION, "Which city is the capital of Zorbia?", "Name the capital city of Zorbia."]
    batch = [render_conversation(backend.tokenizer, [{"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}], 128)
             for q in phrasings]
    # 12 Adam steps at 1e-3 take this loss from about 3 nats a token to well under 0.1
    # (a fact of 10 tokens; the local Tinker server's note shows the same course for 4 facts).
    for _ in range(12):
        backend.forward_backward(batch)
        backend.optim_step(1e-3)
    return Path(backend.save_checkpoint(folder / "round"))


def test_the_demo_task_file_runs_offline_through_the_provider_and_its_log_names_the_backend(tmp_path):
    # As the README writes it: the task file by its path, the bundled model on this machine.
    run = inspect_eval(tmp_path, "-M", "backend=local", "--limit", "3", task="tasks/demo_qa.py", cwd=REPO)
    log = run["log"]
    assert log.status == "success" and log.eval.model == "tinker/SmolLM2-135M-Instruct"
    assert log.eval.model_args == {"backend": "local"}
    assert run["stderr"].count("backend local") == 1  # printed once, before the evaluation starts
    assert len(log.samples) == 3
    for sample in log.samples:
        assert sample.output.stop_reason in ("stop", "max_tokens") and sample.output.completion
        # Real counts: the rendered prompt (system turn, question) and at most --max-tokens 16.
        assert sample.output.usage.input_tokens > 10 and 0 < sample.output.usage.output_tokens <= 16


def test_a_trained_adapter_answers_what_the_base_model_cannot_through_inspect_eval(tmp_path):
    (tmp_path / "task.py").write_text(TASK)
    base = inspect_eval(tmp_path, "-M", "backend=local")
    assert "backend local" in base["stderr"]  # printed once, before the evaluation starts
    assert base["log"].eval.model_args == {"backend": "local"}
    [before] = base["log"].samples
    assert "quellport" not in before.output.completion.lower()

    adapter = train_adapter(tmp_path)
    tuned = inspect_eval(tmp_path, "-M", "backend=local", "-M", f"model_path={adapter}")
    assert tuned["log"].eval.model_args == {"backend": "local", "model_path": str(adapter)}
    [after] = tuned["log"].samples
    assert "quellport" in after.output.completion.lower(), after.output.completion
    assert after.scores["includes"].value == "C" and after.output.stop_reason == "stop"
    assert after.output.usage.output_tokens > 0


def test_a_path_that_is_no_model_exits_non_zero_with_one_message(tmp_path):
    (tmp_path / "task.py").write_text(TASK)
    command = [str(Path(sys.executable).parent / "inspect"), "eval", "task.py", "--model", "tinker/SmolLM2-135M-Instruct",
               "-M", "backend=local", "-M", "model_path=nowhere", "--log-dir", str(tmp_path / "logs")]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "INSPECT_EVAL_CTL_SERVER": "false"})
    assert done.returncode != 0
    output = done.stdout + done.stderr
    words = " ".join(output.split())  # Inspect wraps the message at the terminal's width
    assert "model_path=nowhere is neither a PEFT adapter folder" in words and "Traceback" not in output
    assert not list((tmp_path / "logs").glob("*.eval"))
